"""Property-based fuzzing of `/v1/messages` and `count_tokens` through the real servers.

Bodies come from the msgspec Structs that validate them (tests/hostile/strategies.py): valid,
almost valid and garbage, with hostile header values beside them. For every one: never a 5xx,
an Anthropic-shaped error for every refusal, a message or a well-formed stream for every
success; afterwards the server is healthy and every `/v1/messages` request has exactly one
usage record. `HYPOTHESIS_PROFILE=deep` runs many more examples, randomly seeded.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest
import redis
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from protocols.anthropic.schema import CountTokensBody, MessagesBody
from tests.e2e.usage import records_for
from tests.hostile import strategies
from tests.hostile.conftest import assert_healthy

MODELS = ["fuzz-openai", "fuzz-anthropic", "fuzz-gemini", "fuzz-responses", "fuzz-demo"]
ROUTES = {
    "fuzz-openai": ("openai", "gpt-fuzz"),
    "fuzz-anthropic": ("anthropic", "claude-fuzz"),
    "fuzz-gemini": ("gemini", "gemini-fuzz"),
    "fuzz-responses": ("openai_responses", "gpt-fuzz-r"),
    "fuzz-demo": ("demo", "demo"),
}
hypothesis_settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("TOLLGATE_FUZZ_EXAMPLES", "120")),
    deadline=None,
    derandomize=True,  # CI fails on a change, not on the day's luck
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.register_profile(
    "deep",
    max_examples=3000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = hypothesis_settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def configure(stage) -> str:
    providers = [stage.provider(kind) for kind in sorted({k for k, _ in ROUTES.values()})]
    models = [
        stage.model(public, [{"provider": f"{kind}-fake", "upstream_model": upstream}])
        for public, (kind, upstream) in ROUTES.items()
    ]
    stage.apply(providers=providers, models=models, tenants=[{"name": "fuzz"}])
    return stage.tenant_key("fuzz")


def headers_bytes(key: str, extra: dict[str, str]) -> dict[str, bytes]:
    headers = {"x-api-key": key, "content-type": "application/json", **extra}
    return {name: value.encode() for name, value in headers.items()}


def check_answer(response: httpx.Response, body: bytes) -> None:
    """The promise for one request: no 5xx, and the right shape for what came back."""
    assert response.status_code < 500, (response.status_code, response.text[:500], body[:300])
    if response.status_code >= 400:
        payload = response.json()
        assert payload["type"] == "error", payload
        assert isinstance(payload["error"]["type"], str), payload
        assert isinstance(payload["error"]["message"], str), payload
        assert response.headers["request-id"] == payload["request_id"]
        return
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [line for line in response.text.split("\n") if line.startswith("event: ")]
        assert events[0] == "event: message_start", response.text[:500]
        assert events[-1] in ("event: message_stop", "event: error"), response.text[-500:]
        return
    payload = response.json()
    if "/count_tokens" in str(response.url):
        assert isinstance(payload["input_tokens"], int) and payload["input_tokens"] >= 0, payload
    else:
        assert payload["type"] == "message" and payload["role"] == "assistant", payload


@pytest.fixture
def fuzz(hostile):
    key = configure(hostile)
    client = httpx.Client(base_url=hostile.gateway.url, timeout=30)
    sent: list[str] = []

    def send(path: str, body: bytes, extra: dict[str, str]) -> None:
        response = client.post(path, content=body, headers=headers_bytes(key, extra))
        check_answer(response, body)
        if path == "/v1/messages":
            sent.append(response.headers["request-id"])

    yield send
    client.close()
    assert_healthy(hostile)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    records_for(broker, sent, within=60)  # one record per request, every one landed
    broker.close()


ENDPOINTS = [("/v1/messages", MessagesBody), ("/v1/messages/count_tokens", CountTokensBody)]


@pytest.mark.parametrize(("path", "schema"), ENDPOINTS, ids=["messages", "count_tokens"])
def test_valid_bodies_are_answered_without_a_server_error(fuzz, path, schema):
    @PROFILE
    @given(body=strategies.valid(schema, MODELS), headers=strategies.HEADERS)
    def check(body, headers):
        fuzz(path, json.dumps(body).encode(), headers)

    check()


@pytest.mark.parametrize(("path", "schema"), ENDPOINTS, ids=["messages", "count_tokens"])
def test_almost_valid_bodies_get_a_clear_4xx_never_a_5xx(fuzz, path, schema):
    @PROFILE
    @given(body=strategies.almost_valid(schema, MODELS), headers=strategies.HEADERS)
    def check(body, headers):
        fuzz(path, body, headers)

    check()


@pytest.mark.parametrize("path", [p for p, _ in ENDPOINTS], ids=["messages", "count_tokens"])
def test_garbage_gets_a_clear_4xx_never_a_5xx(fuzz, path):
    @PROFILE
    @given(body=strategies.garbage, headers=st.just({}))
    def check(body, headers):
        fuzz(path, body, headers)

    check()
