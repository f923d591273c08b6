"""Keys, limits and departures, tried as a hostile client would, on both servers.

Random keys from one address (issue 12, point 7): 401 up to the address's limit of failed
authentications, then 429 with `retry-after`, no usage record and no database query for any of
them, while a key in use keeps working from the same address. Prompts crafted to fool the
token estimate, 100 at once (point 13): a budget is passed by one request's reservation at
most. A client that leaves a JSON request before its answer (point 14): the upstream call is
cut and nothing else is tried.

These gateways keep the production defaults for failed authentications (30 a minute, no
X-Forwarded-For trusted); every test client is 127.0.0.1, so each test starts the address's
count afresh.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from decimal import Decimal

import httpx
import pytest
import redis
from django.conf import settings

from gateway.models import UsageRecord as UsageRow
from tests.e2e.conftest import Stage
from tests.e2e.crafted import crafted_flood, crafted_request
from tests.e2e.usage import records_for
from tests.hostile.conftest import SERVERS, assert_error_shape, assert_healthy, start_gateway

LIMIT = 30  # TOLLGATE_AUTH_FAILURES_PER_MINUTE's default
ASK = {"model": "claude-test", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module", params=SERVERS)
def guarded_gateway(request, django_db_setup, tmp_path_factory):
    server = start_gateway(
        request.param, tmp_path_factory, TOLLGATE_AUTH_FAILURES_PER_MINUTE=str(LIMIT)
    )
    yield server
    server.stop()


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def guarded(guarded_gateway, hostile_upstream, transactional_db, broker) -> Stage:
    """A stage on one of the two servers; the loopback address starts a fresh minute."""
    hostile_upstream.reset()
    if time.time() % 60 > 50:  # no minute ends during the test
        time.sleep(61 - time.time() % 60)
    for name in broker.scan_iter("tg:authfail:*"):
        broker.delete(name)
    return Stage(guarded_gateway, hostile_upstream)


async def _flood(url: str, count: int, headers) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        answers = []
        for n in range(count):  # one after the other: the order of 401s and 429s is exact
            answers.append(await client.post("/v1/messages", json=ASK, headers=headers(n)))
        return answers


def flood(stage: Stage, count: int, headers) -> list[httpx.Response]:
    return asyncio.run(_flood(stage.gateway.url, count, headers))


def post(stage: Stage, key: str) -> httpx.Response:
    return httpx.post(
        stage.gateway.url + "/v1/messages", json=ASK, headers={"x-api-key": key}, timeout=10
    )


def random_key(_: int = 0) -> dict[str, str]:
    return {"x-api-key": "tg_" + secrets.token_urlsafe(30)[:40]}


def metric(stage: Stage, reason: str) -> float:
    text = httpx.get(stage.gateway.url + "/metrics", timeout=5).text
    line = f'tollgate_auth_failures_total{{reason="{reason}"}} '
    return sum(float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line))


def test_random_keys_get_401_up_to_the_address_limit_then_429_and_no_usage_record(guarded, broker):
    key = guarded.one_route("openai", "gpt-guarded")
    first = post(guarded, key)  # the tenant's key is in use before the flood
    limited_before = metric(guarded, "limited")

    answers = flood(guarded, 100, random_key)

    assert [a.status_code for a in answers] == [401] * LIMIT + [429] * (100 - LIMIT)
    assert_error_shape(answers[0], 401, "authentication_error")
    error = assert_error_shape(answers[-1], 429, "rate_limit_error")
    assert "too many failed authentications" in error["message"]
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert metric(guarded, "limited") - limited_before == 100 - LIMIT
    served = post(guarded, key)
    assert served.status_code == 200  # a key in use is still served from that address
    records_for(broker, [first.headers["request-id"], served.headers["request-id"]])
    assert UsageRow.objects.filter(api_key__prefix=key[:11]).count() == 2
    assert not UsageRow.objects.filter(http_status__in=(401, 429)).exists()  # refusals: none
    assert_healthy(guarded)


def test_x_forwarded_for_does_not_give_a_limited_client_new_addresses(guarded):
    guarded.one_route("openai", "gpt-guarded-xff")

    def spoofed(n: int) -> dict[str, str]:
        return {**random_key(), "x-forwarded-for": f"198.51.100.{n % 250}"}

    answers = flood(guarded, LIMIT + 10, spoofed)

    assert [a.status_code for a in answers] == [401] * LIMIT + [429] * 10


def test_a_valid_key_first_used_from_a_limited_address_waits_for_the_minute(guarded):
    guarded.one_route("openai", "gpt-guarded-cold")
    cold = guarded.tenant_key("acme")  # never used: no cache can vouch for it
    flood(guarded, LIMIT, random_key)

    answer = post(guarded, cold)

    assert_error_shape(answer, 429, "rate_limit_error")
    assert 1 <= int(answer.headers["retry-after"]) <= 60


def test_a_missing_key_is_always_a_401_never_limited(guarded):
    guarded.one_route("openai", "gpt-guarded-missing")
    missing_before = metric(guarded, "missing")

    answers = flood(guarded, LIMIT * 2, lambda n: {})

    assert {a.status_code for a in answers} == {401}
    assert metric(guarded, "missing") - missing_before == LIMIT * 2


def test_prompts_crafted_against_the_estimate_overspend_a_budget_by_one_reservation_at_most(
    guarded,
):
    guarded.one_route("anthropic", "claude-crafted")
    key = guarded.tenant_key("acme", budget_usd="0.50", budget_period="daily")
    _, _, bound = crafted_request()
    one_reservation = (bound * Decimal("3.75") + 1_000 * Decimal(15)) / 1_000_000

    used = crafted_flood(guarded, key, "claude-crafted")

    spent = sum(u["input_tokens"] * 3 + u["output_tokens"] * 15 for u in used) / Decimal(10**6)
    assert used and spent <= Decimal("0.50") + one_reservation, f"${spent} of a $0.50 budget"
    assert_healthy(guarded)


def test_a_client_that_leaves_a_json_request_cuts_the_upstream_call_and_its_fallback(guarded):
    provider = guarded.provider("openai")
    routes = [
        {"provider": provider["name"], "upstream_model": "gpt-left", "priority": 1},
        {"provider": provider["name"], "upstream_model": "gpt-left-fallback", "priority": 2},
    ]
    guarded.apply(
        providers=[provider],
        models=[guarded.model("claude-test", routes)],
        tenants=[{"name": "acme"}],
    )
    key = guarded.tenant_key("acme")
    guarded.upstream.script("gpt-left", *[{"status": 503, "delay_first_byte": 3.0}] * 2)

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            guarded.gateway.url + "/v1/messages",
            json=ASK,
            headers={"x-api-key": key},
            timeout=httpx.Timeout(10, read=0.5),
        )

    deadline = time.monotonic() + 2
    while not guarded.upstream.requests("gpt-left")[-1]["disconnected"]:
        assert time.monotonic() < deadline, "the upstream call went on after the client left"
        time.sleep(0.05)
    time.sleep(1.0)  # a retry or a fallback would have started by now
    assert len(guarded.upstream.requests("gpt-left")) == 1
    assert guarded.upstream.requests("gpt-left-fallback") == []
    assert_healthy(guarded)
