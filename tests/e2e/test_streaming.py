"""Streaming end to end: exact Anthropic SSE from every adapter, tools, faults, keep-alive."""

import json
import time

import anthropic
import httpx
import pytest

from tests.e2e.test_messages import WEATHER

ADAPTERS = [
    ("openai", "gpt-stream"),
    ("anthropic", "claude-up-stream"),
    ("demo", "demo-1"),
    ("gemini", "gemini-stream"),
    ("openai_responses", "gpt-resp-stream"),
]
UPSTREAM_ADAPTERS = [a for a in ADAPTERS if a[0] != "demo"]


def route(stage, kind: str, upstream_model: str) -> str:
    provider = {"name": "demo", "kind": "demo"} if kind == "demo" else stage.provider(kind)
    stage.apply(
        providers=[provider],
        models=[
            stage.model(
                "claude-test", [{"provider": provider["name"], "upstream_model": upstream_model}]
            )
        ],
        tenants=[{"name": "acme"}],
    )
    return stage.tenant_key("acme")


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    """Parse raw SSE, asserting the framing the SDKs rely on."""
    events = []
    for chunk in response.text.split("\n\n"):
        if not chunk.strip():
            continue
        lines = chunk.split("\n")
        assert len(lines) == 2, chunk
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
        payload = json.loads(lines[1][6:])
        assert payload["type"] == lines[0][7:]
        events.append((lines[0][7:], payload))
    return events


def assert_grammar(events: list[tuple[str, dict]]) -> None:
    """stream := message_start block* message_delta message_stop; pings anywhere after start."""
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    open_index, next_index = None, 0
    for name, payload in events[1:-2]:
        if name == "content_block_start":
            assert open_index is None, "two blocks open at once"
            assert payload["index"] == next_index, "indices must be dense, in start order"
            open_index, next_index = payload["index"], next_index + 1
        elif name == "content_block_delta":
            assert payload["index"] == open_index
        elif name == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None
    assert open_index is None
    start_usage = events[0][1]["message"]["usage"]
    assert isinstance(start_usage["input_tokens"], int) and start_usage["input_tokens"] > 0
    assert isinstance(start_usage["output_tokens"], int)


def raw_stream(stage, key: str, **body) -> httpx.Response:
    payload = {
        "model": "claude-test",
        "max_tokens": 200,
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me about Lima"}],
        **body,
    }
    return httpx.post(
        stage.gateway.url + "/v1/messages",
        json=payload,
        timeout=30,
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
    )


@pytest.mark.parametrize(("kind", "upstream_model"), ADAPTERS)
def test_event_sequence_follows_the_anthropic_grammar(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    response = raw_stream(stage, key)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["request-id"].startswith("req_")
    events = sse_events(response)
    assert_grammar(events)
    assert events[0][1]["message"]["model"] == "claude-test"
    delta = next(p for n, p in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] > 0


@pytest.mark.parametrize(("kind", "upstream_model"), ADAPTERS)
def test_sdk_stream_final_message_equals_the_non_streaming_answer(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    client = stage.client(key)
    ask = {
        "model": "claude-test",
        "max_tokens": 200,
        "tools": [WEATHER],
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "Weather in Lima?"}],
    }
    created = client.messages.create(**ask)
    with client.messages.stream(**ask) as stream:
        final = stream.get_final_message()
    assert final.model == created.model == "claude-test"
    assert final.stop_reason == created.stop_reason == "tool_use"
    strip_ids = [
        (b.type, getattr(b, "name", None), getattr(b, "input", None), getattr(b, "text", None))
        for b in final.content
    ]
    assert strip_ids == [
        (b.type, getattr(b, "name", None), getattr(b, "input", None), getattr(b, "text", None))
        for b in created.content
    ]


def test_parallel_tool_calls_stream_as_tool_use_blocks(stage):
    key = route(stage, "openai", "gpt-par")
    stage.upstream.script(
        "gpt-par",
        {
            "blocks": [
                {"type": "text", "text": "Looking up both cities."},
                {
                    "type": "tool_use",
                    "name": "get_weather",
                    "input": {"city": "Lima"},
                    "id": "call_1",
                },
                {"type": "tool_use", "name": "get_weather", "input": {}, "id": "call_2"},
            ],
            "stop_reason": "tool_use",
            "text_chunk_size": 5,
            "usage": {"input_tokens": 300, "output_tokens": 22, "cache_read_input_tokens": 256},
        },
    )
    events = sse_events(raw_stream(stage, key, tools=[WEATHER]))
    assert_grammar(events)
    starts = [p["content_block"] for n, p in events if n == "content_block_start"]
    assert starts == [
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
    ]
    args = "".join(
        p["delta"]["partial_json"]
        for n, p in events
        if n == "content_block_delta" and p["index"] == 1
    )
    assert json.loads(args) == {"city": "Lima"}
    delta = next(p for n, p in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {
        "input_tokens": 300,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 256,
        "output_tokens": 22,
        "service_tier": "standard",  # OpenAI answered `default`
    }


@pytest.mark.parametrize(("kind", "upstream_model"), UPSTREAM_ADAPTERS)
def test_upstream_cut_mid_stream_gives_an_error_event(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    stage.upstream.script(
        upstream_model,
        {
            "blocks": [{"type": "text", "text": "This answer will be cut off in the middle."}],
            "text_chunk_size": 4,
            "cut_after_chunks": 4,
        },
    )
    events = sse_events(raw_stream(stage, key))
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] in ("api_error", "overloaded_error")
    assert "message_stop" not in [n for n, _ in events]
    with pytest.raises(anthropic.APIError):
        stage.upstream.script(
            upstream_model,
            {
                "blocks": [{"type": "text", "text": "Cut again, through the SDK this time."}],
                "text_chunk_size": 4,
                "cut_after_chunks": 4,
            },
        )
        with stage.client(key).messages.stream(
            model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            stream.get_final_message()


def test_error_before_the_first_byte_is_a_json_error(stage):
    key = route(stage, "openai", "gpt-early")
    stage.upstream.script("gpt-early", {"status": 503}, {"status": 503})  # and its retry
    response = raw_stream(stage, key)
    assert response.status_code == 529
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize(("kind", "upstream_model"), UPSTREAM_ADAPTERS)
def test_client_disconnect_cancels_the_upstream_request(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    stage.upstream.script(
        upstream_model,
        {
            "blocks": [{"type": "text", "text": "word " * 400}],
            "text_chunk_size": 5,
            "chunk_delay": 0.05,
        },
    )
    payload = {
        "model": "claude-test",
        "max_tokens": 1000,
        "stream": True,
        "messages": [{"role": "user", "content": "long story please"}],
    }
    with httpx.stream(
        "POST",
        stage.gateway.url + "/v1/messages",
        json=payload,
        headers={"x-api-key": key},
        timeout=30,
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: content_block_delta"):
                break
    closed_at = time.monotonic()
    while True:
        record = stage.upstream.requests(upstream_model)[-1]
        if record["disconnected"]:
            break
        assert time.monotonic() - closed_at < 1.5, "upstream still streaming after the client left"
        time.sleep(0.05)
    assert not record["completed"]


def test_ping_keeps_a_silent_stream_alive(stage):
    key = route(stage, "openai", "gpt-silent")
    stage.upstream.script(
        "gpt-silent",
        {
            "blocks": [{"type": "text", "text": "Thinking very hard about this one."}],
            "text_chunk_size": 8,
            "silent_after_chunks": 2,
            "hang_seconds": 2,
        },
    )
    with httpx.stream(
        "POST",
        stage.gateway.url + "/v1/messages",
        headers={"x-api-key": key},
        json={
            "model": "claude-test",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
        timeout=30,
    ) as response:
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    first_delta = names.index("content_block_delta")
    assert names[first_delta:].count("ping") >= 2  # the e2e gateway pings every 0.5 s
