"""The OpenAI Chat client surface against hostile bodies: every wrong type, missing field,
value past its edge and broken conversation is an InvalidRequest whose message starts with the
JSON path; nothing else ever escapes the decoder (property tests over valid and garbage bodies).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import client_json, ir
from core.errors import InvalidRequest
from protocols.openai_chat.surface import SURFACE
from tests.hostile.strategies import JSON_VALUES
from tests.unit.surfaces.test_openai_chat_client import PNG, base, decode, error_of


# --- Hostile inputs ---------------------------------------------------------------------------
def user(content: Any) -> dict[str, Any]:
    return base(messages=[{"role": "user", "content": content}])


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOLS = [{"type": "function", "function": {"name": "f"}}]


def history(*messages: dict[str, Any]) -> dict[str, Any]:
    return base(messages=[{"role": "user", "content": "go"}, *messages])


HOSTILE = [
    ({"model": "m"}, "messages: Field required"),
    (base(messages=[]), "messages: Expected `array` of length >= 1"),
    (base(messages="hi"), "messages: Expected `array`"),
    (base(model=7), "model: Expected `str`"),
    (base(messages=[{"role": "robot", "content": "x"}]), "messages.0.role: Invalid enum value"),
    (
        base(messages=[{"role": "function", "content": "x", "name": "f"}]),
        "messages.0.role: `function`",
    ),
    (base(messages=[{"role": "system", "content": "only"}]), "messages: at least one user"),
    (base(messages=[{"role": "user"}]), "messages.0.content: Field required"),
    (base(messages=[{"role": "user", "content": 5}]), "messages.0.content: Expected `str | array"),
    (user([7]), "messages.0.content.0: Input should be a valid dictionary"),
    (user([{"text": "x"}]), "messages.0.content.0.type: Field required"),
    (user([{"type": "text"}]), "messages.0.content.0.text: Field required"),
    (
        user([{"type": "text", "text": {"a": 1}}]),
        "messages.0.content.0.text: Input should be a valid string",
    ),
    (
        user([{"type": "video", "video": {}}]),
        "messages.0.content.0.type: unknown content part type",
    ),
    (
        user([{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]),
        "messages.0.content.0.type: `input_audio`",
    ),
    (user([{"type": "image_url"}]), "messages.0.content.0.image_url: Field required"),
    (
        user([{"type": "image_url", "image_url": {"url": 3}}]),
        "messages.0.content.0.image_url.url: Field required",
    ),
    (
        user([{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]),
        "messages.0.content.0.image_url.url: must be an http(s) URL",
    ),
    (
        user([{"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "max"}}]),
        "messages.0.content.0.image_url.detail",
    ),
    (
        user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}}]),
        "messages.0.content.0.image_url.url: invalid base64 data",
    ),
    (
        user([{"type": "image_url", "image_url": {"url": "data:image/tiff;base64," + PNG}}]),
        "media type `image/tiff`",
    ),
    (
        user([{"type": "image_url", "image_url": {"url": "data:image/png," + PNG}}]),
        "a data URL must read",
    ),
    (
        user([{"type": "file", "file": {"file_id": "file-abc"}}]),
        "messages.0.content.0.file.file_id: uploaded file ids",
    ),
    (
        user([{"type": "file", "file": {"file_data": "data:text/csv;base64,YQ=="}}]),
        "messages.0.content.0.file.file_data: media type",
    ),
    (
        user(
            [
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": 3},
                }
            ]
        ),
        "file.filename",
    ),
    (
        history(
            {
                "role": "assistant",
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{bad"}}],
            }
        ),
        "messages.1.tool_calls.0.function.arguments: must be a JSON-encoded object",
    ),
    (
        history(
            {
                "role": "assistant",
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[1]"}}],
            }
        ),
        "messages.1.tool_calls.0.function.arguments: must be a JSON-encoded object",
    ),
    (
        history(
            {
                "role": "assistant",
                "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {"a": 1}}}],
            }
        ),
        "messages.1.tool_calls.0.function.arguments: Expected `str`",
    ),
    (
        history(
            {
                "role": "assistant",
                "tool_calls": [
                    {**CALL, "function": {"name": "f", "arguments": "[" * 200 + "]" * 200}}
                ],
            }
        ),
        "deeper than 128 levels",
    ),
    (
        history({"role": "assistant", "tool_calls": [{**CALL, "type": "custom"}]}),
        "messages.1.tool_calls.0.type",
    ),
    (
        history({"role": "assistant", "tool_calls": [{**CALL, "id": ""}]}),
        "messages.1.tool_calls.0.id",
    ),
    (
        history({"role": "assistant", "tool_calls": [CALL, CALL]}),
        "messages.1.tool_calls.1.id: duplicate",
    ),
    (
        history({"role": "assistant", "tool_calls": [CALL]}),
        "messages.1.tool_calls: An assistant message with 'tool_calls' must be followed",
    ),
    (
        history({"role": "assistant", "tool_calls": [CALL]}, {"role": "user", "content": "x"}),
        "did not have response messages: call_1",
    ),
    (
        history({"role": "tool", "tool_call_id": "call_1", "content": "x"}),
        "messages.1.role: messages with role 'tool' must be a response",
    ),
    (
        history(
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_9", "content": "x"},
        ),
        "messages.2.tool_call_id: `call_9` answers no open tool call",
    ),
    (
        history({"role": "assistant", "tool_calls": [CALL]}, {"role": "tool", "content": "x"}),
        "messages.2.tool_call_id: Field required",
    ),
    (
        history(
            {"role": "assistant", "tool_calls": [CALL]},
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
            },
        ),
        "messages.2.content.0.type: only `text` parts",
    ),
    (
        history(
            {"role": "assistant", "content": "x", "function_call": {"name": "f", "arguments": "{}"}}
        ),
        "messages.1.function_call: deprecated",
    ),
    (
        history(
            {
                "role": "assistant",
                "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
            }
        ),
        "messages.1.content.0.type: only `text` or `refusal` parts",
    ),
    (base(n=0), "n: Input should be greater than or equal to 1"),
    (base(functions=[{"name": "f"}]), "functions: deprecated"),
    (base(function_call="auto"), "function_call: deprecated"),
    (base(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
    (
        base(max_completion_tokens=10**12),
        "max_completion_tokens: Input should be less than or equal to 2147483647",
    ),
    (base(max_tokens="100"), "max_tokens: Expected `int | null`"),
    (base(temperature=2.5), "temperature: Input should be less than or equal to 2"),
    (base(temperature=-0.1), "temperature: Input should be greater than or equal to 0"),
    (base(top_p=1.5), "top_p: Input should be less than or equal to 1"),
    (base(stop=["a", "b", "c", "d", "e"]), "stop: Expected `array` of length <= 4"),
    (base(stop=5), "stop: Expected `str | array | null`"),
    (base(stream="yes"), "stream: Expected `bool | null`"),
    (
        base(stream_options={"include_usage": "yes"}),
        "stream_options.include_usage: Expected `bool`",
    ),
    (base(reasoning_effort="extreme"), "reasoning_effort: Invalid enum value 'extreme'"),
    (base(service_tier="gold"), "service_tier: Invalid enum value 'gold'"),
    (base(safety_identifier="x" * 65), "safety_identifier: Expected `str` of length <= 64"),
    (base(presence_penalty=3), "presence_penalty: Input should be less than or equal to 2"),
    (base(logit_bias={"1": 500}), "logit_bias"),
    (base(metadata={"a": 1}), "metadata[...]: Expected `str`"),
    (
        base(tools=[{"type": "custom", "custom": {"name": "x"}}]),
        "tools.0.type: only `function` tools",
    ),
    (base(tools=[{"type": "function"}]), "tools.0.function: Field required"),
    (
        base(tools=[{"type": "function", "function": {"name": "get weather"}}]),
        "tools.0.function.name: String should match",
    ),
    (
        base(tools=[{"type": "function", "function": {"name": "x" * 65}}]),
        "tools.0.function.name: String should match",
    ),
    (base(tools=[*TOOLS, *TOOLS]), "tools.1.function.name: tool names must be unique"),
    (
        base(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
        "tools.0.function.parameters: Expected `object | null`",
    ),
    (base(tools="all"), "tools: Expected `array | null`"),
    (base(tools=TOOLS, tool_choice="any"), "tool_choice: Invalid enum value 'any'"),
    (
        base(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "g"}}),
        "tool_choice.function.name: no tool named `g`",
    ),
    (
        base(tools=TOOLS, tool_choice={"type": "function"}),
        "tool_choice.function: only a `function`",
    ),
    (
        base(tools=TOOLS, tool_choice={"type": "custom", "custom": {"name": "f"}}),
        "tool_choice.custom: only a `function`",
    ),
    (
        base(tools=TOOLS, tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "x"}}),
        "tool_choice.allowed_tools.mode",
    ),
    (base(tool_choice="required"), "tool_choice: a tool must be chosen from `tools`"),
    (
        base(tool_choice={"type": "function", "function": {"name": "f"}}),
        "tool_choice: a tool must be chosen",
    ),
    (base(response_format={"type": "xml"}), "response_format.type: Invalid enum value 'xml'"),
    (base(response_format={"type": "json_schema"}), "response_format.json_schema: Field required"),
    (
        base(response_format={"type": "json_schema", "json_schema": {"schema": "s"}}),
        "response_format.json_schema.schema: Expected `object | null`",
    ),
    (base(reasoning={"effort": "huge"}), "reasoning.effort: Invalid enum value 'huge'"),
    (base(provider_options={"openai": 3}), "provider_options[...]: Expected `object`"),
    (base(debug={"enabled": "yes"}), "debug.enabled: Expected `bool`"),
    (base(provider={"sort": "random"}), "provider.sort: Invalid enum value 'random'"),
    (base(usage="yes"), "usage: Expected `bool`"),
]


@pytest.mark.parametrize(("body", "message"), HOSTILE, ids=[m[:60] for _, m in HOSTILE])
def test_hostile_body_is_a_400_naming_the_field(body: dict[str, Any], message: str):
    assert message in error_of(body)


def test_an_error_message_starts_with_the_json_path_openai_reports_as_param():
    message = error_of(user([{"type": "text", "text": None}]))
    status, body = SURFACE.error(InvalidRequest(message), "r")
    assert (status, msgspec.json.decode(body)["error"]["param"]) == (
        400,
        "messages[0].content[0].text",
    )


def test_tool_arguments_may_be_empty_for_a_call_without_parameters():
    call = {**CALL, "function": {"name": "f", "arguments": " "}}
    body = history(
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": ""},
    )
    request = decode(body).request
    assert request.messages[1].content == [ir.ToolUse(id="call_1", name="f", input={})]
    assert request.messages[2].content == [ir.ToolResult(tool_use_id="call_1", content=[])]


def test_empty_texts_add_no_parts_and_empty_turns_no_turns():
    body = base(
        messages=[
            {"role": "user", "content": ""},
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "x"}],
            },
        ]
    )
    assert decode(body).request.messages == [ir.Message("user", [ir.Text("x")])]


def test_tool_choice_auto_or_none_without_tools_means_nothing():
    for choice in ("auto", "none"):
        assert (
            decode(base(tool_choice=choice, parallel_tool_calls=False)).request.tool_choice is None
        )


def test_reasoning_effort_none_and_disabled_reasoning_ask_for_none():
    assert decode(base(reasoning_effort="none")).request.reasoning is None
    assert (
        decode(base(reasoning_effort="high", reasoning={"enabled": False})).request.reasoning
        is None
    )


def test_stream_options_without_stream_asks_nothing():
    assert decode(base(stream_options={"include_usage": True})).ask.stream_usage is False


def test_allowed_tools_keep_the_mode_and_report_the_list():
    decoded = decode(
        base(
            tools=TOOLS,
            tool_choice={
                "type": "allowed_tools",
                "allowed_tools": {"mode": "required", "tools": []},
            },
        )
    )
    assert decoded.request.tool_choice == ir.ToolChoice(type="any")
    assert decoded.dropped == ["tool_choice.allowed_tools.tools"]


def test_idle_values_of_unsupported_fields_are_not_reported():
    body = base(
        logprobs=False,
        store=False,
        frequency_penalty=0,
        metadata={},
        logit_bias={},
        modalities=["text"],
    )
    assert decode(body).dropped == []


# Schema-shaped garbage: every field of the schema, each given any JSON value at all.
_FIELDS = [
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "stop",
    "n",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "reasoning",
    "service_tier",
    "stream_options",
    "user",
    "logit_bias",
    "provider_options",
    "debug",
]
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])},
    optional={
        "content": JSON_VALUES
        | st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["text", "image_url", "file", "refusal", "input_audio"])},
                optional={
                    "text": JSON_VALUES,
                    "image_url": JSON_VALUES,
                    "file": JSON_VALUES,
                    "refusal": JSON_VALUES,
                },
            ),
            max_size=3,
        ),
        "tool_calls": JSON_VALUES
        | st.lists(
            st.fixed_dictionaries(
                {
                    "id": JSON_VALUES,
                    "function": st.fixed_dictionaries(
                        {"name": st.text(max_size=5), "arguments": st.text(max_size=12)}
                    ),
                }
            ),
            max_size=2,
        ),
        "tool_call_id": JSON_VALUES,
        "reasoning_content": JSON_VALUES,
    },
)
BODIES = st.fixed_dictionaries(
    {"model": st.just("gpt-4.1"), "messages": st.lists(_MESSAGE, min_size=1, max_size=4)},
    optional={name: JSON_VALUES for name in _FIELDS if name not in ("model", "messages")},
)


# Valid bodies: a conversation from the surface's vocabulary and options at their edges.
_TEXT = st.text(min_size=1, max_size=12)
_PART = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _TEXT),
    st.just({"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}}),
    st.just(
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
    ),
)
_ARGS = st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3)


def _round(call_id: str, args: dict[str, Any], answer: str) -> list[dict[str, Any]]:
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": "f", "arguments": json.dumps(args)},
    }
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": answer},
    ]


_CONVERSATION = st.builds(
    lambda system, first, rounds, last: [*system, first, *[m for r in rounds for m in r], last],
    st.lists(st.builds(lambda t: {"role": "developer", "content": t}, _TEXT), max_size=1),
    st.builds(
        lambda c: {"role": "user", "content": c}, _TEXT | st.lists(_PART, min_size=1, max_size=3)
    ),
    st.lists(
        st.builds(_round, st.text("abc_-1", min_size=1, max_size=8), _ARGS, st.text(max_size=8)),
        max_size=2,
    ),
    st.builds(lambda t: {"role": "user", "content": t}, _TEXT),
)
VALID = st.fixed_dictionaries(
    {"model": st.just("gpt-4.1"), "messages": _CONVERSATION, "tools": st.just(TOOLS)},
    optional={
        "max_tokens": st.integers(1, 2**31 - 1),
        "max_completion_tokens": st.integers(1, 2**31 - 1),
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "stop": _TEXT | st.lists(st.text(max_size=4), max_size=4),
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "tool_choice": st.sampled_from(
            ["auto", "none", "required", {"type": "function", "function": {"name": "f"}}]
        ),
        "parallel_tool_calls": st.booleans(),
        "reasoning_effort": st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh"]),
        "response_format": st.sampled_from(
            [
                {"type": "text"},
                {"type": "json_object"},
                {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            ]
        ),
        "service_tier": st.sampled_from(["auto", "default", "flex", "priority"]),
        "seed": st.integers(-(2**63), 2**63 - 1),
        "user": st.text(max_size=20),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALID)
def test_valid_bodies_always_decode(body: dict[str, Any]):
    decoded = decode(body)
    calls = sum(len(m.get("tool_calls") or []) for m in body["messages"])
    results = [
        p for m in decoded.request.messages for p in m.content if isinstance(p, ir.ToolResult)
    ]
    assert len(results) == calls and decoded.request.messages[-1].role == "user"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        VALID, BODIES, st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), JSON_VALUES)
    )
)
def test_any_json_object_decodes_or_is_an_invalid_request(body: dict[str, Any]):
    raw = msgspec.json.encode(body)
    try:
        decoded = SURFACE.decode(raw, client_json.decode_object(raw), {})
    except InvalidRequest as err:
        assert err.message and err.status == 400
        return
    assert decoded.request.messages and decoded.request.max_tokens >= 1
    msgspec.json.encode(decoded.request)  # what was accepted can be encoded again


def test_more_than_one_choice_is_a_field_no_route_honours():
    """Reported (strictness warn: one choice is served) or refused (strictness error)."""
    assert "n" in decode(base(n=2)).dropped
    assert "n" not in decode(base(n=1)).dropped
