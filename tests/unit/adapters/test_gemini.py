"""Gemini adapter: golden files (literal IR in, literal upstream JSON out, and back) plus the
behaviours a golden file cannot pin down (minted ids, refusals to translate, options).

Golden cases live in `tests/golden/gemini/`, in the format of `tests/golden/openai_chat/`:
`request_*` ({ir_request, expected_upstream, target?}), `response_*` ({upstream_response,
expected_ir, ir_request?}) and `stream_*` ({upstream_chunks, expected_events, ir_request?}),
each stream chunk being one SSE `data:` payload. Envelope signatures in the files were computed
from the formula of reference 5.12.3 with the key below.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import msgspec
import pytest

from core import ir
from core.errors import InvalidRequest
from core.target import Target
from protocols.envelope import open_
from protocols.gemini.request import thinking_config
from providers.adapters.gemini import GeminiAdapter
from tests.unit.adapters.goldens import (
    DEFAULT_REQUEST,
    cases,
    check_error,
    check_events,
    check_request,
    check_response,
    data_lines,
    make_request,
    parse_events,
)

FOLDER = "gemini"
KEY = b"golden-signing-key"
WEATHER = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
adapter = GeminiAdapter()


def make_target(**overrides: Any) -> Target:
    fields = {
        "route_id": 1,
        "provider_id": 1,
        "provider_name": "gemini-main",
        "kind": "gemini",
        "base_url": "https://generativelanguage.googleapis.com/v1beta",
        "api_key": "gk-test",
        "upstream_model": "gemini-2.5-flash",
        "signing_key": KEY,
    }
    return Target(**{**fields, **overrides})


def golden(prefix: str) -> list[Any]:
    return cases(FOLDER, prefix)


async def stream_events(chunks: list[Any], request: ir.Request | None = None) -> list[dict]:
    return await parse_events(adapter, data_lines(chunks), request or make_request(), make_target())


def body_of(request: ir.Request, **target: Any) -> dict[str, Any]:
    return adapter.build_request(request, make_target(**target)).body


def candidate_body(*parts: dict, finish: str = "STOP") -> dict[str, Any]:
    content = {"role": "model", "parts": list(parts)}
    return {"candidates": [{"content": content, "finishReason": finish, "index": 0}]}


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
    events = await stream_events(case["upstream_chunks"], make_request(case.get("ir_request")))
    check_events(events, case["expected_events"])


@pytest.mark.parametrize("case", golden("error"))
def test_error_golden(case: dict[str, Any]):
    check_error(adapter, case)


# --- Requests ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ({"type": "auto"}, {"mode": "AUTO"}),
        ({"type": "any"}, {"mode": "ANY"}),
        ({"type": "none"}, {"mode": "NONE"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
        ({"type": "any", "disable_parallel_tool_use": True}, {"mode": "ANY"}),
    ],
)
def test_tool_choice_maps_to_function_calling_config(choice: dict, config: dict):
    body = body_of(make_request(tools=[WEATHER], tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_without_tool_choice_or_tools_there_is_no_tool_config():
    assert "toolConfig" not in body_of(make_request(tools=[WEATHER]))
    body = body_of(make_request(tool_choice={"type": "any"}))
    assert "tools" not in body and "toolConfig" not in body


def test_image_by_url_is_refused_so_another_route_can_serve_it():
    content = [{"type": "image", "url": "https://example.com/cat.png"}]
    request = make_request(messages=[{"role": "user", "content": content}])
    with pytest.raises(InvalidRequest) as caught:
        adapter.build_request(request, make_target())
    assert "image given by URL" in caught.value.message
    assert "gemini-main" in caught.value.message
    assert caught.value.fallback is True


def test_unportable_request_is_refused_naming_feature_and_provider():
    request = make_request(unportable=["tools.0 (server tool `web_search_20250305`)"])
    with pytest.raises(InvalidRequest) as caught:
        adapter.build_request(request, make_target())
    assert "tools.0 (server tool `web_search_20250305`)" in caught.value.message
    assert "gemini-main" in caught.value.message
    assert caught.value.fallback is True


def test_model_prefix_and_trailing_slash_do_not_break_the_url():
    target = make_target(base_url="https://g.test/v1beta/", upstream_model="models/gemini-2.5-pro")
    upstream = adapter.build_request(make_request(), target)
    assert upstream.url == "https://g.test/v1beta/models/gemini-2.5-pro:generateContent"


def test_headers_carry_the_key_and_extra_headers():
    target = make_target(extra_headers={"x-goog-user-project": "p1"})
    assert adapter.build_request(make_request(), target).headers == {
        "content-type": "application/json",
        "x-goog-api-key": "gk-test",
        "x-goog-user-project": "p1",
    }


@pytest.mark.parametrize(
    ("model", "reasoning", "config"),
    [
        ("gemini-2.5-flash", None, None),
        ("gemini-2.5-flash", {"enabled": False}, None),
        ("gemini-2.5-pro", {"budget_tokens": 8000}, {"thinkingBudget": 8000,
                                                     "includeThoughts": True}),
        ("gemini-2.5-pro", {"adaptive": True}, {"thinkingBudget": -1, "includeThoughts": True}),
        ("gemini-2.5-pro", {"budget_tokens": 2048, "summary": False},
         {"thinkingBudget": 2048, "includeThoughts": False}),
        ("gemini-3-pro-preview", {"budget_tokens": 2048}, {"thinkingLevel": "LOW",
                                                          "includeThoughts": True}),
        ("gemini-3-pro-preview", {"budget_tokens": 4096}, {"thinkingLevel": "HIGH",
                                                          "includeThoughts": True}),
        ("gemini-3-flash", {"effort": "low"}, {"thinkingLevel": "LOW", "includeThoughts": True}),
        ("gemini-3-flash", {"adaptive": True}, {"includeThoughts": True}),
    ],
)  # fmt: skip
def test_thinking_config_follows_reference_5_7(model: str, reasoning: Any, config: Any):
    value = None if reasoning is None else msgspec.convert(reasoning, ir.Reasoning)
    assert thinking_config(value, model) == config


def test_orphan_tool_result_is_a_client_error():
    content = [{"type": "tool_result", "tool_use_id": "toolu_nope", "content": []}]
    request = make_request(messages=[{"role": "user", "content": content}])
    with pytest.raises(InvalidRequest) as caught:
        adapter.build_request(request, make_target())
    assert caught.value.fallback is False


def test_each_model_turn_gets_the_placeholder_on_its_first_call_only():
    calls = [
        {"type": "tool_use", "id": f"toolu_{i}", "name": "get_weather", "input": {}}
        for i in range(2)
    ]
    results = [
        {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": []} for i in range(2)
    ]
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Go"}]},
        {"role": "assistant", "content": calls},
        {"role": "user", "content": results},
        {"role": "assistant", "content": [calls[0] | {"id": "toolu_9"}]},
        {"role": "user", "content": [results[0] | {"tool_use_id": "toolu_9"}]},
    ]
    contents = body_of(make_request(tools=[WEATHER], messages=messages))["contents"]
    signatures = [
        [p.get("thoughtSignature") for p in c["parts"]] for c in contents if c["role"] == "model"
    ]
    skip = "skip_thought_signature_validator"
    assert signatures == [[skip, None], [skip]]


# --- Responses --------------------------------------------------------------------------------
def test_call_without_a_usable_id_gets_a_minted_one():
    body = candidate_body(
        {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}}},
        {"functionCall": {"name": "get_weather", "args": {}, "id": "has:colon"}},
    )
    response = adapter.parse_response(body, make_request(), make_target())
    ids = [part.id for part in response.content]
    assert all(re.fullmatch(r"toolu_[a-zA-Z0-9]{24}", i) for i in ids)
    assert ids[0] != ids[1]


def test_call_without_args_has_empty_input():
    body = candidate_body({"functionCall": {"name": "radar", "id": "c1"}})
    response = adapter.parse_response(body, make_request(), make_target())
    assert msgspec.to_builtins(response.content) == [
        {"type": "tool_use", "id": "c1", "name": "radar", "input": {}}
    ]


def test_disable_parallel_tool_use_keeps_only_the_first_call():
    body = candidate_body(
        {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}, "id": "a"}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Quito"}, "id": "b"}},
    )
    request = make_request(
        tools=[WEATHER], tool_choice={"type": "auto", "disable_parallel_tool_use": True}
    )
    response = adapter.parse_response(body, request, make_target())
    assert [part.id for part in response.content] == ["a"]
    assert response.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("RECITATION", "refusal"),
        ("SPII", "refusal"),
        ("MALFORMED_FUNCTION_CALL", "end_turn"),
        ("OTHER", "end_turn"),
    ],
)
def test_finish_reason_maps_per_reference_5_9_1(finish: str, stop: str):
    body = candidate_body({"text": "x"}, finish=finish)
    assert adapter.parse_response(body, make_request(), make_target()).stop_reason == stop


def test_thought_signature_survives_the_round_trip_through_the_client():
    request = make_request(reasoning={"budget_tokens": 2048}, tools=[WEATHER])
    body = candidate_body(
        {"text": "Need the tool.", "thought": True},
        {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}, "id": "c1"},
         "thoughtSignature": "R0VNSU5JX1NJRw=="},
    )  # fmt: skip
    response = adapter.parse_response(body, request, make_target())
    thinking = response.content[0]
    assert open_(thinking.signature, KEY) == {
        "p": "gemini",
        "m": "gemini-2.5-flash",
        "d": {"ts": "R0VNSU5JX1NJRw=="},
    }
    # The client sends the turn back unchanged; the call gets its signature again.
    history = msgspec.to_builtins(response.content)
    result = {"type": "tool_result", "tool_use_id": "c1", "content": []}
    next_turn = make_request(
        tools=[WEATHER],
        messages=[
            *DEFAULT_REQUEST["messages"],
            {"role": "assistant", "content": history},
            {"role": "user", "content": [result]},
        ],
    )
    model_parts = body_of(next_turn)["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in model_parts] == ["R0VNSU5JX1NJRw=="] * 2


def test_thoughts_are_dropped_when_the_client_did_not_ask_for_thinking():
    body = candidate_body({"text": "hmm", "thought": True}, {"text": "Hi!"})
    response = adapter.parse_response(body, make_request(), make_target())
    assert msgspec.to_builtins(response.content) == [{"type": "text", "text": "Hi!"}]


def test_response_without_usage_is_estimated():
    response = adapter.parse_response(
        candidate_body({"text": "Sixteen chars!!!"}), make_request(), make_target()
    )
    assert response.usage.estimated is True
    assert response.usage.output_tokens == 4
    assert response.usage.input_tokens > 0


def test_error_message_reads_plain_and_array_wrapped_bodies():
    error = {"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID"}}
    assert adapter.error_message(error) == "Invalid JSON payload"
    assert adapter.error_message([error]) == "Invalid JSON payload"


def test_quota_error_takes_retry_after_from_retry_info():
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }
    err = adapter.parse_error(429, json.dumps(body).encode(), httpx.Headers())
    assert (err.status, err.type, err.fallback) == (529, "overloaded_error", True)
    assert err.message == "You exceeded your current quota."
    assert err.retry_after == 37.0
    assert err.headers["retry-after"] == "37"


# --- Streams ----------------------------------------------------------------------------------
def _chunk(*parts: dict, finish: str | None = None) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "s"}


async def test_stream_with_parallel_calls_disabled_keeps_the_first_call():
    request = make_request(
        tools=[WEATHER], tool_choice={"type": "auto", "disable_parallel_tool_use": True}
    )
    chunks = [
        _chunk(
            {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}, "id": "a"}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Quito"}, "id": "b"}},
            finish="STOP",
        )
    ]
    events = await stream_events(chunks, request)
    assert [e["type"] for e in events] == ["start", "block_start", "input_json_delta", "end"]
    assert events[-1]["stop_reason"] == "tool_use"


async def test_stream_without_usage_is_estimated():
    events = await stream_events([_chunk({"text": "Sixteen chars!!!"}, finish="STOP")])
    assert events[-1]["usage"]["output_tokens"] == 4
    assert events[-1]["usage"]["estimated"] is True


async def test_stream_keeps_the_latest_usage():
    first = _chunk({"text": "a"}) | {"usageMetadata": {"promptTokenCount": 10}}
    last = _chunk({"text": "b"}, finish="STOP") | {
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2}
    }
    events = await stream_events([first, last])
    assert events[-1]["usage"]["input_tokens"] == 10
    assert events[-1]["usage"]["output_tokens"] == 2


async def test_stream_with_no_chunk_at_all_is_an_error():
    assert await stream_events([]) == [
        {
            "type": "error",
            "error_type": "api_error",
            "message": "upstream stream ended unexpectedly",
        }
    ]


async def test_stream_thinking_still_open_at_the_end_gets_its_signature():
    request = make_request(reasoning={"budget_tokens": 2048})
    events = await stream_events([_chunk({"text": "hmm", "thought": True}, finish="STOP")], request)
    assert [e["type"] for e in events] == [
        "start",
        "thinking_delta",
        "signature_delta",
        "block_stop",
        "end",
    ]
    assert open_(events[2]["signature"], KEY)["d"] == {}
