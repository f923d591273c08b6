"""Context editing applied by the gateway on translated routes (gateway/context_edits.py),
decoded from Anthropic's `context_management` (protocols/anthropic/server_tools.py)."""

from __future__ import annotations

import pytest

from core import ir
from core.errors import InvalidRequest
from gateway import context_edits
from protocols.anthropic.decode import messages_body, to_ir

BIG = "word " * 3000  # about 3,000 tokens


def conversation(tool_uses: int, *, thinking: bool = False) -> list[dict]:
    messages: list[dict] = [{"role": "user", "content": "read the files"}]
    for i in range(tool_uses):
        assistant: list[dict] = []
        if thinking:
            assistant.append({"type": "thinking", "thinking": f"plan {i}", "signature": "s"})
        assistant.append(
            {"type": "tool_use", "id": f"toolu_{i}", "name": "Read", "input": {"path": f"f{i}"}}
        )
        messages.append({"role": "assistant", "content": assistant})
        result = {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": BIG}
        messages.append({"role": "user", "content": [result]})
    return messages


def request_with(edits: list[dict], messages: list[dict]) -> ir.Request:
    body = {
        "model": "m",
        "max_tokens": 100,
        "messages": messages,
        "context_management": {"edits": edits},
    }
    return to_ir(messages_body(body))


def results(request: ir.Request) -> list[str]:
    return [
        p.content[0].text[:20]
        for m in request.messages
        for p in m.content
        if isinstance(p, ir.ToolResult)
    ]


def test_old_tool_results_are_cleared_past_the_trigger_keeping_the_last_ones():
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 5000},
        "keep": {"type": "tool_uses", "value": 2},
    }
    request = request_with([edit], conversation(5))
    applied = context_edits.apply(request)
    assert results(request) == [context_edits.PLACEHOLDER[:20]] * 3 + [BIG[:20]] * 2
    assert len(applied) == 1
    assert applied[0].type == "clear_tool_uses_20250919"
    assert applied[0].cleared_tool_uses == 3
    assert 8000 < applied[0].cleared_input_tokens < 10000
    uses = [p for m in request.messages for p in m.content if isinstance(p, ir.ToolUse)]
    assert uses[0].input == {"path": "f0"}  # inputs stay unless asked


def test_nothing_is_cleared_below_the_trigger():
    request = request_with([{"type": "clear_tool_uses_20250919"}], conversation(5))
    assert context_edits.apply(request) == []  # the default trigger is 100,000 tokens
    assert results(request) == [BIG[:20]] * 5


def test_excluded_tools_and_tool_inputs():
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 1},
        "keep": {"type": "tool_uses", "value": 0},
        "exclude_tools": ["Read"],
    }
    request = request_with([edit], conversation(3))
    assert context_edits.apply(request) == []
    edit["exclude_tools"], edit["clear_tool_inputs"] = [], True
    request = request_with([edit], conversation(3))
    (applied,) = context_edits.apply(request)
    assert applied.cleared_tool_uses == 3
    uses = [p for m in request.messages for p in m.content if isinstance(p, ir.ToolUse)]
    assert [u.input for u in uses] == [{}, {}, {}]


def test_clear_at_least_holds_back_a_clearing_too_small():
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 1},
        "keep": {"type": "tool_uses", "value": 1},
        "clear_at_least": {"type": "input_tokens", "value": 50_000},
    }
    request = request_with([edit], conversation(3))
    assert context_edits.apply(request) == []
    assert results(request) == [BIG[:20]] * 3


def test_thinking_of_older_turns_is_cleared_and_keep_all_keeps_it():
    edit = {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 1}}
    request = request_with([edit], conversation(3, thinking=True))
    (applied,) = context_edits.apply(request)
    assert applied.cleared_thinking_turns == 2 and applied.cleared_input_tokens > 0
    kept = [p for m in request.messages for p in m.content if isinstance(p, ir.Thinking)]
    assert [t.thinking for t in kept] == ["plan 2"]
    request = request_with(
        [{"type": "clear_thinking_20251015", "keep": "all"}], conversation(3, thinking=True)
    )
    assert context_edits.apply(request) == []


def test_no_context_management_applies_nothing():
    body = {"model": "m", "max_tokens": 10, "messages": conversation(1)}
    assert context_edits.apply(to_ir(messages_body(body))) is None


def test_compaction_and_unknown_edits_are_noted_for_the_strictness_rule_not_applied():
    edits = [{"type": "compact_20260112"}, {"type": "shred_29990101"}]
    request = request_with(edits, conversation(1))
    assert request.context_edits == []
    assert request.context_dropped == [
        "context_management.edits.0 (`compact_20260112` edit)",
        "context_management.edits.1 (`shred_29990101` edit)",
    ]


@pytest.mark.parametrize(
    ("context_management", "message"),
    [
        ("all", "context_management: Expected `object | null`, got `str`"),
        ({"edits": {}}, "context_management.edits: Input should be a valid list"),
        ({"edits": [{}]}, "context_management.edits.0.type: Field required"),
        (
            {"edits": [{"type": "clear_tool_uses_20250919", "keep": {"type": "x", "value": 1}}]},
            "context_management.edits.0.keep: Input should be an object with type 'tool_uses'",
        ),
        (
            {
                "edits": [
                    {
                        "type": "clear_tool_uses_20250919",
                        "trigger": {"type": "input_tokens", "value": -1},
                    }
                ]
            },
            "context_management.edits.0.trigger.value: Input should be a non-negative integer",
        ),
        (
            {"edits": [{"type": "clear_tool_uses_20250919", "exclude_tools": "Read"}]},
            "context_management.edits.0.exclude_tools: Input should be a list of tool names",
        ),
        (
            {"edits": [{"type": "clear_thinking_20251015", "keep": 3}]},
            "context_management.edits.0.keep: Input should be an object with type",
        ),
    ],
)
def test_garbage_context_management_is_a_clear_400(context_management, message):
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "context_management": context_management,
    }
    with pytest.raises(InvalidRequest) as caught:
        to_ir(messages_body(body))
    assert caught.value.message.startswith(message)
