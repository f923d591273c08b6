"""Hostile bodies on `/v1/chat/completions`: always a clear 4xx in OpenAI's shape naming the
field, never a 500, never an upstream call; a usage record where `/v1/messages` would leave one;
another tenant served meanwhile."""

import httpx
import pytest
import redis
from django.conf import settings

from tests.e2e.chat import ASK, MODEL, WEATHER, client, openai_error, post, route
from tests.e2e.usage import drain, records_for

pytestmark = pytest.mark.django_db(transaction=True)

USER = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
ASSISTANT = {"role": "assistant", "content": None, "tool_calls": [CALL]}
HUGE = "x" * (3 * 1024 * 1024)

# (body, the error's param: None when the message names no field)
BODIES = {
    "not an object": ([1, 2], None),
    "no messages": ({"model": MODEL}, "messages"),
    "empty messages": ({"model": MODEL, "messages": []}, "messages"),
    "messages a string": ({"model": MODEL, "messages": "hi"}, "messages"),
    "unknown role": (
        {"model": MODEL, "messages": [{"role": "robot", "content": "x"}]},
        "messages[0].role",
    ),
    "content a number": (
        {"model": MODEL, "messages": [{"role": "user", "content": 5}]},
        "messages[0].content",
    ),
    "model a number": ({"model": 5, "messages": [USER]}, "model"),
    "temperature a string": ({**ASK, "temperature": "hot"}, "temperature"),
    "max_tokens zero": ({**ASK, "max_completion_tokens": 0}, "max_completion_tokens"),
    "max_tokens huge": ({**ASK, "max_tokens": 2**40}, "max_tokens"),
    "stop of five": ({**ASK, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    "n zero": ({**ASK, "n": 0}, "n"),
    "stream a string": ({**ASK, "stream": "yes"}, "stream"),
    "stream_options a list": ({**ASK, "stream": True, "stream_options": [1]}, "stream_options"),
    "include_usage a string": (
        {**ASK, "stream": True, "stream_options": {"include_usage": "yes"}},
        "stream_options.include_usage",
    ),
    "tool_choice unknown": ({**ASK, "tool_choice": "sometimes"}, "tool_choice"),
    "tool_choice without tools": ({**ASK, "tool_choice": "required"}, "tool_choice"),
    "named tool not in tools": (
        {
            **ASK,
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "nope"}},
        },
        "tool_choice.function.name",
    ),
    "tool without function": ({**ASK, "tools": [{"type": "function"}]}, "tools[0].function"),
    "tool name with spaces": (
        {**ASK, "tools": [{"type": "function", "function": {"name": "a b"}}]},
        "tools[0].function.name",
    ),
    "image url garbage": (
        {
            "model": MODEL,
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ],
        },
        "messages[0].content[0].image_url.url",
    ),
    "bad base64 image": (
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}
                    ],
                }
            ],
        },
        "messages[0].content[0].image_url.url",
    ),
    "tool answering an unknown id": (
        {
            "model": MODEL,
            "messages": [
                USER,
                ASSISTANT,
                {"role": "tool", "tool_call_id": "call_nope", "content": "18C"},
            ],
        },
        "messages[2].tool_call_id",
    ),
    "tool message with no call before": (
        {"model": MODEL, "messages": [USER, {"role": "tool", "tool_call_id": "x", "content": "y"}]},
        "messages[1].role",
    ),
    "tool call unanswered": (
        {"model": MODEL, "messages": [USER, ASSISTANT, USER]},
        "messages[1].tool_calls",
    ),
    "arguments not json": (
        {
            "model": MODEL,
            "messages": [
                USER,
                {
                    **ASSISTANT,
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{nope"}}],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "y"},
            ],
        },
        "messages[1].tool_calls[0].function.arguments",
    ),
    "arguments a json list": (
        {
            "model": MODEL,
            "messages": [
                USER,
                {
                    **ASSISTANT,
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[]"}}],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "y"},
            ],
        },
        "messages[1].tool_calls[0].function.arguments",
    ),
    "functions (deprecated)": ({**ASK, "functions": [{"name": "f"}]}, "functions"),
    "response_format without schema": (
        {**ASK, "response_format": {"type": "json_schema"}},
        "response_format.json_schema",
    ),
    "reasoning_effort unknown": ({**ASK, "reasoning_effort": "extreme"}, "reasoning_effort"),
}


@pytest.fixture
def broker():
    connection = redis.Redis.from_url(settings.REDIS_URL)
    drain(connection)
    yield connection
    connection.close()


def test_every_hostile_body_is_a_4xx_in_openais_shape_and_never_reaches_upstream(stage, broker):
    key = route(stage, "openai", "gpt-chat")
    problems = {}
    request_ids = []
    for name, (body, param) in BODIES.items():
        response = post(stage, key, body)
        if response.status_code != 400:
            problems[name] = (response.status_code, response.text[:200])
            continue
        error = openai_error(response)
        if error["type"] != "invalid_request_error" or error["param"] != param:
            problems[name] = error
        request_ids.append(response.headers["x-request-id"])
    assert problems == {}
    assert stage.upstream.requests("gpt-chat") == []
    rows = records_for(broker, request_ids)  # as /v1/messages leaves one for a bad body
    assert {(r.endpoint, r.http_status, r.billed) for r in rows.values()} == {
        ("chat_completions", 400, False)
    }


def test_garbage_bytes_are_a_400_or_413(stage):
    key = route(stage, "openai", "gpt-chat")
    url = stage.gateway.url + "/v1/chat/completions"
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    for raw in (b"", b"{", b"\xff\xfe\x00", b'{"model": "chat-test",}', b"null", b'"x"'):
        response = httpx.post(url, content=raw, headers=headers, timeout=10)
        assert response.status_code == 400, (raw, response.text)
        assert openai_error(response)["type"] == "invalid_request_error"
    too_big = httpx.post(url, content=b"{" + b" " * (5 * 1024 * 1024) + b"}", headers=headers)
    assert too_big.status_code == 413
    assert openai_error(too_big)["code"] == "request_too_large"


def test_huge_tool_call_arguments_are_refused_whole_or_carried_whole(stage):
    key = route(stage, "openai", "gpt-chat")
    arguments = '{"city": "' + HUGE + '"}'
    history = [
        USER,
        {**ASSISTANT, "tool_calls": [{**CALL, "function": {"name": "f", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]
    response = post(stage, key, {"model": MODEL, "messages": history})
    assert response.status_code in (200, 413), response.text[:300]
    if response.status_code == 413:
        assert openai_error(response)["code"] == "request_too_large"
        assert stage.upstream.requests("gpt-chat") == []
    else:
        sent = stage.upstream.requests("gpt-chat")[-1]["body"]["messages"][1]
        assert len(sent["tool_calls"][0]["function"]["arguments"]) > len(HUGE)


def test_a_hostile_tenant_leaves_another_tenant_unaffected(stage):
    key = route(stage, "openai", "gpt-chat")
    other = stage.tenant_key("globex")
    theirs = client(stage, other).chat.completions
    for n, (body, _) in enumerate(BODIES.values()):
        assert post(stage, key, body).status_code == 400
        if n % 4 == 0:  # between the hostile ones, the other tenant is served
            assert theirs.create(**ASK).choices[0].message.content == "echo: hi"
    assert len(stage.upstream.requests("gpt-chat")) == -(-len(BODIES) // 4)
