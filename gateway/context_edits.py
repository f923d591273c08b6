"""Anthropic's context editing, applied by the gateway to the history a translated route gets.

A translated route is sent the history the gateway rebuilt from the client's, so the gateway
can clear what Anthropic would clear before the prompt reaches the model:
`clear_tool_uses_20250919` replaces the oldest tool results (and, asked, their calls' inputs)
with a placeholder once the prompt passes its trigger, keeping the most recent ones and the
tools it excludes; `clear_thinking_20251015` drops the thinking of older assistant turns. The
client keeps its full history: what was cleared is reported in `context_management` of the
answer, as Anthropic reports it. Pure: works on the IR request, counts with core/tokens.py.
"""

from __future__ import annotations

from core import ir
from core.tokens import count_sampled, estimate_input_tokens

CLEAR_TOOL_USES = "clear_tool_uses_20250919"
CLEAR_THINKING = "clear_thinking_20251015"
DEFAULT_TRIGGER = 100_000  # input tokens (Anthropic's default)
DEFAULT_KEEP = 3  # tool uses (Anthropic's default)
PLACEHOLDER = "[Old tool result content cleared]"


def apply(request: ir.Request) -> list[ir.AppliedEdit] | None:
    """Edit `request.messages` in place; the edits applied, in order (None: none was asked)."""
    if not request.context_edits:
        return None
    applied = []
    for edit in request.context_edits:
        if edit.type == CLEAR_THINKING:
            done = clear_thinking(request, edit)
        else:
            done = clear_tool_uses(request, edit)
        if done is not None:
            applied.append(done)
    return applied


def _tokens(parts: list[ir.Part]) -> int:
    texts: list[str] = []
    for part in parts:
        if isinstance(part, ir.Text):
            texts.append(part.text)
        elif isinstance(part, ir.Thinking):
            texts.append(part.thinking)
        elif isinstance(part, ir.RedactedThinking):
            texts.append(part.data)
        elif isinstance(part, ir.ToolResult):
            texts += [p.text for p in part.content if isinstance(p, ir.Text)]
            texts.append(" " * 1000 * sum(not isinstance(p, ir.Text) for p in part.content))
        elif isinstance(part, ir.ToolUse):
            texts.append(str(part.input))
    return count_sampled(texts) if texts else 0


def clear_tool_uses(request: ir.Request, edit: ir.ContextEdit) -> ir.AppliedEdit | None:
    trigger = (
        edit.trigger_input_tokens if edit.trigger_input_tokens is not None else DEFAULT_TRIGGER
    )
    if estimate_input_tokens(request) <= trigger:
        return None
    keep = edit.keep if edit.keep is not None else DEFAULT_KEEP
    excluded = set(edit.exclude_tools)
    uses = [
        p
        for m in request.messages
        if m.role == "assistant"
        for p in m.content
        if isinstance(p, ir.ToolUse) and p.name not in excluded
    ]
    old = uses[: max(0, len(uses) - keep)]
    ids = {u.id for u in old}
    results = [
        p
        for m in request.messages
        if m.role == "user"
        for p in m.content
        if isinstance(p, ir.ToolResult) and p.tool_use_id in ids
    ]
    results = [r for r in results if r.content != [ir.Text(PLACEHOLDER)]]  # cleared before
    cleared = sum(_tokens([r]) for r in results)
    if edit.clear_tool_inputs:
        cleared += sum(_tokens([u]) for u in old if u.input)
    if not results and not (edit.clear_tool_inputs and any(u.input for u in old)):
        return None
    if edit.clear_at_least is not None and cleared < edit.clear_at_least:
        return None  # not worth breaking the prompt cache for (Anthropic's rule)
    for result in results:
        result.content = [ir.Text(PLACEHOLDER)]
        result.is_error = False
    if edit.clear_tool_inputs:
        for use in old:
            use.input = {}
    return ir.AppliedEdit(
        type=CLEAR_TOOL_USES, cleared_input_tokens=cleared, cleared_tool_uses=len(old)
    )


def clear_thinking(request: ir.Request, edit: ir.ContextEdit) -> ir.AppliedEdit | None:
    if edit.keep is None:
        return None  # keep: "all"
    thinking = (ir.Thinking, ir.RedactedThinking)
    turns = [
        m
        for m in request.messages
        if m.role == "assistant" and any(isinstance(p, thinking) for p in m.content)
    ]
    old = turns[: max(0, len(turns) - edit.keep)]
    if not old:
        return None
    cleared = 0
    for message in old:
        cleared += _tokens([p for p in message.content if isinstance(p, thinking)])
        message.content = [p for p in message.content if not isinstance(p, thinking)]
    return ir.AppliedEdit(
        type=CLEAR_THINKING, cleared_input_tokens=cleared, cleared_thinking_turns=len(old)
    )
