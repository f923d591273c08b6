"""Counting input tokens through a provider's own counter, and the estimate whenever that
counter cannot answer: missing (404), broken (5xx, a timeout, garbage), our key refused, or
what it was sent rejected. Issue 13, point 2."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest

from core import ir
from core.target import Target
from core.tokens import estimate_input_tokens
from providers.adapters import counting
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai_chat import OpenAIChatAdapter
from providers.adapters.openai_responses import OpenAIResponsesAdapter
from tests.unit.adapters.goldens import make_request

ADAPTERS = {
    "anthropic": (AnthropicAdapter(), {"input_tokens": 42}),
    "gemini": (GeminiAdapter(), {"totalTokens": 42}),
    "openai_responses": (
        OpenAIResponsesAdapter(),
        {"object": "response.input_tokens", "input_tokens": 42},
    ),
}
_route_ids = iter(range(70_000, 80_000))


def target(kind: str, **overrides) -> Target:
    fields = {
        "route_id": next(_route_ids),
        "provider_id": 1,
        "provider_name": f"{kind}-main",
        "kind": kind,
        "base_url": "https://upstream.test/v1" if kind != "anthropic" else "https://upstream.test",
        "api_key": "sk-upstream-secret",
        "upstream_model": "up-model",
        "signing_key": b"k",
    }
    return Target(**{**fields, **overrides})


def request() -> ir.Request:
    req = make_request(
        {
            "model": "claude-test",
            "max_tokens": 0,
            "system": [{"type": "text", "text": "Be terse."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "How many?"}]}],
        }
    )
    req.surface = "anthropic"
    req.raw_json = {
        "model": "claude-test",
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "How many?"}],
    }
    req.raw = json.dumps(req.raw_json).encode()
    return req


class Upstream:
    def __init__(self, answer: Callable[[httpx2.Request], httpx2.Response]):
        self.answer = answer
        self.seen: list[httpx2.Request] = []

    def client(self) -> httpx2.AsyncClient:
        def handle(req: httpx2.Request) -> httpx2.Response:
            self.seen.append(req)
            return self.answer(req)

        return httpx2.AsyncClient(transport=httpx2.MockTransport(handle))


ESTIMATE = estimate_input_tokens(request(), exact=True)


@pytest.mark.parametrize("kind", list(ADAPTERS))
async def test_the_providers_counter_answers_when_it_can(kind):
    adapter, answer = ADAPTERS[kind]
    upstream = Upstream(lambda req: httpx2.Response(200, json=answer))

    assert await adapter.count_tokens(request(), target(kind), upstream.client()) == (42, True)
    assert len(upstream.seen) == 1


def test_responses_counts_at_input_tokens_with_only_the_fields_it_takes():
    upstream = OpenAIResponsesAdapter().count_request(request(), target("openai_responses"))
    assert upstream.url == "https://upstream.test/v1/responses/input_tokens"
    assert upstream.body == {
        "model": "up-model",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "How many?"}]}],
        "instructions": "Be terse.",
    }
    assert upstream.headers["authorization"] == "Bearer sk-upstream-secret"


def test_openai_chat_has_no_counter():
    assert OpenAIChatAdapter().count_request(request(), target("openai")) is None


FAILURES = {
    "missing": lambda req: httpx2.Response(404, json={"error": {"message": "Not Found"}}),
    "server_error": lambda req: httpx2.Response(500, text="boom"),
    "our_key_refused": lambda req: httpx2.Response(
        401, json={"type": "error", "error": {"type": "authentication_error", "message": "no"}}
    ),
    "request_rejected": lambda req: httpx2.Response(
        400, json={"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}
    ),
    "not_json": lambda req: httpx2.Response(200, text="<html>ok</html>"),
    "wrong_shape": lambda req: httpx2.Response(200, json={"tokens": "many"}),
    "negative": lambda req: httpx2.Response(200, json={"input_tokens": -3, "totalTokens": -3}),
    "a_string": lambda req: httpx2.Response(200, json={"input_tokens": "42", "totalTokens": "42"}),
    "unreachable": lambda req: (_ for _ in ()).throw(httpx2.ConnectError("refused")),
    "timeout": lambda req: (_ for _ in ()).throw(httpx2.ReadTimeout("slow")),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("kind", list(ADAPTERS))
async def test_any_failure_of_the_counter_is_answered_by_the_estimate(kind, failure):
    adapter, _ = ADAPTERS[kind]
    upstream = Upstream(FAILURES[failure])

    assert await adapter.count_tokens(request(), target(kind), upstream.client()) == (
        ESTIMATE,
        False,
    )


async def test_a_server_without_a_counter_is_asked_again_only_after_a_while(monkeypatch):
    adapter, _ = ADAPTERS["anthropic"]
    upstream = Upstream(FAILURES["missing"])
    route = target("anthropic")
    for _ in range(3):
        assert await adapter.count_tokens(request(), route, upstream.client()) == (ESTIMATE, False)
    assert len(upstream.seen) == 1  # the 404 is remembered for that route

    other = Upstream(lambda req: httpx2.Response(200, json={"input_tokens": 9}))
    assert await adapter.count_tokens(request(), target("anthropic"), other.client()) == (9, True)
    monkeypatch.setattr(counting, "MISSING_COUNTER_SECONDS", 0.0)
    counting._missing_counters.remember(route.route_id)
    assert await adapter.count_tokens(request(), route, other.client()) == (9, True)


async def test_a_server_error_is_asked_again_next_time():
    adapter, _ = ADAPTERS["gemini"]
    upstream = Upstream(FAILURES["server_error"])
    route = target("gemini")
    for _ in range(2):
        await adapter.count_tokens(request(), route, upstream.client())
    assert len(upstream.seen) == 2


async def test_content_the_route_cannot_carry_is_estimated_without_a_call():
    adapter, _ = ADAPTERS["gemini"]
    upstream = Upstream(lambda req: httpx2.Response(200, json={"totalTokens": 1}))
    image = {"type": "image", "url": "https://x.test/a.png"}
    req = make_request(
        {
            "model": "m",
            "max_tokens": 0,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}],
        }
    )
    tokens, exact = await adapter.count_tokens(req, target("gemini"), upstream.client())
    assert (tokens, exact) == (estimate_input_tokens(req, exact=True), False)
    assert upstream.seen == []


def test_missing_counters_stay_bounded():
    for route_id in range(counting._MissingCounters.KEPT + 10):
        counting._missing_counters.remember(route_id)
    assert len(counting._missing_counters.until) <= counting._MissingCounters.KEPT
