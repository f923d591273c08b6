"""The OpenAI Responses client surface: golden files per direction, the reasoning round trip to
a Responses upstream, hostile inputs, and the SDK's own types as the judge of what we send.

Goldens live in `tests/golden/openai_responses_client/`: `decode_*` ({wire, expected_request,
expected_ask, expected_dropped}; the request without its empty fields, `raw` and `raw_json`),
`encode_*` ({request_wire?, ir_response, expected}) and `stream_*` ({request_wire?, events,
expected_events}: IR events in, the SSE payloads out, each under its own `type`).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import ir
from core.errors import (
    InvalidRequest,
)
from protocols.openai_responses import client_decode
from protocols.openai_responses.client_encode import response_json
from protocols.openai_responses.client_stream import StreamWriter
from protocols.openai_responses.request import responses_body
from protocols.openai_responses.surface import SURFACE
from protocols.openai_responses.upstream_response import response_from
from tests.unit.adapters.goldens import cases
from tests.unit.adapters.test_openai_responses import make_target

FOLDER = "openai_responses_client"
CREATED = 1756314637
RESPONSE_ID = "resp_gold"


# --- harness ----------------------------------------------------------------------------------
def decode(wire: dict[str, Any]):
    return client_decode.decode(wire, json.dumps(wire).encode())


def compact(value: Any) -> Any:
    """Builtins without empty fields: what a golden file states."""
    if isinstance(value, dict):
        return {
            k: compact(v)
            for k, v in value.items()
            if v not in (None, [], {}, "", False) and k not in ("raw", "raw_json")
        }
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def decoded_view(wire: dict[str, Any]) -> dict[str, Any]:
    decoded = decode(wire)
    return {
        "expected_request": compact(msgspec.to_builtins(decoded.request)),
        "expected_ask": compact(msgspec.to_builtins(decoded.ask)),
        "expected_dropped": decoded.dropped,
    }


def request_of(case: dict[str, Any]) -> ir.Request | None:
    wire = case.get("request_wire")
    return decode(wire).request if wire is not None else None


def encoded(case: dict[str, Any]) -> dict[str, Any]:
    response = msgspec.convert(case["ir_response"], ir.Response)
    return response_json(
        response,
        response_id=RESPONSE_ID,
        model="gpt-5",
        request=request_of(case),
        created_at=CREATED,
    )


def frames(data: bytes) -> list[dict[str, Any]]:
    events = []
    for chunk in data.decode().split("\n\n"):
        if not chunk:
            continue
        name_line, data_line = chunk.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        payload = json.loads(data_line[6:])
        assert payload["type"] == name_line[7:]  # the event line names the JSON type
        events.append(payload)
    return events


def writer(request: ir.Request | None = None, **kw: Any) -> StreamWriter:
    return StreamWriter(
        response_id=RESPONSE_ID, model="gpt-5", request=request, created_at=CREATED, **kw
    )


def streamed(case: dict[str, Any]) -> list[dict[str, Any]]:
    events = msgspec.convert(case["events"], list[ir.StreamEvent])
    w = writer(request_of(case), input_estimate=case.get("input_estimate", 0))
    return frames(b"".join(w.feed(e) for e in events))


# --- goldens ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", cases(FOLDER, "decode"))
def test_decode_golden(case):
    expected = {k: case[k] for k in ("expected_request", "expected_ask", "expected_dropped")}
    assert decoded_view(case["wire"]) == expected


@pytest.mark.parametrize("case", cases(FOLDER, "encode"))
def test_encode_golden(case):
    assert encoded(case) == case["expected"]


@pytest.mark.parametrize("case", cases(FOLDER, "stream"))
def test_stream_golden(case):
    events = streamed(case)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events == case["expected_events"]


# --- the SDK's types judge what we send -------------------------------------------------------
@pytest.mark.parametrize("case", cases(FOLDER, "encode"))
def test_encoded_response_is_a_valid_sdk_response(case):
    responses = pytest.importorskip("openai.types.responses")
    parsed = responses.Response.model_validate(encoded(case))
    texts = [p["text"] for i in case["expected"]["output"] for p in i.get("content", [])
             if p["type"] == "output_text"]  # fmt: skip
    assert parsed.output_text == "".join(texts)


@pytest.mark.parametrize("case", cases(FOLDER, "stream"))
def test_stream_events_are_valid_sdk_events(case):
    responses = pytest.importorskip("openai.types.responses")
    pydantic = pytest.importorskip("pydantic")
    adapter = pydantic.TypeAdapter(responses.ResponseStreamEvent)
    events = [adapter.validate_python(e) for e in streamed(case)]
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete", "response.failed")
    responses.Response.model_validate(events[-1].response.model_dump())


# --- reasoning round trip ---------------------------------------------------------------------
UPSTREAM_ANSWER = {
    "id": "resp_up",
    "object": "response",
    "status": "completed",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_68af3c0e1a2c8190",
            "summary": [{"type": "summary_text", "text": "Need the weather tool."}],
            "encrypted_content": "gAAAAABo-opaque",
            "status": "completed",
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_Xu7kPq9a",
            "name": "get_weather",
            "arguments": '{"city":"Lima"}',
            "status": "completed",
        },
    ],
    "usage": {"input_tokens": 20, "output_tokens": 10},
}
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


def test_reasoning_item_round_trips_to_a_responses_upstream_unchanged():
    first = {
        "model": "gpt-5",
        "input": "Weather in Lima?",
        "tools": [TOOL],
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "store": False,
    }
    target = make_target()
    answer = response_from(UPSTREAM_ANSWER, decode(first).request, target)
    body = SURFACE.response(
        answer, response_id="resp_1", model="gpt-5", extras=None, decoded=decode(first)
    )
    reasoning, call = body["output"]
    assert reasoning["encrypted_content"]  # given back only because `include` asked
    second = {
        **first,
        "input": [
            {"role": "user", "content": "Weather in Lima?"},
            reasoning,
            call,
            {"type": "function_call_output", "call_id": call["call_id"], "output": "18C"},
        ],
    }
    upstream = responses_body(decode(second).request, target)
    assert upstream["input"][1] == {k: v for k, v in UPSTREAM_ANSWER["output"][0].items()
                                    if k != "status"}  # fmt: skip
    assert upstream["input"][2]["call_id"] == "call_Xu7kPq9a"
    assert upstream["input"][3] == {
        "type": "function_call_output",
        "call_id": "call_Xu7kPq9a",
        "output": "18C",
    }


def test_reasoning_without_include_has_no_encrypted_content():
    wire = {"model": "gpt-5", "input": "Hi", "reasoning": {"summary": "auto"}}
    answer = response_from(UPSTREAM_ANSWER, decode(wire).request, make_target())
    body = SURFACE.response(
        answer, response_id="resp_1", model="gpt-5", extras=None, decoded=decode(wire)
    )
    assert body["output"][0]["encrypted_content"] is None


def test_a_forged_reasoning_item_is_not_replayed_upstream():
    wire = {
        "model": "gpt-5",
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "tg1.e30.bad"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again"},
        ],
    }
    upstream = responses_body(decode(wire).request, make_target())
    assert [i.get("type", "message") for i in upstream["input"]] == ["message"] * 3


# --- decode behaviours ------------------------------------------------------------------------
def test_absent_store_is_not_reported_but_explicit_true_is():
    assert decode({"model": "m", "input": "x"}).dropped == []
    assert decode({"model": "m", "input": "x", "store": False}).dropped == []
    assert decode({"model": "m", "input": "x", "store": True}).dropped == [
        "store (this gateway keeps no responses)"
    ]


def test_surface_decode_sets_surface_and_raw():
    wire = {"model": "m", "input": "x", "usage": True, "provider": {"order": ["a"]}}
    raw = json.dumps(wire).encode()
    decoded = SURFACE.decode(raw, wire, {})
    assert decoded.request.surface == "openai_responses" == SURFACE.name
    assert decoded.request.raw == raw and decoded.request.raw_json is wire
    assert decoded.ask.usage and decoded.ask.provider.order == ["a"]
    assert SURFACE.new_id().startswith("resp_") and SURFACE.endpoint == "responses"


def test_client_provider_options_win_over_native_fields():
    wire = {
        "model": "m",
        "input": "x",
        "prompt_cache_key": "native",
        "provider_options": {"openai": {"prompt_cache_key": "explicit"}},
    }
    assert decode(wire).request.provider_options == {"openai": {"prompt_cache_key": "explicit"}}


HOSTILE = [
    ({"model": "m"}, "input: Field required"),
    ({"model": "", "input": "x"}, "model: "),
    ({"model": "m", "input": 5}, "input: Expected `str | array`"),
    ({"model": "m", "input": ""}, "input: must hold at least one"),
    ({"model": "m", "input": [1]}, "input.0: Expected `object`"),
    ({"model": "m", "input": [{}]}, "input.0.type: Field required"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input.0.role: Input should"),
    ({"model": "m", "input": [{"role": "user", "content": 3}]}, "input.0.content: Input should"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
     "input.0.content.0.type: `output_text` is not allowed here"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
     "input.0.content.0.text: Field required"),
    ({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "ftp://x"}]}]},
     "input.0.content.0.image_url: must be"),
    ({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/svg+xml;base64,AA=="}]}]},
     "image type `image/svg+xml` not supported"),
    ({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": "file-1"}]}]}, "input.0.content.0.file_id: file ids"),
    ({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_file", "file_data": "data:text/plain;base64,AA=="}]}]},
     "input.0.content.0.file_data: must be a data:application/pdf"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                               "arguments": "{nope"}]}, "input.0.arguments: not valid JSON"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                               "arguments": "[1]"}]}, "input.0.arguments: must be a JSON object"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                               "arguments": {"a": 1}}]}, "input.0.arguments: Input should be"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                               "arguments": "{}"}]}, "input.0: no function_call_output for call"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                               "arguments": "[" * 5000 + "]" * 5000}]},
     "input.0.arguments: not valid JSON"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                               "arguments": '{"a": 1e400}'}]}, "input.0.arguments: not valid JSON"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "ghost", "output": "x"}]},
     "input.0.call_id: no function_call with call_id `ghost`"),
    ({"model": "m", "input": [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]},
     "input.1.call_id: duplicate call_id `c`"),
    ({"model": "m", "input": [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "x"},
        {"type": "function_call_output", "call_id": "c", "output": "y"}]},
     "input.2.call_id: call `c` already has an output"),
    ({"model": "m", "input": [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
        {"type": "function_call_output", "call_id": "c", "output": "x"}]},
     "input.3: the output of `c` must follow its function_call"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": "x", "encrypted_content": "e"}]},
     "input.0.summary: Input should be a valid list"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": [], "encrypted_content": 4}]},
     "input.0.encrypted_content: Input should be a valid string"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]},
     "input.0.type: `item_reference` items are not supported"),
    ({"model": "m", "input": [{"type": "computer_call"}]}, "`computer_call` items are not"),
    ({"model": "m", "input": "x", "previous_response_id": "resp_1"},
     "previous_response_id: this gateway keeps no responses; send the whole conversation "
     "(store: false)"),
    ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation: "),
    ({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}}, "prompt: stored prompts"),
    ({"model": "m", "input": "x", "background": True}, "background: "),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens: Input should be"),
    ({"model": "m", "input": "x", "max_output_tokens": 10**30}, "max_output_tokens: "),
    ({"model": "m", "input": "x", "temperature": 3}, "temperature: Input should be less than"),
    ({"model": "m", "input": "x", "top_p": "high"}, "top_p: Expected `float | null`"),
    ({"model": "m", "input": "x", "stream": "yes"}, "stream: Expected `bool`"),
    ({"model": "m", "input": "x", "tools": [{"type": "file_search"}]},
     "tools.0.type: `file_search` tools are not supported"),
    ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools.0.type: Field required"),
    ({"model": "m", "input": "x", "tools": [{"type": "function", "name": "bad name"}]},
     "tools.0.name: String should match"),
    ({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f", "parameters": []}]},
     "tools.0.parameters: Input should be a valid dictionary"),
    ({"model": "m", "input": "x", "tools": [TOOL, TOOL]}, "tools: function names must be unique"),
    ({"model": "m", "input": "x", "tool_choice": "always"}, "tool_choice: Input should be"),
    ({"model": "m", "input": "x", "tools": [TOOL], "tool_choice": {"type": "function",
                                                                  "name": "other"}},
     "tool_choice.name: no function named `other`"),
    ({"model": "m", "input": "x", "tool_choice": {"type": "file_search"}},
     "tool_choice.type: `file_search` is not supported"),
    ({"model": "m", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort: "),
    ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}},
     "text.format.name: Field required"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}},
     "text.format.type: Invalid value"),
    ({"model": "m", "input": "x", "metadata": {"k": 1}}, "metadata[...]: Expected `str`"),
    ({"model": "m", "input": "x", "provider_options": {"openai": 1}},
     "provider_options[...]: Expected `object`"),
    ({"model": "m", "input": "x", "debug": {"trace_level": "all"}}, "debug.trace_level"),
]  # fmt: skip


@pytest.mark.parametrize(("wire", "message"), HOSTILE)
def test_hostile_input_is_a_400_naming_the_field(wire, message):
    with pytest.raises(InvalidRequest) as caught:
        decode(wire)
    assert message in caught.value.message
    status, body = SURFACE.error(caught.value, "req_1")
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ITEM_KEYS = st.sampled_from(
    ["type", "role", "content", "call_id", "name", "arguments", "output", "summary",
     "encrypted_content", "text", "image_url", "file_data", "file_url", "filename"]
)  # fmt: skip
ITEM_VALUES = JSON | st.sampled_from(
    ["message", "function_call", "function_call_output", "reasoning", "user", "assistant",
     "developer", "input_text", "output_text", "input_image", "input_file", "c", "{}"]
)  # fmt: skip
ITEMS = st.lists(st.dictionaries(ITEM_KEYS, ITEM_VALUES, max_size=6), max_size=5)
TOP_KEYS = st.sampled_from(sorted(client_decode.KNOWN_FIELDS))


@settings(max_examples=300, deadline=None)
@given(
    extra=st.dictionaries(TOP_KEYS | st.text(max_size=6), JSON, max_size=4),
    items=ITEMS | st.text(max_size=4),
)
def test_any_json_object_decodes_or_is_an_invalid_request(extra, items):
    for wire in (
        extra,
        {"model": "m", "input": items, **extra},
        {**extra, "model": "m", "input": items},
    ):
        try:
            decoded = decode(wire)
        except InvalidRequest as err:
            assert err.message
        else:
            assert decoded.request.messages and decoded.request.max_tokens >= 1


# --- encode and stream behaviours -------------------------------------------------------------
def test_extras_merge_into_usage_and_top_level():
    response = ir.Response(content=[ir.Text("hi")], stop_reason="end_turn", usage=ir.Usage())
    body = response_json(
        response,
        response_id="resp_1",
        model="m",
        extras=lambda usage: ({"cost_usd": "0"}, {"meta": {"provider": "p"}}),
    )
    assert body["usage"]["cost_usd"] == "0" and body["meta"] == {"provider": "p"}


def test_stream_failure_after_text_is_response_failed_and_scrubbed():
    w = writer()
    out = b"".join(
        w.feed(e)
        for e in [ir.TextDelta("Hel"), ir.StreamError("overloaded_error", "upstream overloaded")]
    )
    events = frames(out)
    assert [e["type"] for e in events][-1] == "response.failed"
    assert events[-1]["response"]["error"] == {
        "code": "server_error",
        "message": "upstream overloaded",
    }
    assert w.finished and w.feed(ir.TextDelta("late")) == b"" and w.output_chars == 3
    assert w.error_type == "overloaded_error"  # the usage record's stream error


def test_writer_has_every_attribute_the_consumer_accounts_from():
    """gateway/api/surface.py reads these after every stream: a missing one lost the record."""
    w = writer()
    for name in ("finished", "error_type", "usage", "stop_reason", "output_chars", "extras"):
        assert hasattr(w, name), name
    assert w.error_type is None


def test_stream_accounts_usage_stop_reason_and_keepalive_is_a_comment():
    w = writer(input_estimate=12)
    usage = ir.Usage(output_tokens=3, estimated=True)
    w.feed(ir.TextDelta("abc"))
    w.feed(ir.StreamEnd("end_turn", usage))
    assert (w.usage.input_tokens, w.stop_reason, w.output_chars) == (12, "end_turn", 3)
    assert w.keepalive().startswith(b":")


# --- errors and limit headers -----------------------------------------------------------------
