"""`/v1/chat/completions` streams end to end: the exact chunk sequence (raw bytes) from every
provider kind, tool-call deltas, the usage chunk, and the `openai` SDK reading them."""

import json

import openai
import pytest
import redis
from django.conf import settings

from tests.e2e.chat import KINDS, MODEL, UPSTREAM_KINDS, WEATHER, chunks, client, post, route
from tests.e2e.usage import records_for

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = [{"role": "user", "content": "Tell me about Lima"}]


def assert_envelope(frames: list, *, usage_key: bool) -> None:
    """One id, created and model on every chunk; `usage: null` on all but the usage chunk
    when the client asked for usage, no `usage` key otherwise."""
    assert frames[-1] == "[DONE]" and "[DONE]" not in frames[:-1]
    objects = frames[:-1]
    assert {c["object"] for c in objects} == {"chat.completion.chunk"}
    assert len({(c["id"], c["created"], c["model"]) for c in objects}) == 1
    assert objects[0]["id"].startswith("chatcmpl-") and objects[0]["model"] == MODEL
    for chunk in objects:
        if chunk["choices"]:
            assert chunk.get("usage", "absent") == (None if usage_key else "absent")


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_a_text_stream_is_role_content_finish_usage_done(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    body = {"model": MODEL, "messages": QUESTION, "stream": True}
    response = post(stage, key, {**body, "stream_options": {"include_usage": True}})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"].startswith("req_")
    frames = chunks(response)
    assert_envelope(frames, usage_key=True)
    first, *deltas, finish, usage, _ = frames
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert deltas and all(set(c["choices"][0]["delta"]) == {"content"} for c in deltas)
    assert all(c["choices"][0]["finish_reason"] is None for c in deltas)
    text = "".join(c["choices"][0]["delta"]["content"] for c in deltas)
    expected = "Tell me about Lima" if kind == "demo" else "echo: Tell me about Lima"
    assert expected in text
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert usage["choices"] == []
    tokens = usage["usage"]
    assert tokens["prompt_tokens"] > 0 and tokens["completion_tokens"] > 0
    assert tokens["total_tokens"] == tokens["prompt_tokens"] + tokens["completion_tokens"]

    plain = chunks(post(stage, key, body))  # no include_usage: no usage chunk, no usage key
    assert_envelope(plain, usage_key=False)
    assert plain[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_tool_call_deltas_carry_index_and_the_id_and_name_first(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    if kind != "demo":
        calls = [
            {"type": "tool_use", "name": "get_weather", "input": {"city": c * 8}, "id": f"call_{c}"}
            for c in ("Lima", "Quito")
        ]
        stage.upstream.script(upstream_model, {"blocks": calls, "text_chunk_size": 8})
    body = {
        "model": MODEL,
        "messages": QUESTION,
        "tools": [WEATHER],
        "tool_choice": "required",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    frames = chunks(post(stage, key, body))
    assert_envelope(frames, usage_key=True)
    assert frames[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert frames[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert frames[-2]["choices"] == []
    pieces = [call for c in frames[1:-3] for call in c["choices"][0]["delta"].get("tool_calls", [])]
    by_index: dict[int, list[dict]] = {}
    for piece in pieces:
        by_index.setdefault(piece["index"], []).append(piece)
    assert list(by_index) == ([0] if kind == "demo" else [0, 1])
    for index, fragments in by_index.items():
        head, *rest = fragments
        assert head["id"] and head["type"] == "function"
        assert head["function"]["name"] == "get_weather"
        assert all(set(p) == {"index", "function"} for p in rest)
        assert all(set(p["function"]) == {"arguments"} for p in rest)
        arguments = "".join(p["function"]["arguments"] for p in fragments)
        city = json.loads(arguments)["city"]
        if kind != "demo":
            assert city == ("Lima", "Quito")[index] * 8
            if kind != "gemini":
                assert head["id"] == f"call_{('Lima', 'Quito')[index]}"


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_the_sdk_reads_the_stream_as_the_answer(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    chat = client(stage, key).chat.completions
    ask = {"model": MODEL, "messages": QUESTION, "tools": [WEATHER]}
    created = chat.create(**ask, tool_choice="required")
    stream = chat.create(
        **ask, tool_choice="required", stream=True, stream_options={"include_usage": True}
    )
    seen = list(stream)
    assert seen[-1].choices == [] and seen[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in seen[:-1]][-1] == "tool_calls"
    with chat.stream(**ask, tool_choice="required") as helper:
        final = helper.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == created.choices[0].message.tool_calls[0].function.name
    assert call.function.parsed_arguments is None or isinstance(
        call.function.parsed_arguments, dict
    )
    assert json.loads(call.function.arguments).keys() == {"city"}
    text = chat.create(model=MODEL, messages=QUESTION, stream=True)
    joined = "".join(c.choices[0].delta.content or "" for c in text if c.choices)
    assert "Tell me about Lima" in joined


@pytest.mark.parametrize(("kind", "upstream_model"), UPSTREAM_KINDS)
def test_a_stream_cut_by_the_upstream_ends_with_an_error_frame(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    stage.upstream.script(
        upstream_model,
        {"blocks": [{"type": "text", "text": "x" * 400}], "cut_after_chunks": 10},
    )
    body = {"model": MODEL, "messages": QUESTION, "stream": True}
    response = post(stage, key, body)
    frames = chunks(response)
    assert frames[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "[DONE]" not in frames
    assert any(c["choices"][0]["delta"].get("content") for c in frames[1:-1])
    error = frames[-1]["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "server_error"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    request_id = response.headers["x-request-id"]
    row = records_for(broker, [request_id])[request_id]
    assert (row.endpoint, row.status, row.streamed) == ("chat_completions", "error", True)
    assert row.output_tokens > 0  # what was streamed before the cut

    stage.upstream.script(
        upstream_model,
        {"blocks": [{"type": "text", "text": "x" * 400}], "cut_after_chunks": 10},
    )
    with pytest.raises(openai.APIError):
        for _ in client(stage, key).chat.completions.create(**body):
            pass


def test_an_upstream_failure_before_the_first_chunk_is_an_http_error(stage):
    key = route(stage, "openai", "gpt-chat")
    failure = {"status": 503, "error_body": {"error": {"message": "busy", "type": "x"}}}
    stage.upstream.script("gpt-chat", failure, failure)
    with pytest.raises(openai.InternalServerError) as refused:
        client(stage, key).chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
    assert refused.value.status_code in (502, 503)
    assert set(refused.value.body) == {"message", "type", "param", "code"}
