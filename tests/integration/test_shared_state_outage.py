"""Without Redis each process keeps the same rules alone: breakers open locally, limits are
not enforced, the routing table is reread from the database (served requests: see
tests/e2e/test_redis_outage.py)."""

from __future__ import annotations

import pytest
import redis

from accounts.keys import Limits
from core import state
from gateway import limits
from providers import breaker, routing
from tests.integration.limited_calls import (
    call_for,
    fresh_redis_clients,
    key_info,
    short_lived_connections,
)

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused


@pytest.fixture
def redis_away(settings):
    """Redis refuses connections for the test; yields the suite's Redis URL."""
    suite = settings.REDIS_URL
    settings.REDIS_URL = UNREACHABLE
    settings.TOLLGATE = {**settings.TOLLGATE, "BREAKER_FAILURES": 3, "BREAKER_COOLDOWN": 30.0}
    fresh_redis_clients()
    yield suite
    fresh_redis_clients()


async def test_a_failing_route_still_opens_its_breaker_in_this_process(redis_away):
    assert await breaker.allow(424201)

    for _ in range(3):
        await breaker.record(424201, ok=False, latency_ms=5.0)

    assert not await breaker.allow(424201)
    assert await breaker.allow(424202)  # other routes are untouched
    assert state.redis_down()


async def test_a_success_closes_a_local_streak(redis_away):
    for _ in range(2):
        await breaker.record(424203, ok=False, latency_ms=5.0)
    await breaker.record(424203, ok=True, latency_ms=5.0)
    await breaker.record(424203, ok=False, latency_ms=5.0)

    assert await breaker.allow(424203)  # 1 failure since the success, not 3


async def test_latency_sorting_has_no_figures_rather_than_failing(redis_away):
    assert await breaker.latencies([424204, 424205]) == {}


@pytest.mark.django_db
async def test_the_routing_table_comes_from_the_database_and_is_reread_when_redis_returns(
    redis_away, settings
):
    with short_lived_connections():
        offline = await routing.current()
        assert offline.version == routing._OFFLINE  # a version Redis never holds

        settings.REDIS_URL = redis_away  # Redis answers again
        fresh_redis_clients()
        state._Outage.until = 0.0
        routing._Cache.checked_at = 0.0
        online = await routing.current()

    assert online is not offline and online.version != routing._OFFLINE


async def test_limits_let_requests_through_rather_than_fail_them(redis_away):
    info = key_info(key=Limits(rpm=1))

    assert await limits.admit(call_for(info)) is None  # Redis refused: not enforced
    assert await limits.admit(call_for(info)) is None  # backing off: Redis not even asked
    assert state.redis_down()


async def test_a_connection_redis_closed_is_replaced_at_once_without_an_outage(settings):
    """What a Redis restart leaves in the pool: connections the server closed. The call that
    meets one is retried on a fresh connection; the process does not go into outage mode."""
    fresh_redis_clients()
    store = state.async_store()
    await store.set("tg:test:reconnect", b"1", ex=60)  # the pool now holds one connection
    redis.Redis.from_url(settings.REDIS_URL).client_kill_filter(_id=await store.client_id())
    outages = state.outages()

    found, value = await state.shared("test", lambda: store.get("tg:test:reconnect"))

    assert (found, value) == (True, b"1")
    assert state.outages() == outages and not state.redis_down()
