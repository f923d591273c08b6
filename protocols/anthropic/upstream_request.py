"""IR request -> Anthropic Messages request body, for an Anthropic upstream serving a client that
spoke another surface (OpenAI Chat, Responses). Pure: the IR request and the target are all it
reads.

A client that spoke Anthropic has its own body forwarded instead (providers/adapters/
anthropic.py); this encoder is what the forwarded body would be, built from the IR, and the
round-trip test holds the two together. Assistant parts reuse encode.py's response shapes: a
turn sent back is what an answer looked like.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from core import ids, ir
from core.target import Target
from protocols.anthropic.encode import part_json
from protocols.anthropic.server_tools import NAMES, server_block
from protocols.envelope import PREFIX as ENVELOPE_PREFIX

TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
# Each server tool's type when the IR's is not one of Anthropic's (another surface's tool).
SERVER_TOOL_TYPES = {
    "web_search": "web_search_20250305",
    "web_fetch": "web_fetch_20250910",
    "code_execution": "code_execution_20250825",
}
_SERVER_TOOL_TYPE = re.compile(r"^(web_search|web_fetch|code_execution)_\d{8}$")
# A thinking budget for an effort asked without one (reference 5.7's bands, read backwards:
# each effort gets a budget its band maps back to).
EFFORT_BUDGETS = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
MIN_BUDGET = 1024
# Efforts Anthropic has no name for, sent as the nearest.
NEAREST_EFFORT = {"minimal": "low"}
# The effort decode.py derives from a thinking budget (sent only when the client chose another).
_EFFORT_BY_BUDGET = ((16384, "high"), (4096, "medium"), (0, "low"))


def tool_id(value: str) -> str:
    """The id Anthropic accepts: unchanged when it matches, else a stable rewrite (reference
    5.12.1), the same for the call and its result, both rebuilt from the client's history."""
    if TOOL_ID.fullmatch(value):
        return value
    return "t_" + hashlib.sha256(value.encode()).hexdigest()[:24]


def own_signature(signature: str) -> bool:
    """Only Anthropic's signatures go back to it: an envelope (reference 5.12.3) is another
    provider's state, and a thinking block without a signature is refused."""
    return bool(signature) and not signature.startswith(ENVELOPE_PREFIX)


# --- Content ----------------------------------------------------------------------------------
def _text(part: ir.Text) -> dict[str, Any] | None:
    """A text block; citations stay behind (Anthropic checks their encrypted index, which
    another provider's citations do not have)."""
    if not part.text:
        return None  # Anthropic refuses empty text blocks
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _image(part: ir.Image) -> dict[str, Any]:
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url}
    return {"type": "image", "source": source}


def _document(part: ir.Document) -> dict[str, Any]:
    if part.parts is not None:
        inner = [b for b in map(_media_block, part.parts) if b is not None]
        source: dict[str, Any] = {"type": "content", "content": inner}
    elif part.text is not None:
        source = {"type": "text", "media_type": "text/plain", "data": part.text}
    elif part.data is not None:
        media_type = part.media_type or "application/pdf"
        source = {"type": "base64", "media_type": media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.title is not None:
        block["title"] = part.title
    if part.context is not None:
        block["context"] = part.context
    return block


def _media_block(part: ir.Part) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        return _text(part)
    if isinstance(part, ir.Image):
        return _image(part)
    if isinstance(part, ir.Document):
        return _document(part)
    return None


def _tool_result(part: ir.ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(part.tool_use_id)}
    content = [b for b in map(_media_block, part.content) if b is not None]
    if content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return block


def _server_part(part: ir.Part, where: str) -> dict[str, Any] | None:
    """A server tool's call or result in the history, as the text decode.py makes of one sent
    by an Anthropic client: Anthropic wants back its encrypted fields and `srvtoolu_` ids,
    which another provider's runs do not have."""
    text = server_block(part_json(part) or {}, where)
    return _text(text) if text is not None else None


def block_json(part: ir.Part, where: str = "") -> dict[str, Any] | None:
    """One IR part as a request content block; None for a part Anthropic must not get."""
    if isinstance(part, ir.Text | ir.Image | ir.Document):
        return _media_block(part)
    if isinstance(part, ir.ToolResult):
        return _tool_result(part)
    if isinstance(part, ir.ToolUse):
        return {**part_json(part), "id": tool_id(part.id)}  # `state` is never sent
    if isinstance(part, ir.Thinking):
        return part_json(part) if own_signature(part.signature) else None
    if isinstance(part, ir.RedactedThinking):
        return part_json(part)
    return _server_part(part, where)


def messages_json(messages: list[ir.Message]) -> list[dict[str, Any]]:
    """The turns; one left empty (only another provider's thinking) is left out, and the
    same-role turns around it are merged, as Anthropic would."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        blocks = [
            b
            for j, part in enumerate(message.content)
            if (b := block_json(part, f"messages.{i}.content.{j}")) is not None
        ]
        if blocks and out and out[-1]["role"] == message.role:
            out[-1]["content"] += blocks
        elif blocks:
            out.append({"role": message.role, "content": blocks})
    return out


# --- Tools ------------------------------------------------------------------------------------
def _tool(tool: ir.Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = tool.input_schema
    return out


def server_tool_json(tool: ir.ServerTool) -> dict[str, Any]:
    """Anthropic's own server tool, with the options the IR kept (decode.py validated them)."""
    kind = tool.kind
    type_ = tool.type if _SERVER_TOOL_TYPE.match(tool.type) else SERVER_TOOL_TYPES[kind]
    out: dict[str, Any] = {"type": type_, "name": NAMES[kind]}
    for field in ("max_uses", "allowed_domains", "blocked_domains", "user_location"):
        if (value := getattr(tool, field)) is not None:
            out[field] = value
    if tool.citations is not None:
        out["citations"] = {"enabled": tool.citations}
    if tool.max_content_tokens is not None:
        out["max_content_tokens"] = tool.max_content_tokens
    return out


def _position(tool: ir.ServerTool) -> int:
    """Where the client listed it (`tools.2`); a server tool given elsewhere goes last."""
    index = tool.where.rpartition(".")[2]
    return int(index) if tool.where.startswith("tools.") and index.isdigit() else 1 << 30


def tools_json(request: ir.Request) -> list[dict[str, Any]]:
    """Function tools, and server tools back at the place the client listed them."""
    tools = [_tool(t) for t in request.tools]
    for tool in sorted(request.server_tools, key=_position):
        tools.insert(min(_position(tool), len(tools)), server_tool_json(tool))
    return tools


def tool_choice_json(choice: ir.ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": choice.type}
    if choice.type == "tool":
        out["name"] = choice.name
    if choice.disable_parallel_tool_use and choice.type != "none":
        out["disable_parallel_tool_use"] = True
    return out


# --- Thinking ---------------------------------------------------------------------------------
def _budget_effort(budget: int) -> str:
    return next(e for floor, e in _EFFORT_BY_BUDGET if budget >= floor)


def reasoning_json(reasoning: ir.Reasoning | None, max_tokens: int) -> dict[str, Any]:
    """`thinking` and `output_config.effort` (reference 1.4.7): a budget as `enabled`, adaptive
    as `adaptive`, an effort alone as itself; another surface's effort (asked_by `reasoning`)
    becomes a budget, which every thinking model takes."""
    if reasoning is None or not reasoning.enabled:
        return {}
    effort = NEAREST_EFFORT.get(reasoning.effort or "", reasoning.effort)
    if reasoning.asked_by == "output_config.effort":
        return {"output_config": {"effort": effort}} if effort else {}
    if reasoning.adaptive:
        thinking: dict[str, Any] = {"type": "adaptive"}
        config = {"effort": effort} if effort else {}
    else:
        budget = reasoning.budget_tokens
        # decode.py checked a `thinking` budget already; any other is fitted under max_tokens.
        if reasoning.asked_by != "thinking" or budget is None:
            if budget is None:
                budget = EFFORT_BUDGETS.get(reasoning.effort or "medium", EFFORT_BUDGETS["medium"])
            budget = min(budget, max_tokens // 2)  # below max_tokens, with room to answer
            if budget < MIN_BUDGET:
                return {}  # too few tokens to think: answered without thinking
        thinking = {"type": "enabled", "budget_tokens": budget}
        # The effort a budget implies is not sent: older models refuse `output_config.effort`.
        chosen = reasoning.asked_by == "thinking" and effort not in (None, _budget_effort(budget))
        config = {"effort": effort} if chosen else {}
    if not reasoning.summary:
        thinking["display"] = "omitted"
    return {"thinking": thinking, "output_config": config} if config else {"thinking": thinking}


# --- The body ---------------------------------------------------------------------------------
def user_id(request: ir.Request) -> str:
    """An Anthropic client's `metadata.user_id` as given (what pass-through forwards); another
    surface's end-user id (OpenAI's `user`, `safety_identifier`: any string, e-mails included,
    which Anthropic forbids there) hashed, as the OpenAI routes hash it."""
    if request.surface == "anthropic" or request.user_id is None:
        return request.user_id or ""
    return ids.hashed_user_id(request.user_id)


def messages_body(request: ir.Request, target: Target) -> dict[str, Any]:
    """The whole `/v1/messages` body; the caller applies provider options over it."""
    body: dict[str, Any] = {"model": target.upstream_model, "max_tokens": request.max_tokens}
    system = [b for b in map(_text, request.system) if b is not None]
    if system:
        body["system"] = system
    body["messages"] = messages_json(request.messages)
    tools = tools_json(request)
    if tools:
        body["tools"] = tools
    if request.tool_choice is not None:
        body["tool_choice"] = tool_choice_json(request.tool_choice)
    reasoning = reasoning_json(request.reasoning, request.max_tokens)
    body.update(sampling_json(request, thinking="thinking" in reasoning))
    if request.stop_sequences:
        body["stop_sequences"] = request.stop_sequences
    if request.user_id is not None:
        body["metadata"] = {"user_id": user_id(request)}
    body.update(reasoning)
    if request.output_schema is not None:
        output_format = {"type": "json_schema", "schema": request.output_schema}
        body.setdefault("output_config", {})["format"] = output_format
    if request.service_tier is not None:
        body["service_tier"] = request.service_tier
    if request.stream:
        body["stream"] = True
    return body


def sampling_json(request: ir.Request, *, thinking: bool) -> dict[str, Any]:
    """temperature, top_p, top_k as Anthropic takes them: a temperature in OpenAI's 0-2 range
    clamped to Anthropic's 0-1, and neither temperature nor top_k beside thinking (Anthropic
    refuses them there; top_p at least 0.95)."""
    out: dict[str, Any] = {}
    if request.temperature is not None and not thinking:
        out["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        out["top_p"] = max(request.top_p, 0.95) if thinking else request.top_p
    if request.top_k is not None and not thinking:
        out["top_k"] = request.top_k
    return out
