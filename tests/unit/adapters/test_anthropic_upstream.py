"""Anthropic upstream for clients of another surface: the body built from the IR, the answers
and streams read back into it (protocols/anthropic/upstream_*.py), and the round trip that
holds the built body to the one a pass-through forwards."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest

from core import ir
from core.errors import InvalidAnswer
from core.target import Target
from protocols.anthropic.decode import decode_messages, to_ir
from protocols.anthropic.upstream_request import messages_body, sampling_json
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Exchange
from tests.unit.adapters.goldens import (
    cases,
    check_events,
    check_request,
    check_response,
    make_request,
    named_events,
    parse_events,
)

GOLDEN = Path(__file__).parents[2] / "golden"
TARGET = Target(
    route_id=1,
    provider_id=1,
    provider_name="anthropic-main",
    kind="anthropic",
    base_url="https://api.anthropic.test",
    api_key="sk-ant-upstream",
    upstream_model="claude-sonnet-4-5-20250929",
    signing_key=b"k",
)


def make_target(**overrides: Any) -> Target:
    return Target(**{**{f: getattr(TARGET, f) for f in TARGET.__slots__}, **overrides})


# --- Goldens ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", cases("anthropic_upstream", "request"))
def test_request_golden(case: dict):
    check_request(AnthropicAdapter(), case, make_target)


@pytest.mark.parametrize("case", cases("anthropic_upstream", "response"))
def test_response_golden(case: dict):
    check_response(AnthropicAdapter(), case, make_target)


@pytest.mark.parametrize("case", cases("anthropic_upstream", "stream"))
async def test_stream_golden(case: dict):
    request = make_request(case.get("ir_request"))
    pairs = named_events(case["upstream_events"])
    events = await parse_events(AnthropicAdapter(), pairs, request, TARGET)
    check_events(events, case["expected_events"])


# --- Round trip: Anthropic body -> IR -> Anthropic body ---------------------------------------
def _golden_body(name: str) -> dict:
    return json.loads((GOLDEN / "anthropic" / name).read_text())["client_body"]


IMAGE = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
ROUND_TRIP = {
    "passthrough_golden": (
        _golden_body("request_passthrough.json"),
        ["interleaved-thinking-2025-05-14"],
    ),
    "betas_golden": (_golden_body("request_betas_by_provider_policy.json"), []),
    "media_and_tool_results": (
        {
            "model": "m",
            "max_tokens": 512,
            "system": "Be brief.",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral"}},
                        {"type": "image", "source": IMAGE},
                        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "JVBERi0xLjQK",
                            },
                            "title": "Q3",
                            "context": "finance",
                        },
                        {
                            "type": "document",
                            "source": {"type": "url", "url": "https://x.test/a.pdf"},
                        },
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "words"},
                        },
                        {
                            "type": "document",
                            "source": {"type": "content", "content": "inline words"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "redacted_thinking", "data": "EmwKAhgB"},
                        {"type": "text", "text": "Reading."},
                        {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"p": 1}},
                        {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "is_error": True,
                            "content": [
                                {"type": "text", "text": "denied"},
                                {"type": "image", "source": IMAGE},
                            ],
                        },
                    ],
                },
                {"role": "user", "content": "and then?"},
            ],
            "tools": [
                {"name": "read", "description": "Read.", "input_schema": {"type": "object"}},
                {
                    "type": "web_search_20250305",
                    "name": "web_search",
                    "max_uses": 2,
                    "blocked_domains": ["bad.test"],
                    "user_location": {"type": "approximate", "country": "PE"},
                },
                {
                    "type": "web_fetch_20250910",
                    "name": "web_fetch",
                    "citations": {"enabled": True},
                    "max_content_tokens": 900,
                },
                {"type": "code_execution_20250825", "name": "code_execution"},
            ],
            "tool_choice": {"type": "tool", "name": "read", "disable_parallel_tool_use": True},
            "temperature": 0.2,
            "top_k": 5,
            "stop_sequences": ["STOP"],
            "metadata": {"user_id": "u-1"},
            "service_tier": "auto",
            "stream": True,
        },
        [],
    ),
    "adaptive_with_effort_and_format": (
        {
            "model": "m",
            "max_tokens": 8000,
            "messages": [{"role": "user", "content": "Plan"}],
            "thinking": {"type": "adaptive", "display": "omitted"},
            "output_config": {
                "effort": "max",
                "format": {"type": "json_schema", "schema": {"type": "object"}},
            },
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
        },
        [],
    ),
    "budget_with_a_chosen_effort": (
        {
            "model": "m",
            "max_tokens": 8000,
            "messages": [{"role": "user", "content": "Sum"}],
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "output_config": {"effort": "high"},
            "top_p": 0.97,
        },
        [],
    ),
    "budget_alone": (
        {
            "model": "m",
            "max_tokens": 30000,
            "messages": [{"role": "user", "content": "Sum"}],
            "thinking": {"type": "enabled", "budget_tokens": 20000},
        },
        [],
    ),
    "effort_alone": (
        {
            "model": "m",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hi"}],
            "output_config": {"effort": "low"},
        },
        [],
    ),
    "thinking_disabled": (
        {
            "model": "m",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hi"}],
            "thinking": {"type": "disabled"},
        },
        [],
    ),
}
# What the IR does not carry: forwarded to Anthropic clients only, or a default spelled out.
NOT_IN_IR = ("context_management",)


def _blocks(content: Any) -> Any:
    """String shorthand as the blocks it stands for (reference 1.4.2)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    for block in content:
        if block.get("type") == "tool_result" and "content" in block:
            block["content"] = _blocks(block["content"])
            if not block["content"]:
                del block["content"]
        if block.get("type") == "document" and block["source"].get("type") == "content":
            block["source"]["content"] = _blocks(block["source"]["content"])
    return content


def _normalized(body: dict) -> dict:
    """The forwarded body in the form the IR builds: shorthand expanded, defaults left out,
    same-role turns merged (all as Anthropic reads them)."""
    body = copy.deepcopy(body)
    for key in NOT_IN_IR:
        body.pop(key, None)
    if isinstance(body.get("system"), str):
        body["system"] = _blocks(body["system"])
    merged: list[dict] = []
    for message in body["messages"]:
        content = _blocks(message["content"])
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"] += content
        else:
            merged.append({"role": message["role"], "content": content})
    body["messages"] = merged
    choice = body.get("tool_choice")
    if choice is not None and choice.get("disable_parallel_tool_use") is False:
        del choice["disable_parallel_tool_use"]
    if body.get("thinking") == {"type": "disabled"}:
        del body["thinking"]
    if "user_id" in body.get("metadata", {}):  # another surface's end-user id goes hashed
        body["metadata"]["user_id"] = hashlib.sha256(body["metadata"]["user_id"].encode())
        body["metadata"]["user_id"] = body["metadata"]["user_id"].hexdigest()[:32]
    return body


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_an_anthropic_body_rebuilt_from_the_ir_is_the_one_forwarded(name: str):
    body, beta = ROUND_TRIP[name]
    raw = msgspec.json.encode(body)
    request = to_ir(decode_messages(raw), beta=beta)
    request.surface, request.raw = "anthropic", raw
    forwarded = AnthropicAdapter().build_request(request, TARGET)
    request.surface = "openai_chat"  # the same IR, from a client of another surface
    built = AnthropicAdapter().build_request(request, TARGET)
    assert built.headers == forwarded.headers
    assert built.body == _normalized(forwarded.body)


@pytest.mark.parametrize(
    ("surface", "sent"), [("anthropic", "alice@example.com"), ("openai_chat", None)]
)
def test_only_an_anthropic_clients_user_id_goes_as_given(surface: str, sent: str | None):
    """An OpenAI client's `user` may be an e-mail, which Anthropic forbids in metadata.user_id:
    hashed, as OpenAI routes hash it; an Anthropic client's own field is its choice."""
    request = ir.Request(
        model="m",
        max_tokens=10,
        messages=[ir.Message(role="user", content=[ir.Text("hi")])],
        user_id="alice@example.com",
        surface=surface,
    )
    user_id = messages_body(request, TARGET)["metadata"]["user_id"]
    hashed = hashlib.sha256(b"alice@example.com").hexdigest()[:32]
    assert user_id == (sent or hashed)


def test_the_effort_a_budget_implies_is_not_sent_to_spare_older_models():
    request = to_ir(
        decode_messages(
            msgspec.json.encode(
                {
                    "model": "m",
                    "max_tokens": 8000,
                    "messages": [{"role": "user", "content": "Sum"}],
                    "thinking": {"type": "enabled", "budget_tokens": 2048},
                    "output_config": {"effort": "low"},
                }
            )
        )
    )
    assert "output_config" not in messages_body(request, TARGET)


def test_an_effort_without_room_to_think_sends_no_thinking():
    request = make_request(
        surface="openai_chat",
        max_tokens=1500,
        reasoning={"effort": "high", "asked_by": "reasoning"},
    )
    assert "thinking" not in messages_body(request, TARGET)


# --- The adapter, for a client of another surface ---------------------------------------------
def chat_client_request(**overrides: Any) -> ir.Request:
    """What an OpenAI Chat client's request looks like once decoded: its raw body is not
    Anthropic's and must never reach the upstream."""
    raw = b'{"model":"gpt-ish","messages":[{"role":"user","content":"Hi"}],"n":3}'
    return make_request(
        surface="openai_chat",
        raw=raw,
        raw_json=json.loads(raw),
        beta=["files-api-2025-04-14"],
        forward_headers={"x-request-id": "req_client"},
        **overrides,
    )


ANSWER = {
    "id": "msg_up",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 2, "service_tier": "standard"},
}


class Upstream:
    def __init__(self, answer: httpx2.Response):
        self.answer = answer
        self.seen: list[httpx2.Request] = []

    def client(self) -> httpx2.AsyncClient:
        def handle(req: httpx2.Request) -> httpx2.Response:
            self.seen.append(req)
            return self.answer

        return httpx2.AsyncClient(transport=httpx2.MockTransport(handle))


async def test_a_chat_client_request_is_sent_as_an_anthropic_body_and_answered_in_ir():
    upstream = Upstream(httpx2.Response(200, json=ANSWER))
    response = await AnthropicAdapter().complete(
        chat_client_request(), TARGET, upstream.client(), Exchange()
    )
    sent = upstream.seen[0]
    assert json.loads(sent.content) == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert sent.headers["anthropic-beta"] == "files-api-2025-04-14"
    assert sent.headers["x-request-id"] == "req_client"
    assert sent.headers["x-api-key"] == "sk-ant-upstream"
    assert response.passthrough is None  # the client's surface encodes it
    assert response.content == [ir.Text("Hello")]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3, 2)
    assert response.service_tier == "standard"


async def test_a_chat_client_stream_is_read_into_ir_events_not_forwarded():
    text, used = {"type": "text", "text": ""}, {"output_tokens": 1}
    frames = b"".join(
        b"event: " + p["type"].encode() + b"\ndata: " + json.dumps(p).encode() + b"\n\n"
        for p in [
            {"type": "message_start", "message": {"id": "msg_s", "usage": {"input_tokens": 4}}},
            {"type": "ping"},
            {"type": "content_block_start", "index": 0, "content_block": text},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Y"},
            },
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": used},
            {"type": "message_stop"},
        ]
    )
    upstream = Upstream(httpx2.Response(200, content=frames))
    request = chat_client_request(stream=True)
    stream = AnthropicAdapter().stream(request, TARGET, upstream.client(), Exchange())
    events = [e async for e in stream]
    assert json.loads(upstream.seen[0].content)["stream"] is True
    assert not any(isinstance(e, ir.Passthrough) for e in events)
    assert [type(e).__name__ for e in events] == [
        "StreamStart",
        "BlockStart",
        "TextDelta",
        "BlockStop",
        "StreamEnd",
    ]
    end = events[-1]
    assert (end.stop_reason, end.usage.input_tokens, end.usage.output_tokens) == (
        "max_tokens",
        4,
        1,
    )


async def test_an_unreadable_answer_is_the_providers_fault_not_a_crash():
    upstream = Upstream(httpx2.Response(200, json={"content": [{"type": "tool_use"}]}))
    with pytest.raises(InvalidAnswer):
        await AnthropicAdapter().complete(
            chat_client_request(), TARGET, upstream.client(), Exchange()
        )


async def test_garbage_stream_events_end_in_an_error_event():
    frames = b'event: message_start\ndata: {"type":"message_start","message":[]}\n\n'
    frames += b"event: content_block_delta\ndata: not json\n\n"
    upstream = Upstream(httpx2.Response(200, content=frames))
    stream = AnthropicAdapter().stream(
        chat_client_request(stream=True), TARGET, upstream.client(), Exchange()
    )
    events = [e async for e in stream]
    assert isinstance(events[-1], ir.StreamError) and events[-1].unreadable


async def test_hostile_event_names_and_shapes_are_ignored():
    pairs = [
        ("__init__", b"{}"),
        ("feed", b"{}"),
        (None, b'{"type": ["x"]}'),
        ("content_block_start", b'{"content_block": "text"}'),
        ("content_block_delta", b'{"delta": {"type": "text_delta", "text": "x"}}'),
        ("content_block_stop", b"{}"),
        ("message_stop", b"{}"),
    ]

    async def events():
        for name, data in pairs:
            yield name, data

    out = [
        e async for e in AnthropicAdapter().parse_stream(events(), chat_client_request(), TARGET)
    ]
    assert out == [ir.StreamEnd("end_turn", ir.Usage())]


def test_the_raw_body_of_another_surface_never_reaches_anthropic():
    """Its fields (`n`) and model name stay behind; the IR is all that is sent."""
    upstream = AnthropicAdapter().build_request(chat_client_request(), TARGET)
    assert "n" not in upstream.body
    assert upstream.body["model"] == TARGET.upstream_model


def test_count_tokens_for_a_chat_client_counts_the_built_body():
    upstream = AnthropicAdapter().count_request(
        chat_client_request(system=[{"type": "text", "text": "Be brief."}], stream=True), TARGET
    )
    assert upstream.url.endswith("/v1/messages/count_tokens")
    assert upstream.body == {
        "model": "claude-sonnet-4-5-20250929",
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


def test_openai_temperatures_are_clamped_to_anthropics_range():
    request = ir.Request(
        model="m", messages=[ir.Message("user", [ir.Text("hi")])], max_tokens=100, temperature=1.7
    )
    assert sampling_json(request, thinking=False) == {"temperature": 1.0}


def test_no_temperature_or_top_k_beside_thinking():
    request = ir.Request(
        model="m",
        messages=[ir.Message("user", [ir.Text("hi")])],
        max_tokens=20_000,
        temperature=0.2,
        top_k=5,
        top_p=0.5,
        reasoning=ir.Reasoning(effort="high", asked_by="reasoning"),
    )
    body = messages_body(request, make_target())
    assert "thinking" in body
    assert "temperature" not in body and "top_k" not in body and body["top_p"] == 0.95
