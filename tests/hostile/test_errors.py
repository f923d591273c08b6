"""Errors that blame the right party, against both servers (issue 13, points 2, 8 and 9).

Our credential refused is never the tenant's error, never shows the key, and is the one
upstream refusal that counts against a shared route; a refusal a tenant can earn never does.
Counting tokens answers whatever the provider's counter does, and garbage stays a 4xx.
"""

from __future__ import annotations

import time

import httpx

from providers import breaker
from providers.models import Route
from tests.hostile.conftest import assert_error_shape, assert_healthy

ASK = {"model": "m-gemini", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
SUSPENDED_KEY = "suspended-gateway-key-0123456789"
SUSPENDED = "403 CONSUMER_SUSPENDED"  # what Gemini answers it (reference 4.7)


def gemini_route(stage, api_key: str = "sk-upstream-secret") -> dict[str, str]:
    stage.apply(
        providers=[stage.provider("gemini", api_key=api_key)],
        models=[stage.model("m-gemini", [{"provider": "gemini-fake", "upstream_model": "up-g"}])],
        tenants=[{"name": "mallory"}, {"name": "alice"}],
    )
    return {"mallory": stage.tenant_key("mallory"), "alice": stage.tenant_key("alice")}


def post(stage, path: str, key: str, **kwargs) -> httpx.Response:
    return httpx.post(stage.gateway.url + path, headers={"x-api-key": key}, timeout=30, **kwargs)


def failures() -> int:
    return breaker.health(Route.objects.get().pk).failures


def test_our_suspended_key_is_an_api_error_that_never_shows_the_key(hostile):
    keys = gemini_route(hostile, api_key=SUSPENDED_KEY)

    for stream in (False, True):
        answer = post(hostile, "/v1/messages", keys["alice"], json={**ASK, "stream": stream})
        error = assert_error_shape(answer, 500, "api_error")
        assert error["message"] == f"upstream refused the gateway's credential ({SUSPENDED})"
        assert answer.headers["x-should-retry"] == "false"
        assert SUSPENDED_KEY not in answer.text

    time.sleep(0.2)  # the log line is written by another process
    assert "route gemini-fake failed (403)" in hostile.gateway.log()
    assert SUSPENDED_KEY not in hostile.gateway.log()
    assert failures() == 2  # our credential: the route's fault, once per request
    assert_healthy(hostile)


def test_refusals_a_tenant_can_earn_never_count_but_our_refused_key_does(hostile):
    keys = gemini_route(hostile)
    denied = {"status": 403}  # PERMISSION_DENIED without details: a cache it may not use
    hostile.upstream.script("up-g", *[denied] * 20)
    cached = {"provider_options": {"google": {"cached_content": "cachedContents/not-yours"}}}
    for _ in range(20):
        answer = post(hostile, "/v1/messages", keys["mallory"], json={**ASK, **cached})
        assert_error_shape(answer, 500, "api_error")
        assert answer.headers["x-should-retry"] == "false"
    assert failures() == 0
    assert post(hostile, "/v1/messages", keys["alice"], json=ASK).status_code == 200

    gemini_route(hostile, api_key="revoked-gateway-key-0123456789")
    for _ in range(5):  # production settings: five failures in a row open the breaker
        assert_error_shape(post(hostile, "/v1/messages", keys["alice"], json=ASK), 500, "api_error")
    refused = post(hostile, "/v1/messages", keys["alice"], json=ASK)
    assert "circuit open" in assert_error_shape(refused, 529, "overloaded_error")["message"]
    assert len(hostile.upstream.requests("up-g")) == 21 + 5  # one call each, no retries


def test_count_tokens_answers_whatever_the_counter_does_and_garbage_stays_a_400(hostile):
    keys = gemini_route(hostile)
    count = {"model": "m-gemini", "messages": [{"role": "user", "content": "How many?"}]}
    broken = [{"status": 500}, {"status": 200, "error_body": [1, 2]}, {}, {"status": 404}]
    hostile.upstream.script("up-g", *broken, endpoint="count")

    answers = [
        post(hostile, "/v1/messages/count_tokens", keys[tenant], json=count)
        for tenant in ("mallory", "mallory", "alice", "mallory", "alice")
    ]

    assert [a.status_code for a in answers] == [200] * 5
    sources = [a.headers["tollgate-token-count"] for a in answers]
    assert sources == ["estimate", "estimate", "provider", "estimate", "estimate"]
    assert (
        len(
            {
                a.json()["input_tokens"]
                for a in answers
                if a.headers["tollgate-token-count"] == "estimate"
            }
        )
        == 1
    )
    assert len(hostile.upstream.requests("up-g")) == 4  # a missing counter is not asked again
    for garbage in ({"model": "m-gemini"}, {"model": "m-gemini", "messages": "x"}, [1]):
        refused = post(hostile, "/v1/messages/count_tokens", keys["mallory"], json=garbage)
        assert_error_shape(refused, 400, "invalid_request_error")
    assert failures() == 0  # counting never touches a route's health
    assert_healthy(hostile)
