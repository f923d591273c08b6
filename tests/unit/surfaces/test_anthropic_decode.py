"""Anthropic request JSON -> IR, and Anthropic's validation errors."""

import msgspec
import pytest

from gateway import ir
from gateway.errors import InvalidRequest
from gateway.surfaces.anthropic.decode import decode_messages, to_ir


def decode(body: dict, beta=None) -> ir.Request:
    return to_ir(decode_messages(msgspec.json.encode(body)), beta=beta)


def base(**extra) -> dict:
    return {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def error_of(body) -> str:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    with pytest.raises(InvalidRequest) as caught:
        to_ir(decode_messages(raw))
    return caught.value.message


def test_string_content_becomes_one_text_part():
    request = decode(base(system="be terse"))
    assert request.system == [ir.Text("be terse")]
    assert request.messages == [ir.Message("user", [ir.Text("hi")])]


def test_consecutive_same_role_turns_are_merged():
    request = decode(
        base(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
            ]
        )
    )
    assert request.messages == [ir.Message("user", [ir.Text("a"), ir.Text("b")])]


def test_missing_field_is_named():
    assert error_of({"model": "m", "messages": [{"role": "user", "content": "x"}]}) == (
        "max_tokens: Field required"
    )


def test_nested_missing_field_is_named_with_its_path():
    body = base(messages=[{"content": "x"}])
    assert error_of(body) == "messages.0.role: Field required"


def test_wrong_type_names_the_field():
    assert error_of(base(max_tokens="lots")).startswith("max_tokens: Expected `int`")


def test_malformed_json_is_invalid_request():
    assert error_of(b'{"model": ').startswith("Request body is not valid JSON")


def test_temperature_outside_zero_to_one_is_refused():
    assert error_of(base(temperature=1.5)).startswith("temperature:")


def test_empty_messages_are_refused():
    assert error_of(base(messages=[])).startswith("messages:")


def test_empty_text_block_is_refused_with_anthropic_wording():
    body = base(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}])
    assert error_of(body) == "messages.0.content.0.text: text content blocks must be non-empty"


def test_tool_use_id_must_match_pattern():
    body = base(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "bad id", "name": "t", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "bad id"}]},
        ]
    )
    assert "messages.1.content.0.tool_use.id" in error_of(body)


def test_tool_use_without_result_in_next_message_is_refused():
    body = base(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "t", "input": {}}],
            },
            {"role": "user", "content": "never mind"},
        ]
    )
    assert "tool_use` ids were found without `tool_result` blocks immediately after: t1" in (
        error_of(body)
    )


def test_tool_round_trip_decodes_every_part():
    body = base(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"c": "Lima"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "down"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "AA==",
                                },
                            },
                        ],
                    },
                    {"type": "text", "text": "and now?"},
                ],
            },
        ]
    )
    request = decode(body)
    assistant, user = request.messages[1], request.messages[2]
    assert assistant.content == [
        ir.Thinking("hmm", "sig"),
        ir.ToolUse("toolu_1", "get_weather", {"c": "Lima"}),
    ]
    assert user.content[0] == ir.ToolResult(
        "toolu_1", [ir.Text("down"), ir.Image(media_type="image/png", data="AA==")], True
    )


def test_server_tools_and_unknown_blocks_are_noted_as_unportable():
    body = base(
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "container_upload", "file_id": "f"},
                    {"type": "text", "text": "x"},
                ],
            }
        ],
    )
    request = decode(body)
    assert request.tools == []
    assert request.unportable == [
        "messages.0.content.0 (`container_upload` block)",
        "tools.0 (server tool `web_search_20250305`)",
    ]


def test_tool_choice_must_name_a_declared_tool():
    tools = [{"name": "a", "input_schema": {"type": "object"}}]
    assert "no tool named `b`" in error_of(
        base(tools=tools, tool_choice={"type": "tool", "name": "b"})
    )


def test_thinking_budget_rules():
    assert "budget_tokens" in error_of(base(thinking={"type": "enabled", "budget_tokens": 10}))
    assert error_of(base(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 4000})) == (
        "max_tokens: must be greater than thinking.budget_tokens"
    )
    request = decode(
        base(max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 4000}),
        beta=["interleaved-thinking-2025-05-14"],
    )
    assert request.reasoning == ir.Reasoning(budget_tokens=4000, effort="low")
    request = decode(base(max_tokens=9000, thinking={"type": "enabled", "budget_tokens": 8000}))
    assert request.reasoning.effort == "medium"


def test_gateway_reasoning_field_maps_to_reasoning():
    request = decode(base(reasoning={"effort": "high"}))
    assert request.reasoning == ir.Reasoning(effort="high")
    assert decode(base(reasoning={"effort": "none"})).reasoning is None


def test_unknown_top_level_fields_are_accepted():
    request = decode(base(context_management={"edits": []}, betas_unknown=1))
    assert request.model == "m"


def test_system_turns_mid_conversation_fold_into_the_system_prompt():
    request = decode(
        base(
            system="first",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "reminder"}]},
                {"role": "user", "content": "again"},
            ],
        )
    )
    assert request.system == [ir.Text("first"), ir.Text("reminder")]
    assert request.messages == [ir.Message("user", [ir.Text("hi"), ir.Text("again")])]
