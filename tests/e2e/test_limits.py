"""Rate limits, budgets and key rotation as a client sees them, through the official SDK."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import anthropic
import httpx
import pytest

from accounts.selectors import api_key_find
from accounts.services import api_key_rotate
from core import state
from gateway.limits import budgets
from tests.e2e.crafted import crafted_flood, crafted_request

ASK = {"model": "claude-test", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def reset_time(value: str) -> datetime:
    """Reset headers are RFC 3339 (UTC, whole seconds)."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_over_the_rate_limit_is_a_429_with_retry_after_and_the_limit_headers(stage):
    stage.one_route("openai", "gpt-rpm")
    client = stage.client(stage.tenant_key("acme", rpm=2))
    client.messages.create(**ASK)
    client.messages.create(**ASK)

    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(**ASK)

    caught = refused.value
    headers = caught.response.headers
    assert caught.status_code == 429 and caught.body["error"]["type"] == "rate_limit_error"
    assert "limit is 2 requests per minute" in caught.body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 30
    assert headers["anthropic-ratelimit-requests-limit"] == "2"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert reset_time(headers["anthropic-ratelimit-requests-reset"]) > datetime.now(UTC)
    assert headers["x-should-retry"] == "true"
    assert len(stage.upstream.requests("gpt-rpm")) == 2


def test_requests_under_the_limits_carry_the_headers_json_and_streaming(stage):
    stage.one_route("openai", "gpt-headers")
    key = stage.tenant_key("acme", rpm=10, tpm=100_000)
    client = stage.client(key)

    raw = client.messages.with_raw_response.create(**ASK)
    with client.messages.stream(**ASK) as stream:
        stream.get_final_message()
        streamed = stream.response.headers

    assert raw.headers["anthropic-ratelimit-requests-limit"] == "10"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "9"
    assert streamed["anthropic-ratelimit-requests-remaining"] == "8"
    assert raw.headers["anthropic-ratelimit-tokens-limit"] == "100000"
    assert 99_000 < int(raw.headers["anthropic-ratelimit-tokens-remaining"]) < 100_000
    for headers in (raw.headers, streamed):
        for kind in ("requests", "tokens"):
            wait = reset_time(headers[f"anthropic-ratelimit-{kind}-reset"]) - datetime.now(UTC)
            assert -1 <= wait.total_seconds() <= 60  # full again within the minute


def test_a_key_without_limits_gets_no_rate_limit_headers(stage):
    client = stage.client(stage.one_route("openai", "gpt-free"))

    raw = client.messages.with_raw_response.create(**ASK)

    assert not [h for h in raw.headers if h.startswith("anthropic-ratelimit-")]


def test_a_tenant_limit_from_gateway_apply_is_shared_by_its_keys(stage):
    provider = stage.provider("openai")
    route = [{"provider": provider["name"], "upstream_model": "gpt-tenant"}]
    stage.apply(
        providers=[provider],
        models=[stage.model("claude-test", route)],
        tenants=[{"name": "acme", "rpm": 3}],
    )
    clients = [stage.client(stage.tenant_key("acme")) for _ in range(2)]

    outcomes = []
    for n in range(5):
        try:
            clients[n % 2].messages.create(**ASK)
            outcomes.append("ok")
        except anthropic.RateLimitError as refused:
            assert "the tenant's limit is 3 requests per minute" in refused.message
            outcomes.append("429")

    assert outcomes == ["ok", "ok", "ok", "429", "429"]


def test_over_budget_is_a_402_naming_the_budget_and_its_reset(stage):
    stage.one_route("openai", "gpt-budget")
    client = stage.client(stage.tenant_key("acme", budget_usd="0.01", budget_period="daily"))
    client.messages.create(**ASK)  # worst case 50 * $15 per M: fits

    response = httpx.post(
        stage.gateway.url + "/v1/messages",
        json={**ASK, "max_tokens": 1000},  # worst case $0.015 > $0.01
        headers={"x-api-key": client.api_key},
        timeout=10,
    )

    assert response.status_code == 402
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["type"] == "billing_error"
    tomorrow = datetime.now(UTC).date().toordinal() + 1
    resets = datetime.fromordinal(tomorrow).strftime("%Y-%m-%dT00:00:00Z")
    assert error["message"].startswith(
        "API key budget exceeded: the API key's daily budget of $0.01"
    )
    assert error["message"].endswith(f"The budget resets at {resets}.")
    assert len(stage.upstream.requests("gpt-budget")) == 1
    with pytest.raises(anthropic.APIStatusError) as refused:
        client.messages.create(**{**ASK, "max_tokens": 1000})
    assert refused.value.status_code == 402


def test_a_rotated_key_works_with_both_secrets_until_the_grace_ends(stage):
    stage.one_route("openai", "gpt-rotate")
    old = stage.tenant_key("acme")
    new = api_key_rotate(key=api_key_find(ref=old), grace_seconds=3600)

    for secret in (old, new):
        assert stage.client(secret).messages.create(**ASK).content[0].text == "echo: hi"

    newest = api_key_rotate(key=api_key_find(ref=new), grace_seconds=0)  # and now no grace
    retired_at = time.monotonic()
    while True:  # like a revocation: within the key cache's few seconds, on every replica
        try:
            stage.client(new).messages.create(**ASK)
        except anthropic.AuthenticationError as refused:
            assert "rotated" in refused.message
            break
        assert time.monotonic() - retired_at < 5, "a secret retired by rotation still works"
        time.sleep(0.2)
    with pytest.raises(anthropic.AuthenticationError):
        stage.client(old).messages.create(**ASK)
    assert stage.client(newest).messages.create(**ASK).content[0].text == "echo: hi"


# --- Reservations a tenant cannot game ----------------------------------------------------------
def test_crafted_prompts_in_flight_together_overspend_a_budget_by_one_reservation_at_most(stage):
    stage.one_route("anthropic", "claude-crafted-budget")
    key = stage.tenant_key("acme", budget_usd="1.00", budget_period="daily")
    _, exact, bound = crafted_request()
    worst = (bound * Decimal("3.75") + 1_000 * Decimal(15)) / 1_000_000  # one reservation

    used = crafted_flood(stage, key, "claude-crafted-budget")

    cost = sum(u["input_tokens"] * Decimal(3) + u["output_tokens"] * Decimal(15) for u in used)
    spent = cost / 1_000_000
    assert used and all(u["input_tokens"] == exact for u in used)
    assert spent <= Decimal("1.00") + worst, f"${spent} spent of a $1.00 budget"
    api_key = api_key_find(ref=key)
    period = budgets.period_of("daily", datetime.now(UTC).date())
    held = state.sync_redis().hgetall(budgets.budget_key("key", api_key.pk, period))
    assert int(held[b"reserved"]) == 0  # every reservation settled to the real cost
    assert int(held[b"pending"]) == int(spent * 1_000_000_000)


def test_crafted_prompts_in_flight_together_pass_a_tpm_limit_by_one_reservation_at_most(stage):
    stage.one_route("anthropic", "claude-crafted-tpm")
    key = stage.tenant_key("acme", tpm=200_000)
    _, _, bound = crafted_request()

    used = crafted_flood(stage, key, "claude-crafted-tpm")

    total = sum(u["input_tokens"] + u["output_tokens"] for u in used)
    assert used and total <= 200_000 + bound + 1_000, f"{total} tokens used of 200,000"
