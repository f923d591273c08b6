"""OpenAI Responses adapter: golden files (literal IR in, literal upstream JSON out, and back)
plus the behaviours a golden file cannot pin down (errors raised, options, hidden reasoning).

Golden cases live in `tests/golden/openai_responses/`, in the format of
`tests/golden/openai_chat/`, except that streams list `upstream_events`: the JSON payloads of
the named SSE events, each sent under its own `type` as event name. Envelope signatures in the
files were computed from the formula of reference 5.12.3 with the key below.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from core import ir
from core.errors import InvalidRequest, UpstreamError
from core.target import Target
from protocols.envelope import open_
from providers.adapters.openai_responses import OpenAIResponsesAdapter
from tests.unit.adapters.goldens import (
    DEFAULT_REQUEST,
    cases,
    check_error,
    check_events,
    check_request,
    check_response,
    make_request,
    named_events,
    parse_events,
)

FOLDER = "openai_responses"
KEY = b"golden-signing-key"
adapter = OpenAIResponsesAdapter()


def make_target(**overrides: Any) -> Target:
    fields = {
        "route_id": 1,
        "provider_id": 1,
        "provider_name": "openai-responses",
        "kind": "openai_responses",
        "base_url": "https://api.openai.com/v1",
        "api_key": "sk-test",
        "upstream_model": "gpt-5",
        "signing_key": KEY,
    }
    return Target(**{**fields, **overrides})


def golden(prefix: str) -> list[Any]:
    return cases(FOLDER, prefix)


async def stream_events(chunks: list[Any], request: ir.Request | None = None) -> list[dict]:
    return await parse_events(
        adapter, named_events(chunks), request or make_request(), make_target()
    )


def body_of(request: ir.Request, **target: Any) -> dict[str, Any]:
    return adapter.build_request(request, make_target(**target)).body


# --- Golden files -----------------------------------------------------------------------------
def test_golden_folder_covers_all_three_directions():
    assert golden("request") and golden("response") and golden("stream")


@pytest.mark.parametrize("case", golden("request"))
def test_request_golden(case: dict[str, Any]):
    check_request(adapter, case, make_target)


@pytest.mark.parametrize("case", golden("response"))
def test_response_golden(case: dict[str, Any]):
    check_response(adapter, case, make_target)


@pytest.mark.parametrize("case", golden("stream"))
async def test_stream_golden(case: dict[str, Any]):
    events = await stream_events(case["upstream_events"], make_request(case.get("ir_request")))
    check_events(events, case["expected_events"])


@pytest.mark.parametrize("case", golden("error"))
def test_error_golden(case: dict[str, Any]):
    check_error(adapter, case)


# --- Requests ---------------------------------------------------------------------------------
def test_unportable_request_is_refused_naming_feature_and_provider():
    request = make_request(unportable=["tools.0 (server tool `web_search_20250305`)"])
    with pytest.raises(InvalidRequest) as caught:
        adapter.build_request(request, make_target())
    assert "tools.0 (server tool `web_search_20250305`)" in caught.value.message
    assert "openai-responses" in caught.value.message
    assert caught.value.fallback is True


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "radar"}, {"type": "function", "name": "radar"}),
    ],
)
def test_tool_choice_maps_per_reference_5_6(choice: dict, expected: Any):
    tools = [{"name": "radar", "input_schema": {"type": "object"}}]
    body = body_of(make_request(tools=tools, tool_choice=choice))
    assert body["tool_choice"] == expected
    assert "parallel_tool_calls" not in body


def test_tool_choice_without_tools_is_omitted():
    body = body_of(make_request(tool_choice={"type": "any", "disable_parallel_tool_use": True}))
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & body.keys()


@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-5-mini", "openai/gpt-5"])
def test_reasoning_models_drop_sampling_parameters(model: str):
    body = body_of(make_request(temperature=0.2, top_p=0.5), upstream_model=model)
    assert not {"temperature", "top_p", "reasoning", "include"} & body.keys()


def test_adaptive_thinking_asks_for_a_summary_at_the_default_effort():
    body = body_of(make_request(reasoning={"adaptive": True}))
    assert body["reasoning"] == {"summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]


def test_omitted_thinking_display_asks_for_no_summary():
    body = body_of(make_request(reasoning={"budget_tokens": 20000, "summary": False}))
    assert body["reasoning"] == {"effort": "high"}


def test_long_tool_ids_are_rewritten_identically_on_call_and_output():
    long_id = "functions.get_weather:0"
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Go"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": long_id, "name": "f", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": long_id}]},
    ]
    items = body_of(make_request(messages=messages))["input"]
    assert items[1]["call_id"] == items[2]["call_id"] != long_id


# --- Responses --------------------------------------------------------------------------------
def test_failed_response_raises_an_upstream_error():
    body = {
        "id": "resp_x",
        "status": "failed",
        "error": {"code": "server_error", "message": "The server had an error."},
        "output": [],
    }
    with pytest.raises(UpstreamError) as caught:
        adapter.parse_response(body, make_request(), make_target())
    assert caught.value.status == 500
    assert caught.value.message == "The server had an error."
    assert caught.value.fallback is True


@pytest.mark.parametrize(
    ("reason", "stop"), [("max_output_tokens", "max_tokens"), ("content_filter", "refusal")]
)
def test_incomplete_reason_maps_per_reference_5_9_1(reason: str, stop: str):
    body = {"status": "incomplete", "incomplete_details": {"reason": reason}, "output": []}
    assert adapter.parse_response(body, make_request(), make_target()).stop_reason == stop


def test_reasoning_is_hidden_when_the_client_did_not_ask_for_thinking():
    body = {
        "status": "completed",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"},
            {"type": "message", "content": [{"type": "output_text", "text": "Hi!"}]},
        ],
        "usage": {"input_tokens": 5, "output_tokens": 9},
    }
    response = adapter.parse_response(body, make_request(), make_target())
    assert msgspec.to_builtins(response.content) == [{"type": "text", "text": "Hi!"}]


def test_thinking_signature_replays_as_the_same_reasoning_item():
    item = {"type": "reasoning", "id": "rs_7", "summary": [], "encrypted_content": "gAAA7"}
    body = {"status": "completed", "output": [item]}
    request = make_request(reasoning={"budget_tokens": 2048})
    thinking = adapter.parse_response(body, request, make_target()).content[0]
    assert open_(thinking.signature, KEY) == {
        "p": "openai-responses",
        "m": "gpt-5",
        "d": {"id": "rs_7", "enc": "gAAA7"},
    }
    history = [
        *DEFAULT_REQUEST["messages"],
        {"role": "assistant", "content": [msgspec.to_builtins(thinking)]},
        {"role": "user", "content": [{"type": "text", "text": "More"}]},
    ]
    items = body_of(make_request(messages=history))["input"]
    assert items[1] == {
        "type": "reasoning",
        "id": "rs_7",
        "summary": [],
        "encrypted_content": "gAAA7",
    }


def test_broken_arguments_are_kept_raw():
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":'}
    body = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "output": [call]}  # fmt: skip
    response = adapter.parse_response(body, make_request(), make_target())
    assert response.content[0].input == {"_raw_arguments": '{"a":'}


# --- Streams ----------------------------------------------------------------------------------
CREATED = {"type": "response.created", "response": {"id": "r", "status": "in_progress"}}
COMPLETED = {
    "type": "response.completed",
    "response": {"id": "r", "status": "completed", "usage": {"input_tokens": 3,
                                                            "output_tokens": 4}},
}  # fmt: skip


async def test_stream_arguments_sent_only_whole_arrive_in_one_delta():
    call = {"type": "function_call", "call_id": "call_2", "name": "radar", "arguments": ""}
    events = await stream_events([
        CREATED,
        {"type": "response.output_item.added", "output_index": 0, "item": call},
        {"type": "response.function_call_arguments.done", "output_index": 0,
         "arguments": '{"zoom":2}'},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {**call, "arguments": '{"zoom":2}'}},
        COMPLETED,
    ])  # fmt: skip
    assert events[1:4] == [
        {
            "type": "block_start",
            "part": {"type": "tool_use", "id": "call_2", "name": "radar", "input": {}},
        },
        {"type": "input_json_delta", "partial_json": '{"zoom":2}'},
        {"type": "block_stop"},
    ]
    assert events[-1]["stop_reason"] == "tool_use"


async def test_stream_reasoning_is_hidden_when_not_asked():
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    events = await stream_events([
        CREATED,
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "hmm"},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {**reasoning, "encrypted_content": "e"}},
        {"type": "response.output_text.delta", "output_index": 1, "delta": "Hi"},
        COMPLETED,
    ])  # fmt: skip
    assert [e["type"] for e in events] == ["start", "text_delta", "end"]


async def test_stream_refusal_ends_as_refusal():
    events = await stream_events([
        CREATED,
        {"type": "response.refusal.delta", "output_index": 0, "delta": "I can't."},
        COMPLETED,
    ])  # fmt: skip
    assert events[1] == {"type": "text_delta", "text": "I can't."}
    assert events[-1]["stop_reason"] == "refusal"


async def test_stream_completed_without_usage_is_estimated():
    completed = {"type": "response.completed", "response": {"status": "completed"}}
    events = await stream_events([
        CREATED,
        {"type": "response.output_text.delta", "output_index": 0, "delta": "Sixteen chars!!!"},
        completed,
    ])  # fmt: skip
    assert events[-1]["usage"]["output_tokens"] == 4
    assert events[-1]["usage"]["estimated"] is True
