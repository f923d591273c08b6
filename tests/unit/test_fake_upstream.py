"""The fake upstream speaks each surface's JSON and SSE shapes and obeys its control API.

Most tests drive the ASGI app in-process (httpx.ASGITransport buffers streams, which is fine for
checking content); the last ones run the real server in a subprocess for socket-level faults.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.fake_upstream.app import create_app
from tests.fake_upstream.delivery import ConnectionDropped
from tests.fake_upstream.server import FakeUpstream

OPENAI_AUTH = {"authorization": "Bearer sk-test"}
ANTHROPIC_AUTH = {"x-api-key": "sk-ant-test"}
GEMINI_AUTH = {"x-goog-api-key": "g-test"}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "metric": {"type": "boolean"},
        "unit": {"type": "string"},
    },
    "required": ["city", "days", "metric"],
}
CHAT_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
]
PLACEHOLDER_INPUT = {"city": "x", "days": 1, "metric": True}


@pytest.fixture
def app():
    return create_app()


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        yield client


async def script(client: httpx.AsyncClient, model: str, *replies: dict[str, Any]) -> None:
    response = await client.post("/_control/script", json={"model": model, "replies": replies})
    assert response.status_code == 200, response.text


async def recorded(client: httpx.AsyncClient, model: str) -> list[dict[str, Any]]:
    return (await client.get("/_control/requests", params={"model": model})).json()


def chat(model: str = "gpt-test", text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def messages(model: str = "claude-test", text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def gemini_body(text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


def openai_chunks(text: str) -> list[dict[str, Any]]:
    frames = text.split("\n\n")
    assert frames[-1] == "" and frames[-2] == "data: [DONE]"
    assert all(frame.startswith("data: ") for frame in frames[:-1])
    return [json.loads(frame.removeprefix("data: ")) for frame in frames[:-2]]


def named_events(text: str) -> list[dict[str, Any]]:
    """Events of an `event: X\\ndata: {...}\\n\\n` stream; checks the name equals the type."""
    events = []
    for frame in text.split("\n\n")[:-1]:
        event_line, data_line = frame.split("\n")
        payload = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {payload['type']}"
        events.append(payload)
    return events


def gemini_chunks(text: str) -> list[dict[str, Any]]:
    frames = text.split("\r\n\r\n")
    assert frames[-1] == ""
    return [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]


# OpenAI Chat Completions


async def test_openai_chat_echoes_last_user_text_with_estimated_usage(client):
    body = chat(text="What is the capital of Chile?")
    response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)

    assert response.status_code == 200
    payload = response.json()
    assert payload["object"] == "chat.completion"
    assert payload["model"] == "gpt-test"
    choice = payload["choices"][0]
    assert choice["message"]["content"] == "echo: What is the capital of Chile?"
    assert choice["finish_reason"] == "stop"
    request_size = len(response.request.content)
    assert payload["usage"]["prompt_tokens"] == -(-request_size // 4)
    assert payload["usage"]["completion_tokens"] == -(-len(choice["message"]["content"]) // 4)


async def test_openai_chat_echo_is_truncated_to_200_characters(client):
    response = await client.post(
        "/v1/chat/completions", headers=OPENAI_AUTH, json=chat(text="a" * 500)
    )

    assert response.json()["choices"][0]["message"]["content"] == "echo: " + "a" * 200


async def test_openai_chat_stream_sends_usage_chunk_with_empty_choices_before_done(client):
    body = chat(stream=True, stream_options={"include_usage": True})
    response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)

    assert response.headers["content-type"] == "text/event-stream"
    chunks = openai_chunks(response.text)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-2])
    assert text == "echo: Hello there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] >= 1
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert len({chunk["id"] for chunk in chunks}) == 1


async def test_openai_chat_stream_without_include_usage_has_no_usage_chunk(client):
    response = await client.post(
        "/v1/chat/completions", headers=OPENAI_AUTH, json=chat(stream=True)
    )

    chunks = openai_chunks(response.text)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in chunk for chunk in chunks)


async def test_openai_chat_streams_parallel_tool_calls_in_fragments(client):
    lima = {"type": "tool_use", "name": "get_weather", "input": {"city": "Lima"}, "id": "call_1"}
    quito = {"type": "tool_use", "name": "get_weather", "input": {"city": "Quito"}, "id": "call_2"}
    await script(client, "gpt-test", {"blocks": [lima, quito], "text_chunk_size": 4})
    body = chat(stream=True, tools=CHAT_TOOLS)
    response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)

    chunks = openai_chunks(response.text)
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:-1]]
    assert fragments[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    for index, call_id, city in [(0, "call_1", "Lima"), (1, "call_2", "Quito")]:
        own = [f for f in fragments if f["index"] == index]
        assert own[0]["id"] == call_id
        assert all(set(f) == {"index", "function"} for f in own[1:])
        assert len(own) > 2  # arguments arrive in several fragments
        arguments = "".join(f["function"]["arguments"] for f in own)
        assert json.loads(arguments) == {"city": city}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
async def test_openai_chat_forced_tool_gets_a_placeholder_per_required_property(
    client, tool_choice
):
    body = chat(tools=CHAT_TOOLS, tool_choice=tool_choice)
    response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)

    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == PLACEHOLDER_INPUT


async def test_openai_chat_unforced_tools_get_a_text_reply(client):
    body = chat(tools=CHAT_TOOLS, tool_choice="auto")
    response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)

    assert "tool_calls" not in response.json()["choices"][0]["message"]


async def test_openai_chat_reasoning_model_returns_reasoning_content(client):
    body = chat(model="gpt-test-reasoning", text="Why?")
    response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)
    stream = await client.post(
        "/v1/chat/completions", headers=OPENAI_AUTH, json={**body, "stream": True}
    )

    message = response.json()["choices"][0]["message"]
    assert message["reasoning_content"] == "Thinking about: Why?"
    assert message["content"] == "echo: Why?"
    assert response.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    deltas = [c["choices"][0]["delta"] for c in openai_chunks(stream.text)]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Thinking about: Why?"


# Anthropic Messages


async def test_anthropic_json_reply_has_text_block_and_usage(client):
    response = await client.post("/v1/messages", headers=ANTHROPIC_AUTH, json=messages())

    payload = response.json()
    assert payload["type"] == "message" and payload["role"] == "assistant"
    assert payload["id"].startswith("msg_")
    assert payload["content"] == [{"type": "text", "text": "echo: Hello"}]
    assert payload["stop_reason"] == "end_turn" and payload["stop_sequence"] is None
    assert set(payload["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
    }
    assert payload["usage"]["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 0,
    }


async def test_anthropic_stream_follows_the_event_grammar(client):
    santiago = {"blocks": [{"type": "text", "text": "Santiago, Chile."}], "text_chunk_size": 8}
    await script(client, "claude-test", santiago)
    body = messages(stream=True)
    response = await client.post("/v1/messages", headers=ANTHROPIC_AUTH, json=body)

    events = named_events(response.text)
    names = [event["type"] for event in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert isinstance(start["usage"]["input_tokens"], int) and start["usage"]["output_tokens"] == 1
    assert events[1]["content_block"] == {"type": "text", "text": ""}
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Santiago, Chile."
    assert events[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert 'event: ping\ndata: {"type": "ping"}\n\n' in response.text


async def test_anthropic_forced_tool_streams_input_json_deltas(client):
    tools = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
    body = messages(stream=True, tools=tools, tool_choice={"type": "any"})
    response = await client.post("/v1/messages", headers=ANTHROPIC_AUTH, json=body)

    events = named_events(response.text)
    shell = events[1]["content_block"]
    assert shell["type"] == "tool_use" and shell["name"] == "get_weather"
    assert shell["input"] == {} and shell["id"].startswith("toolu_")
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert deltas[0] == {"type": "input_json_delta", "partial_json": ""}
    assert json.loads("".join(d["partial_json"] for d in deltas)) == PLACEHOLDER_INPUT
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_reasoning_model_streams_thinking_then_signature(client):
    body = messages(model="claude-test-reasoning", text="Sum", stream=True)
    response = await client.post("/v1/messages", headers=ANTHROPIC_AUTH, json=body)
    plain = await client.post(
        "/v1/messages", headers=ANTHROPIC_AUTH, json={**body, "stream": False}
    )

    events = named_events(response.text)
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    first_block = [e for e in events if e.get("index") == 0 and e["type"] == "content_block_delta"]
    assert first_block[-1]["delta"]["type"] == "signature_delta"
    assert first_block[-1]["delta"]["signature"]
    thinking = plain.json()["content"][0]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "Thinking about: Sum"
    assert thinking["signature"]
    assert plain.json()["content"][1] == {"type": "text", "text": "echo: Sum"}


async def test_anthropic_count_tokens_estimates_from_body_size(client):
    body = {"model": "claude-test", "messages": [{"role": "user", "content": "x" * 100}]}
    response = await client.post("/v1/messages/count_tokens", headers=ANTHROPIC_AUTH, json=body)

    assert response.json() == {"input_tokens": -(-len(response.request.content) // 4)}


# OpenAI Responses


async def test_responses_reasoning_model_returns_reasoning_item_with_encrypted_content(client):
    body = {"model": "gpt-5-reasoning", "input": [{"role": "user", "content": "Hi"}]}
    response = await client.post("/v1/responses", headers=OPENAI_AUTH, json=body)

    payload = response.json()
    assert payload["object"] == "response" and payload["status"] == "completed"
    reasoning, message = payload["output"]
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Thinking about: Hi"}]
    assert reasoning["encrypted_content"]
    assert message["content"][0]["type"] == "output_text"
    assert message["content"][0]["text"] == "echo: Hi"
    usage = payload["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_responses_stream_forced_function_call_events_in_order(client):
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}]
    body = {"model": "gpt-5", "input": "Weather?", "tools": tools, "tool_choice": "required"}
    response = await client.post(
        "/v1/responses", headers=OPENAI_AUTH, json={**body, "stream": True}
    )

    events = named_events(response.text)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    names = [e["type"] for e in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert names[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[2]["item"]["arguments"] == ""
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) >= 2
    assert json.loads("".join(deltas)) == PLACEHOLDER_INPUT
    final = events[-1]["response"]
    assert final["output"][0]["type"] == "function_call"
    assert final["output"][0]["call_id"].startswith("call_")
    assert final["usage"]["output_tokens"] >= 1


async def test_responses_stream_text_message_events(client):
    body = {"model": "gpt-5", "input": "Hi", "stream": True}
    response = await client.post("/v1/responses", headers=OPENAI_AUTH, json=body)

    events = named_events(response.text)
    names = [e["type"] for e in events]
    assert "response.content_part.added" in names
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "echo: Hi"
    assert names[-1] == "response.completed"


# Gemini


async def test_gemini_generate_content_with_thought_part(client):
    response = await client.post(
        "/v1beta/models/gemini-test-reasoning:generateContent",
        headers=GEMINI_AUTH,
        json=gemini_body("Why?"),
    )

    payload = response.json()
    candidate = payload["candidates"][0]
    thought, text = candidate["content"]["parts"]
    assert thought["thought"] is True and thought["text"] == "Thinking about: Why?"
    assert thought["thoughtSignature"]
    assert text == {"text": "echo: Why?"}
    assert candidate["finishReason"] == "STOP"
    assert payload["modelVersion"] == "gemini-test-reasoning"
    usage = payload["usageMetadata"]
    assert usage["thoughtsTokenCount"] > 0
    total = usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    assert usage["totalTokenCount"] == total


async def test_gemini_stream_uses_crlf_frames_and_finishes_on_the_last_chunk(client):
    await script(
        client, "gemini-test", {"blocks": [{"type": "text", "text": "It is 18C in Lima."}]}
    )
    response = await client.post(
        "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
        headers=GEMINI_AUTH,
        json=gemini_body(),
    )

    chunks = gemini_chunks(response.text)
    assert len(chunks) == 2
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "It is 18C in Lima."
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "candidatesTokenCount" in chunks[-1]["usageMetadata"]


async def test_gemini_mode_any_sends_the_function_call_whole(client):
    tool = {"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER_SCHEMA}]}
    body = gemini_body(tools=[tool], toolConfig={"functionCallingConfig": {"mode": "ANY"}})
    response = await client.post(
        "/v1beta/models/gemini-test:streamGenerateContent?alt=sse", headers=GEMINI_AUTH, json=body
    )

    parts = [
        p for c in gemini_chunks(response.text) for p in c["candidates"][0]["content"]["parts"]
    ]
    assert parts == [{"functionCall": {"name": "get_weather", "args": PLACEHOLDER_INPUT}}]


async def test_gemini_accepts_the_key_query_parameter_and_counts_tokens(client):
    response = await client.post(
        "/v1beta/models/gemini-test:countTokens?key=secret", json=gemini_body()
    )

    assert response.status_code == 200
    assert response.json()["totalTokens"] == -(-len(response.request.content) // 4)
    record = (await recorded(client, "gemini-test"))[-1]
    assert record["query"] == {"key": "<redacted>"} and record["auth_present"] is True


# Errors


@pytest.mark.parametrize(
    ("path", "body", "check"),
    [
        ("/v1/chat/completions", chat(), lambda e: e["error"]["code"] == "invalid_api_key"),
        ("/v1/responses", {"model": "m", "input": "x"}, lambda e: "param" in e["error"]),
        ("/v1/messages", messages(), lambda e: e["error"]["type"] == "authentication_error"),
        (
            "/v1beta/models/g:generateContent",
            gemini_body(),
            lambda e: e["error"]["code"] == 401 and e["error"]["status"] == "UNAUTHENTICATED",
        ),
    ],
)
async def test_missing_auth_is_401_in_the_surface_error_shape(client, path, body, check):
    response = await client.post(path, json=body)

    assert response.status_code == 401
    assert check(response.json())


@pytest.mark.parametrize(
    ("path", "body", "model", "error"),
    [
        (
            "/v1/chat/completions",
            chat(stream=True),
            "gpt-test",
            {"type": "requests", "code": "rate_limit_exceeded"},
        ),
        ("/v1/messages", messages(stream=True), "claude-test", {"type": "rate_limit_error"}),
        (
            "/v1beta/models/g:streamGenerateContent?alt=sse",
            gemini_body(),
            "g",
            {"code": 429, "status": "RESOURCE_EXHAUSTED"},
        ),
    ],
)
async def test_scripted_status_uses_the_surface_error_shape_and_headers(
    client, path, body, model, error
):
    await script(client, model, {"status": 429, "headers": {"Retry-After": "1"}})
    headers = OPENAI_AUTH | ANTHROPIC_AUTH | GEMINI_AUTH
    response = await client.post(path, headers=headers, json=body)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert error.items() <= response.json()["error"].items()


async def test_scripted_error_body_is_returned_verbatim(client):
    await script(client, "claude-test", {"status": 529, "error_body": {"anything": ["goes"]}})
    response = await client.post("/v1/messages", headers=ANTHROPIC_AUTH, json=messages())

    assert response.status_code == 529
    assert response.json() == {"anything": ["goes"]}


async def test_unknown_path_is_404_with_an_openai_error(client):
    response = await client.post("/v1/embeddings", headers=OPENAI_AUTH, json={"model": "e"})

    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert (await recorded(client, "e"))[0]["path"] == "/v1/embeddings"


async def test_invalid_json_body_is_400(client):
    response = await client.post("/v1/messages", headers=ANTHROPIC_AUTH, content=b"{nope")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("stop_reason", "chat_finish", "gemini_finish", "responses_status"),
    [
        ("max_tokens", "length", "MAX_TOKENS", ("incomplete", "max_output_tokens")),
        ("refusal", "content_filter", "SAFETY", ("incomplete", "content_filter")),
        ("stop_sequence", "stop", "STOP", ("completed", None)),
    ],
)
async def test_scripted_stop_reason_maps_to_each_surface(
    client, stop_reason, chat_finish, gemini_finish, responses_status
):
    reply = {"blocks": [{"type": "text", "text": "Partial"}], "stop_reason": stop_reason}
    for model in ("m-chat", "m-anthropic", "m-responses", "m-gemini"):
        await script(client, model, reply)
    headers = OPENAI_AUTH | ANTHROPIC_AUTH | GEMINI_AUTH
    chat_reply = await client.post("/v1/chat/completions", headers=headers, json=chat("m-chat"))
    anthropic_reply = await client.post(
        "/v1/messages", headers=headers, json=messages("m-anthropic")
    )
    responses_reply = await client.post(
        "/v1/responses", headers=headers, json={"model": "m-responses", "input": "x"}
    )
    gemini_reply = await client.post(
        "/v1beta/models/m-gemini:generateContent", headers=headers, json=gemini_body()
    )

    assert chat_reply.json()["choices"][0]["finish_reason"] == chat_finish
    assert anthropic_reply.json()["stop_reason"] == stop_reason
    status, reason = responses_status
    assert responses_reply.json()["status"] == status
    assert (responses_reply.json()["incomplete_details"] or {}).get("reason") == reason
    assert gemini_reply.json()["candidates"][0]["finishReason"] == gemini_finish


async def test_scripted_usage_maps_cache_reads_into_each_surface(client):
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90}
    for model in ("u-chat", "u-gemini"):
        await script(client, model, {"usage": usage})
    chat_reply = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=chat("u-chat"))
    gemini_reply = await client.post(
        "/v1beta/models/u-gemini:generateContent", headers=GEMINI_AUTH, json=gemini_body()
    )

    chat_usage = chat_reply.json()["usage"]
    assert chat_usage["prompt_tokens"] == 100 and chat_usage["completion_tokens"] == 5
    assert chat_usage["prompt_tokens_details"]["cached_tokens"] == 90
    gemini_usage = gemini_reply.json()["usageMetadata"]
    assert gemini_usage["promptTokenCount"] == 100
    assert gemini_usage["cachedContentTokenCount"] == 90


REFUSAL = {"category": "general_harms", "explanation": "I can't help with that."}


async def refused_everywhere(client, details: dict, *, stream: bool = False) -> dict:
    """The same scripted refusal asked of every surface; returns each raw response."""
    reply = {"blocks": [], "stop_reason": "refusal", "stop_details": details}
    for model in ("r-chat", "r-anthropic", "r-responses", "r-gemini"):
        await script(client, model, reply)
    headers = OPENAI_AUTH | ANTHROPIC_AUTH | GEMINI_AUTH
    extra = {"stream": True} if stream else {}
    verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return {
        "chat": await client.post(
            "/v1/chat/completions", headers=headers, json=chat("r-chat", **extra)
        ),
        "anthropic": await client.post(
            "/v1/messages", headers=headers, json=messages("r-anthropic", **extra)
        ),
        "responses": await client.post(
            "/v1/responses", headers=headers, json={"model": "r-responses", "input": "x", **extra}
        ),
        "gemini": await client.post(
            f"/v1beta/models/r-gemini:{verb}", headers=headers, json=gemini_body()
        ),
    }


async def test_a_refusal_with_details_takes_each_providers_own_shape(client):
    answers = {k: r.json() for k, r in (await refused_everywhere(client, REFUSAL)).items()}

    assert answers["anthropic"]["stop_details"] == {"type": "refusal", **REFUSAL}
    choice = answers["chat"]["choices"][0]
    assert (choice["finish_reason"], choice["message"]["refusal"]) == (
        "stop",
        "I can't help with that.",
    )
    assert answers["responses"]["status"] == "completed"
    assert answers["responses"]["output"][-1]["content"] == [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]
    candidate = answers["gemini"]["candidates"][0]
    assert candidate["finishReason"] == "SAFETY"
    assert candidate["finishMessage"] == "I can't help with that."
    assert candidate["safetyRatings"][0]["blocked"] is True


async def test_a_streamed_refusal_with_details_takes_each_providers_own_shape(client):
    answers = await refused_everywhere(client, REFUSAL, stream=True)

    delta = named_events(answers["anthropic"].text)[-2]["delta"]
    assert delta["stop_details"] == {"type": "refusal", **REFUSAL}
    chunks = openai_chunks(answers["chat"].text)
    refusal = "".join(c["choices"][0]["delta"].get("refusal") or "" for c in chunks)
    assert refusal == "I can't help with that."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    events = named_events(answers["responses"].text)
    text = "".join(e["delta"] for e in events if e["type"] == "response.refusal.delta")
    assert text == "I can't help with that." and events[-1]["type"] == "response.completed"
    assert gemini_chunks(answers["gemini"].text)[-1]["candidates"][0]["finishReason"] == "SAFETY"


async def test_a_refusal_without_a_category_or_text_is_a_filter_or_a_recitation(client):
    answers = await refused_everywhere(client, {})
    assert answers["chat"].json()["choices"][0]["finish_reason"] == "content_filter"
    assert answers["responses"].json()["incomplete_details"] == {"reason": "content_filter"}
    assert answers["gemini"].json()["candidates"][0]["finishReason"] == "RECITATION"
    assert answers["anthropic"].json()["stop_details"] == {
        "type": "refusal",
        "category": None,
        "explanation": None,
    }


@pytest.mark.parametrize(
    ("path", "body", "header", "status", "check"),
    [
        (
            "/v1/chat/completions",
            {"model": "m", "messages": []},
            "authorization",
            401,
            lambda b: b["error"]["code"] == "invalid_api_key" and "revoked-key" not in str(b),
        ),
        (
            "/v1/responses",
            {"model": "m", "input": "x"},
            "authorization",
            401,
            lambda b: b["error"]["code"] == "invalid_api_key",
        ),
        (
            "/v1/messages",
            {"model": "m", "messages": []},
            "x-api-key",
            401,
            lambda b: b["error"]["type"] == "authentication_error",
        ),
        (
            "/v1beta/models/m:generateContent",
            gemini_body(),
            "x-goog-api-key",
            400,
            lambda b: (
                b["error"]["status"] == "INVALID_ARGUMENT"
                and b["error"]["details"][0]["reason"] == "API_KEY_INVALID"
            ),
        ),
    ],
)
async def test_a_revoked_key_is_refused_in_the_providers_own_shape(
    client, path, body, header, status, check
):
    value = "Bearer revoked-key-0123" if header == "authorization" else "revoked-key-0123"
    response = await client.post(path, headers={header: value}, json=body)

    assert response.status_code == status
    assert check(response.json()), response.json()


async def test_a_suspended_gemini_key_is_a_403_that_echoes_the_key(client):
    response = await client.post(
        "/v1beta/models/m:generateContent",
        headers={"x-goog-api-key": "suspended-key-0123"},
        json=gemini_body(),
    )

    error = response.json()["error"]
    assert (response.status_code, error["status"]) == (403, "PERMISSION_DENIED")
    assert error["details"][0]["reason"] == "CONSUMER_SUSPENDED"
    assert "suspended-key-0123" in error["message"]


async def test_responses_input_tokens_counts_like_the_real_endpoint(client):
    body = {"model": "gpt-count", "input": "How many tokens is this?"}
    response = await client.post("/v1/responses/input_tokens", headers=OPENAI_AUTH, json=body)

    assert response.json() == {
        "object": "response.input_tokens",
        "input_tokens": -(-len(response.request.content) // 4),
    }


async def test_count_scripts_have_their_own_queue(client):
    await script(client, "gpt-count", {"blocks": [{"type": "text", "text": "the answer"}]})
    count_script = {
        "model": "gpt-count",
        "replies": [{"status": 404}, {"usage": {"input_tokens": 7}}],
        "endpoint": "count",
    }
    assert (await client.post("/_control/script", json=count_script)).status_code == 200
    body = {"model": "gpt-count", "input": "x"}

    counts = [
        await client.post("/v1/responses/input_tokens", headers=OPENAI_AUTH, json=body)
        for _ in range(3)
    ]
    answer = await client.post("/v1/responses", headers=OPENAI_AUTH, json=body)

    assert [c.status_code for c in counts] == [404, 200, 200]
    assert counts[1].json()["input_tokens"] == 7
    assert counts[2].json()["input_tokens"] == -(-len(counts[2].request.content) // 4)
    assert answer.json()["output"][0]["content"][0]["text"] == "the answer"


# Control API


async def test_scripts_are_consumed_in_order_then_the_default_resumes(client):
    await script(client, "gpt-test", {"blocks": [{"type": "text", "text": "one"}]})
    await script(client, "gpt-test", {"blocks": [{"type": "text", "text": "two"}]})
    await script(client, "other-model", {"blocks": [{"type": "text", "text": "not mine"}]})

    contents = []
    for _ in range(3):
        response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=chat())
        contents.append(response.json()["choices"][0]["message"]["content"])

    assert contents == ["one", "two", "echo: Hello there"]


async def test_requests_are_recorded_with_secrets_redacted(client):
    await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=chat())
    await client.post("/v1/chat/completions", json=chat(text="no key"))

    first, second = await recorded(client, "gpt-test")
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["authorization"] == "<redacted>"
    assert first["auth_present"] is True
    assert first["body"] == chat()
    assert first["completed"] is True and first["disconnected"] is False
    assert second["auth_present"] is False and "authorization" not in second["headers"]
    assert await recorded(client, "someone-else") == []


async def test_reset_clears_scripts_and_records(client):
    await script(client, "gpt-test", {"status": 500})
    await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=chat(text="before"))
    await script(client, "gpt-test", {"status": 500})

    assert (await client.post("/_control/reset")).status_code == 200
    response = await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=chat())

    assert response.status_code == 200
    assert [r["body"]["messages"][0]["content"] for r in await recorded(client, "gpt-test")] == [
        "Hello there"
    ]


async def test_a_script_with_an_unknown_field_is_rejected(client):
    body = {"model": "gpt-test", "replies": [{"stauts": 500}]}
    response = await client.post("/_control/script", json=body)

    assert response.status_code == 400
    assert "stauts" in response.json()["error"]["message"]


async def test_health_answers_200(client):
    assert (await client.get("/_control/health")).status_code == 200


# Faults, in-process


async def test_text_chunk_size_sets_the_delta_size(client):
    await script(
        client,
        "claude-test",
        {"blocks": [{"type": "text", "text": "abcdefg"}], "text_chunk_size": 3},
    )
    response = await client.post("/v1/messages", headers=ANTHROPIC_AUTH, json=messages(stream=True))

    deltas = [
        e["delta"]["text"]
        for e in named_events(response.text)
        if e["type"] == "content_block_delta"
    ]
    assert deltas == ["abc", "def", "g"]


async def test_cut_after_chunks_drops_the_connection(client):
    await script(client, "claude-test", {"cut_after_chunks": 2})

    with pytest.raises(ConnectionDropped):
        await client.post("/v1/messages", headers=ANTHROPIC_AUTH, json=messages(stream=True))
    record = (await recorded(client, "claude-test"))[-1]
    assert record["completed"] is False


async def test_silent_after_chunks_pauses_for_hang_seconds_then_resumes(client):
    await script(client, "gpt-test", {"silent_after_chunks": 1, "hang_seconds": 0.2})
    started = time.monotonic()
    response = await client.post(
        "/v1/chat/completions", headers=OPENAI_AUTH, json=chat(stream=True)
    )

    assert time.monotonic() - started >= 0.2
    assert openai_chunks(response.text)[-1]["choices"][0]["finish_reason"] == "stop"
    assert (await recorded(client, "gpt-test"))[-1]["completed"] is True


async def test_chunk_delay_and_delay_first_byte_slow_the_reply(client):
    await script(client, "gpt-test", {"delay_first_byte": 0.1, "chunk_delay": 0.05})
    started = time.monotonic()
    response = await client.post(
        "/v1/chat/completions", headers=OPENAI_AUTH, json=chat(stream=True)
    )

    frames = response.text.count("data: ")
    assert time.monotonic() - started >= 0.1 + 0.05 * (frames - 1)
    assert (await recorded(client, "gpt-test"))[-1]["completed"] is True


# The real server, in a subprocess


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def fresh_upstream(upstream):
    upstream.reset()
    return upstream


def test_real_server_streams_a_reply_and_records_it(fresh_upstream):
    body = messages(stream=True)
    with httpx.Client(base_url=fresh_upstream.url) as http:
        response = http.post("/v1/messages", headers=ANTHROPIC_AUTH, json=body)

    assert response.status_code == 200
    assert named_events(response.text)[-1] == {"type": "message_stop"}
    (record,) = fresh_upstream.requests("claude-test")
    assert record["completed"] is True and record["headers"]["x-api-key"] == "<redacted>"


def test_real_server_refuse_connection_closes_the_socket(fresh_upstream):
    fresh_upstream.script("gpt-test", {"refuse_connection": True})
    with (
        httpx.Client(base_url=fresh_upstream.url) as http,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        http.post("/v1/chat/completions", headers=OPENAI_AUTH, json=chat())

    assert fresh_upstream.requests("gpt-test")[-1]["completed"] is False
    assert "Error" not in fresh_upstream.output()


def test_real_server_cut_leaves_the_stream_incomplete(fresh_upstream):
    fresh_upstream.script("gpt-test", {"cut_after_chunks": 1})
    received = []
    with (
        httpx.Client(base_url=fresh_upstream.url) as http,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        body = chat(stream=True)
        with http.stream(
            "POST", "/v1/chat/completions", headers=OPENAI_AUTH, json=body
        ) as response:
            received.extend(response.iter_lines())

    assert received[0].startswith("data: ")
    assert "data: [DONE]" not in received


def test_real_server_records_a_client_that_leaves_during_silence(fresh_upstream):
    fresh_upstream.script("gpt-test", {"silent_after_chunks": 1, "hang_seconds": 30})
    timeout = httpx.Timeout(5.0, read=0.3)
    with (
        httpx.Client(base_url=fresh_upstream.url, timeout=timeout) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        body = chat(stream=True)
        with http.stream(
            "POST", "/v1/chat/completions", headers=OPENAI_AUTH, json=body
        ) as response:
            for _ in response.iter_lines():
                pass

    deadline = time.monotonic() + 5
    while not fresh_upstream.requests("gpt-test")[-1]["disconnected"]:
        assert time.monotonic() < deadline, "the fake never saw the client leave"
        time.sleep(0.05)
    assert fresh_upstream.requests("gpt-test")[-1]["completed"] is False


def test_benchmark_model_names_shape_the_default_reply():
    from tests.fake_upstream.scenario import DEFAULT_SCENARIO, TextBlock, standing_scenario

    assert standing_scenario("gpt-4") is DEFAULT_SCENARIO
    shaped = standing_scenario("bench-200tok-50ms")
    assert shaped.blocks == [TextBlock(text="tok " * 200)]
    assert (shaped.text_chunk_size, shaped.chunk_delay) == (4, 0.05)


# Prompt caching and Gemini 3 thought signatures


def big_system() -> str:
    return "You are a careful coding agent. " * 200  # about 1,600 tokens


async def test_openai_reports_cached_tokens_when_a_key_repeats_its_prefix(client):
    body = chat_body_with_key("tenant-a")
    first = (await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)).json()
    again = (await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=body)).json()
    other = chat_body_with_key("tenant-b")
    elsewhere = (await client.post("/v1/chat/completions", headers=OPENAI_AUTH, json=other)).json()

    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = again["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024 and cached % 128 == 0
    assert again["usage"]["prompt_tokens"] == first["usage"]["prompt_tokens"]
    assert elsewhere["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


async def test_responses_reports_cached_tokens_in_input_tokens_details(client):
    body = {
        "model": "gpt-5",
        "instructions": big_system(),
        "input": "hi",
        "prompt_cache_key": "k",
    }
    await client.post("/v1/responses", headers=OPENAI_AUTH, json=body)
    again = (await client.post("/v1/responses", headers=OPENAI_AUTH, json=body)).json()
    assert again["usage"]["input_tokens_details"]["cached_tokens"] >= 1024


def chat_body_with_key(key: str) -> dict:
    return {
        "model": "gpt-4.1",
        "prompt_cache_key": key,
        "messages": [
            {"role": "system", "content": big_system()},
            {"role": "user", "content": "hi"},
        ],
    }


async def test_gemini_3_signs_calls_and_refuses_a_turn_that_drops_the_signature(client):
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {}}]}]
    ask = {
        "contents": [{"role": "user", "parts": [{"text": "Weather?"}]}],
        "tools": tools,
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }
    url = "/v1beta/models/gemini-3-pro-preview:generateContent"
    reply = (await client.post(url, headers=GEMINI_AUTH, json=ask)).json()
    part = reply["candidates"][0]["content"]["parts"][0]
    assert "functionCall" in part and part["thoughtSignature"]

    def follow_up(call_part: dict) -> dict:
        response = {"functionResponse": {"name": "get_weather", "response": {"output": "18"}}}
        contents = [*ask["contents"], {"role": "model", "parts": [call_part]}]
        return {**ask, "contents": [*contents, {"role": "user", "parts": [response]}]}

    unsigned = {"functionCall": part["functionCall"]}
    refused = await client.post(url, headers=GEMINI_AUTH, json=follow_up(unsigned))
    forged = await client.post(
        url, headers=GEMINI_AUTH, json=follow_up({**part, "thoughtSignature": "AAAA"})
    )
    signed = await client.post(url, headers=GEMINI_AUTH, json=follow_up(part))

    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "thought_signature" in refused.json()["error"]["message"]
    assert forged.status_code == 400
    assert signed.status_code == 200
