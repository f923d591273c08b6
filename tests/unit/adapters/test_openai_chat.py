"""OpenAI Chat adapter: golden files (literal IR in, literal upstream JSON out, and back) plus
the behaviours a golden file cannot pin down (minted ids, estimates, refusals to translate).

Golden cases live in `tests/golden/openai_chat/`, one per file, named by what they exercise:
`request_*` ({ir_request, expected_upstream, target?}), `response_*` ({upstream_response,
expected_ir, ir_request?}) and `stream_*` ({upstream_chunks, expected_events, ir_request?}).
Stream chunks are the SSE `data:` payloads: a string is sent as is (`"[DONE]"`), an object is
sent as its JSON encoding.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from core import ir
from core.errors import InvalidRequest
from core.target import Target
from protocols.openai_chat.request import chat_tool_id, reasoning_effort
from providers.adapters.openai_chat import OpenAIChatAdapter
from tests.unit.adapters.goldens import (
    cases,
    check_error,
    check_events,
    check_request,
    check_response,
    data_lines,
    make_request,
    parse_events,
)

FOLDER = "openai_chat"
adapter = OpenAIChatAdapter()


def make_target(**overrides: Any) -> Target:
    fields = {
        "route_id": 1,
        "provider_id": 1,
        "provider_name": "openai-main",
        "kind": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": "sk-test",
        "upstream_model": "gpt-4.1",
    }
    return Target(**{**fields, **overrides})


def golden(prefix: str) -> list[Any]:
    return cases(FOLDER, prefix)


async def stream_events(chunks: list[Any], request: ir.Request | None = None) -> list[dict]:
    return await parse_events(adapter, data_lines(chunks), request or make_request(), make_target())


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
    events = await stream_events(case["upstream_chunks"], make_request(case.get("ir_request")))
    check_events(events, case["expected_events"])


@pytest.mark.parametrize("case", golden("error"))
def test_error_golden(case: dict[str, Any]):
    check_error(adapter, case)


# --- Requests ---------------------------------------------------------------------------------
def test_rewritten_tool_id_is_stable_short_and_portable():
    rewritten = chat_tool_id("functions.get_weather:0")
    assert rewritten == chat_tool_id("functions.get_weather:0")
    assert re.fullmatch(r"t_[a-zA-Z0-9]{24}", rewritten)
    assert chat_tool_id("call_Xu7kPq9a") == "call_Xu7kPq9a"
    assert chat_tool_id("a" * 41) != chat_tool_id("a" * 42)


def test_unportable_request_is_refused_naming_feature_and_provider():
    request = make_request(unportable=["tools.0 (server tool `web_search_20250305`)"])
    with pytest.raises(InvalidRequest) as caught:
        adapter.build_request(request, make_target())
    assert "tools.0 (server tool `web_search_20250305`)" in caught.value.message
    assert "openai-main" in caught.value.message
    assert caught.value.fallback is True  # another route may support it


def test_document_by_url_is_refused():
    content = [{"type": "document", "url": "https://example.com/a.pdf"}]
    request = make_request(messages=[{"role": "user", "content": content}])
    with pytest.raises(InvalidRequest, match="document given by URL"):
        adapter.build_request(request, make_target())


def test_headers_omit_authorization_without_key_and_add_extra_headers():
    target = make_target(
        api_key="", base_url="http://vllm.test:8000/v1/", extra_headers={"openai-project": "proj_1"}
    )
    upstream = adapter.build_request(make_request(), target)
    assert upstream.url == "http://vllm.test:8000/v1/chat/completions"
    assert upstream.headers == {"content-type": "application/json", "openai-project": "proj_1"}


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        ({"budget_tokens": 1024}, "low"),
        ({"budget_tokens": 4096}, "medium"),
        ({"budget_tokens": 16384}, "high"),
        ({"effort": "minimal", "budget_tokens": 30000}, "minimal"),
        ({"effort": "xhigh"}, "high"),
        ({"effort": "max"}, "high"),
        ({"adaptive": True}, None),
        ({"enabled": False, "budget_tokens": 2048}, None),
    ],
)
def test_reasoning_effort_follows_effort_then_budget(reasoning: dict, effort: str | None):
    assert reasoning_effort(msgspec.convert(reasoning, ir.Reasoning)) == effort


@pytest.mark.parametrize("model", ["o1-mini", "o3", "o4-mini", "gpt-5", "openai/gpt-5-nano"])
def test_reasoning_models_get_max_completion_tokens_and_no_sampling(model: str):
    body = body_of(make_request(temperature=0.2, top_p=0.5), upstream_model=model)
    assert body["max_completion_tokens"] == 1024
    assert not {"max_tokens", "temperature", "top_p"} & body.keys()


# --- Responses --------------------------------------------------------------------------------
def test_invalid_upstream_tool_id_is_replaced_by_a_minted_one():
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "tool_calls": [
                        {
                            "id": "functions.get_weather:0",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        }
                    ]
                },
            }
        ]
    }
    response = adapter.parse_response(body, make_request(), make_target())
    assert re.fullmatch(r"toolu_[a-zA-Z0-9]{24}", response.content[0].id)


def test_response_without_usage_is_estimated():
    body = {
        "id": "x",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"content": "Sixteen chars!!!"}}
        ],
    }
    response = adapter.parse_response(body, make_request(), make_target())
    assert response.usage.estimated is True
    assert response.usage.output_tokens == 4
    assert response.usage.input_tokens > 0


def test_reasoning_text_is_hidden_when_the_client_did_not_ask_for_thinking():
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"reasoning_content": "hmm", "content": "Hi!"},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9},
    }
    response = adapter.parse_response(body, make_request(), make_target())
    assert msgspec.to_builtins(response.content) == [{"type": "text", "text": "Hi!"}]
    assert response.usage.output_tokens == 9


def test_stop_with_tool_calls_is_reported_as_tool_use():
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ]
                },
            }
        ]
    }
    assert adapter.parse_response(body, make_request(), make_target()).stop_reason == "tool_use"


# --- Streams ----------------------------------------------------------------------------------
def _chunk(delta: dict | None = None, finish: str | None = None) -> dict:
    return {"id": "s", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}


def _call(index: int, arguments: str, **first: Any) -> dict:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if "name" in first:
        fragment["function"]["name"] = first.pop("name")
    return _chunk({"tool_calls": [{**fragment, **first}]})


async def test_stream_closed_after_finish_reason_without_done_is_complete():
    events = await stream_events([_chunk({"content": "Hi"}), _chunk(finish="length")])
    assert events[-1]["type"] == "end"
    assert events[-1]["stop_reason"] == "max_tokens"


async def test_stream_interleaved_tool_fragments_arrive_whole_and_unduplicated():
    chunks = [
        _call(0, '{"a":', id="call_A", name="f"),
        _call(1, '{"b":', id="call_B", name="g"),
        _call(0, "1}"),
        _chunk({"content": "late text"}),
        _call(1, "2}"),
        _chunk(finish="tool_calls"),
        "[DONE]",
    ]
    events = [e for e in await stream_events(chunks) if e["type"] != "start"]
    assert events[:-1] == [
        {
            "type": "block_start",
            "part": {"type": "tool_use", "id": "call_A", "name": "f", "input": {}},
        },
        {"type": "input_json_delta", "partial_json": '{"a":'},
        {"type": "input_json_delta", "partial_json": "1}"},
        {
            "type": "block_start",
            "part": {"type": "tool_use", "id": "call_B", "name": "g", "input": {}},
        },
        {"type": "input_json_delta", "partial_json": '{"b":2}'},
        {"type": "text_delta", "text": "late text"},
    ]
    assert events[-1]["stop_reason"] == "tool_use"


async def test_stream_tool_call_waits_for_a_late_name():
    chunks = [
        _call(0, '{"x"', id="call_L"),
        _call(0, ":1}", name="late"),
        _chunk(finish="tool_calls"),
        "[DONE]",
    ]
    events = await stream_events(chunks)
    assert events[1:3] == [
        {
            "type": "block_start",
            "part": {"type": "tool_use", "id": "call_L", "name": "late", "input": {}},
        },
        {"type": "input_json_delta", "partial_json": '{"x":1}'},
    ]


async def test_stream_error_as_first_chunk_comes_before_any_start():
    chunks = [{"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}]
    assert await stream_events(chunks) == [
        {"type": "error", "error_type": "rate_limit_error", "message": "Rate limit reached"},
    ]


async def test_stream_reasoning_is_hidden_when_not_asked_but_billed_in_estimate():
    chunks = [
        _chunk({"reasoning_content": "x" * 40}),
        _chunk({"content": "Hi"}),
        _chunk(finish="stop"),
        "[DONE]",
    ]
    events = await stream_events(chunks)
    assert [e["type"] for e in events] == ["start", "text_delta", "end"]
    assert events[-1]["usage"]["output_tokens"] == 11
    assert events[-1]["usage"]["estimated"] is True
