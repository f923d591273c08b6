"""`POST /v1/responses` as a gateway endpoint, through the official `openai` SDK: the same
tenancy, limits, budgets, fallbacks, extras and usage records as `/v1/messages`; the stateless
refusals (`previous_response_id`, `store: true` per strictness); errors in OpenAI's shape with
the SDK's exception classes; hostile bodies answered with a 4xx naming the field, never a 500,
and no trace of them for another tenant.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest
import redis
from django.conf import settings

from tests.e2e.test_openai_responses import PUBLIC, WEATHER, client
from tests.e2e.usage import drain, records_for

ASK = {"model": PUBLIC, "input": "hi"}


def routes(stage, *entries: tuple[str, str], tenants=None, **key_options) -> str:
    """entries: (kind, upstream model), tried in that order; returns an acme key."""
    stage.apply(
        providers=[stage.provider(kind) for kind in dict(entries)],
        models=[
            stage.model(
                PUBLIC,
                [
                    {"provider": f"{kind}-fake", "upstream_model": upstream, "priority": n}
                    for n, (kind, upstream) in enumerate(entries, 1)
                ],
            )
        ],
        tenants=tenants or [{"name": "acme"}],
    )
    return stage.tenant_key("acme", **key_options)


def post(stage, key: str, body, **headers) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        stage.gateway.url + "/v1/responses",
        content=data,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json", **headers},
        timeout=30,
    )


@pytest.fixture
def broker():
    connection = redis.Redis.from_url(settings.REDIS_URL)
    drain(connection)  # records of earlier tests
    yield connection
    connection.close()


# --- stateless by design ----------------------------------------------------------------------
def test_previous_response_id_is_refused_in_openai_shape(stage):
    gpt = client(stage, routes(stage, ("openai_responses", "up-r")))
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.responses.create(**ASK, previous_response_id="resp_123")
    error = caught.value.body
    assert error["type"] == "invalid_request_error" and error["param"] == "previous_response_id"
    assert "send the whole conversation" in error["message"]
    assert not stage.upstream.requests("up-r")


def test_store_true_is_a_warning_by_default_and_refused_under_strictness_error(stage):
    key = routes(stage, ("anthropic", "up-a"))
    warned = post(stage, key, {**ASK, "store": True})
    assert warned.status_code == 200 and warned.json()["store"] is False
    assert "store" in warned.headers["tollgate-warnings"]
    gpt = client(stage, key, default_headers={"x-tollgate-strictness": "error"})
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.responses.create(**ASK, store=True)
    assert "store" in caught.value.body["message"]
    assert gpt.responses.create(**ASK, store=False).output_text == "echo: hi"
    assert len(stage.upstream.requests("up-a")) == 2  # the refused one never left


# --- tenancy, limits, budgets -------------------------------------------------------------------
def test_a_bad_key_and_another_tenants_model_are_refused(stage):
    stage.apply(
        providers=[stage.provider("openai")],
        models=[
            stage.model(name, [{"provider": "openai-fake", "upstream_model": f"up-{name}"}])
            for name in (PUBLIC, "gpt-globex")
        ],
        tenants=[{"name": "acme"}, {"name": "globex", "models": ["gpt-globex"]}],
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        client(stage, "tg_not_a_key").responses.create(**ASK)
    assert caught.value.body["code"] == "invalid_api_key"
    outsider = client(stage, stage.tenant_key("globex"))
    with pytest.raises(openai.NotFoundError) as caught:
        outsider.responses.create(**ASK)
    assert caught.value.body["code"] == "model_not_found"
    assert not stage.upstream.requests(f"up-{PUBLIC}")


def test_over_the_rate_limit_is_a_rate_limit_error_with_openai_headers(stage):
    gpt = client(stage, routes(stage, ("openai", "up-rpm"), rpm=2))
    first = gpt.responses.with_raw_response.create(**ASK)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    gpt.responses.create(**ASK)
    with pytest.raises(openai.RateLimitError) as caught:
        gpt.responses.create(**ASK)
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(stage.upstream.requests("up-rpm")) == 2


def test_a_spent_budget_is_insufficient_quota(stage):
    key = routes(stage, ("openai", "up-b"), budget_usd="0.01", budget_period="daily")
    gpt = client(stage, key)
    stage.upstream.script("up-b", {"usage": {"input_tokens": 1000, "output_tokens": 1000}})
    gpt.responses.create(**ASK, max_output_tokens=16)  # reserves less than the budget
    with pytest.raises(openai.RateLimitError) as caught:  # the SDK's class for a 429
        gpt.responses.create(**ASK, max_output_tokens=16)
    assert caught.value.body["code"] == "insufficient_quota"
    assert "budget" in caught.value.body["message"]
    assert len(stage.upstream.requests("up-b")) == 1


# --- fallbacks and upstream errors ------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_failing_route_falls_back_to_the_next(stage, stream):
    gpt = client(stage, routes(stage, ("gemini", "up-bad"), ("anthropic", "up-good")))
    stage.upstream.script("up-bad", {"status": 500}, {"status": 500})
    if stream:
        with gpt.responses.stream(**ASK) as events:
            answer = events.get_final_response()
    else:
        answer = gpt.responses.create(**ASK)
    assert answer.output_text == "echo: hi"
    assert len(stage.upstream.requests("up-good")) == 1


@pytest.mark.parametrize(
    ("status", "error_class"),
    # A provider's 429 is the gateway's capacity running out, not the client's limit: a 503.
    [
        (400, openai.BadRequestError),
        (429, openai.InternalServerError),
        (500, openai.APIStatusError),
    ],
)
def test_an_upstream_error_reaches_the_sdk_as_its_class(stage, status, error_class):
    gpt = client(stage, routes(stage, ("openai_responses", "up-err")))
    stage.upstream.script("up-err", *[{"status": status, "headers": {"retry-after": "0"}}] * 3)
    with pytest.raises(error_class) as caught:
        gpt.responses.create(**ASK, extra_body={"provider": {"allow_fallbacks": False}})
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert "sk-upstream-secret" not in json.dumps(caught.value.body)


def test_a_stream_cut_by_the_upstream_ends_with_response_failed(stage):
    gpt = client(stage, routes(stage, ("anthropic", "up-cut")))
    stage.upstream.script("up-cut", {"blocks": [{"type": "text", "text": "x" * 200}],
                                     "cut_after_chunks": 4, "text_chunk_size": 4})  # fmt: skip
    with gpt.responses.stream(**ASK) as stream:
        types = [event.type for event in stream]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.failed" and "response.completed" not in types


# --- extras and usage records -----------------------------------------------------------------
PRICES = {"input": Decimal(3), "output": Decimal(15)}


def test_usage_and_meta_extras_ride_on_the_response_and_the_completed_event(stage):
    gpt = client(stage, routes(stage, ("openai", "up-x")))
    extra = {"usage": True, "meta": True}
    answer = gpt.responses.create(**ASK, extra_body=extra)
    usage = answer.usage.model_dump()
    cost = usage["input_tokens"] * PRICES["input"] + usage["output_tokens"] * PRICES["output"]
    assert Decimal(usage["cost_usd"]) == cost / 10**6
    meta = answer.model_extra["meta"]
    assert (meta["provider"], meta["upstream_model"]) == ("openai-fake", "up-x")
    assert meta["request_id"] == answer._request_id
    with gpt.responses.stream(**ASK, extra_body=extra) as stream:
        events = list(stream)
    completed = events[-1].response
    assert events[-1].type == "response.completed" and "cost_usd" in completed.usage.model_dump()
    assert completed.model_extra["meta"]["provider"] == "openai-fake"
    assert "usage" not in stage.upstream.requests("up-x")[-1]["body"]  # never forwarded


@pytest.mark.parametrize("kind", ["anthropic", "openai", "openai_responses", "gemini"])
def test_each_call_has_a_usage_record_for_the_responses_endpoint(stage, broker, kind):
    gpt = client(stage, routes(stage, (kind, "up-rec")))
    answer = gpt.responses.with_raw_response.create(**ASK)
    with gpt.responses.with_streaming_response.create(**ASK, stream=True) as streamed:
        streamed.read()
    ids = [answer.headers["x-request-id"], streamed.headers["x-request-id"]]
    rows = records_for(broker, ids)
    for row in rows.values():
        assert (row.endpoint, row.status, row.http_status) == ("responses", "ok", 200)
        assert (row.model, row.provider, row.upstream_model) == (PUBLIC, f"{kind}-fake", "up-rec")
        assert row.input_tokens > 0 and row.output_tokens > 0 and row.cost_usd > 0
    assert rows[ids[1]].streamed and not rows[ids[0]].streamed


# --- hostile input ----------------------------------------------------------------------------
HOSTILE = {
    "not json": (b"{nope", None),
    "a list body": (b"[1, 2]", None),
    "input a number": ({"model": PUBLIC, "input": 5}, "input"),
    "an item not an object": ({"model": PUBLIC, "input": ["hi"]}, "input[0]"),
    "an unknown item type": ({"model": PUBLIC, "input": [{"type": "bogus"}]}, "input[0].type"),
    "an item without a type": ({"model": PUBLIC, "input": [{"x": 1}]}, "input[0].type"),
    "a role of the wrong type": (
        {"model": PUBLIC, "input": [{"type": "message", "role": 7, "content": "x"}]},
        "input[0].role",
    ),
    "content parts not objects": (
        {"model": PUBLIC, "input": [{"role": "user", "content": [1, None]}]},
        "input[0].content[0].type",
    ),
    "an output for an unknown call": (
        {
            "model": PUBLIC,
            "input": [
                {"role": "user", "content": "x"},
                {"type": "function_call_output", "call_id": "call_nobody", "output": "y"},
            ],
        },
        "input[1].call_id",
    ),
    "a call without its output": (
        {
            "model": PUBLIC,
            "input": [
                {"role": "user", "content": "x"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            ],
        },
        "input[1]",
    ),
    "arguments that are not JSON": (
        {
            "model": PUBLIC,
            "input": [
                {"role": "user", "content": "x"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{oops"},
                {"type": "function_call_output", "call_id": "c1", "output": "y"},
            ],
        },
        "input[1].arguments",
    ),
    "a reasoning item with a numeric secret": (
        {
            "model": PUBLIC,
            "input": [
                {"role": "user", "content": "x"},
                {"type": "reasoning", "summary": [], "encrypted_content": 42},
            ],
        },
        "input[1].encrypted_content",
    ),
    "tools not a list": ({**ASK, "tools": {"type": "function"}}, "tools"),
    "a tool with a bad name": ({**ASK, "tools": [{**WEATHER, "name": "a b"}]}, "tools[0].name"),
    "a namespace without tools": (
        {**ASK, "tools": [{"type": "namespace", "name": "ns", "description": "d"}]},
        "tools[0].tools",
    ),
    "a namespace holding a hosted tool": (
        {
            **ASK,
            "tools": [
                {
                    "type": "namespace",
                    "name": "ns",
                    "description": "d",
                    "tools": [{"type": "web_search"}],
                }
            ],
        },
        "tools[0].tools[0].type",
    ),
    "an unknown tool type": ({**ASK, "tools": [{"type": "computer_use"}]}, "tools[0].type"),
    "tool_choice naming no tool": (
        {**ASK, "tool_choice": {"type": "function", "name": "ghost"}},
        "tool_choice.name",
    ),
    "a negative max_output_tokens": ({**ASK, "max_output_tokens": -1}, "max_output_tokens"),
    "temperature out of range": ({**ASK, "temperature": 9}, "temperature"),
    "an unknown reasoning effort": ({**ASK, "reasoning": {"effort": "extreme"}}, None),
    "a json_schema without a schema": (
        {**ASK, "text": {"format": {"type": "json_schema", "name": "x"}}},
        None,
    ),
    "an empty input": ({"model": PUBLIC, "input": []}, "input"),
    "no model": ({"input": "hi"}, None),
    "a conversation id": ({**ASK, "conversation": "conv_1"}, "conversation"),
    "background": ({**ASK, "background": True}, "background"),
}


def test_hostile_bodies_are_4xx_in_openai_shape_and_other_tenants_see_nothing(stage):
    key = routes(
        stage, ("openai_responses", "up-h"), tenants=[{"name": "acme"}, {"name": "globex"}]
    )
    other = client(stage, stage.tenant_key("globex"))
    for name, (body, param) in HOSTILE.items():
        answer = post(stage, key, body)
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text)
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, name
        assert error["type"] == "invalid_request_error" and error["message"], name
        if param is not None:
            assert error["param"] == param, (name, error)
    assert not stage.upstream.requests("up-h")
    assert other.responses.create(**ASK).output_text == "echo: hi"


def test_huge_strings_are_refused_or_served_never_a_500(stage):
    key = routes(stage, ("openai", "up-big"))
    too_big = post(stage, key, {**ASK, "input": "x" * (5 * 1024 * 1024)})
    assert too_big.status_code == 413  # refused by the server before the app: OpenAI's shape too
    assert too_big.json()["error"]["code"] == "request_too_large"
    long_name = {"type": "function", "name": "f" * 5000, "parameters": {"type": "object"}}
    refused = post(stage, key, {**ASK, "tools": [long_name]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tools[0].name"
    deep = {"model": PUBLIC, "input": "hi", "metadata": {"k": "v" * 100_000}}
    assert post(stage, key, deep).status_code in (200, 400)
    call_id = "c" * 10_000  # rewritten to an id every upstream takes, the same for its output
    history = [
        {"role": "user", "content": "x"},
        {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": call_id, "output": "y" * 200_000},
    ]
    served = post(stage, key, {"model": PUBLIC, "input": history, "tools": [WEATHER]})
    assert served.status_code == 200, served.text
