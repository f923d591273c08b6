"""Failed authentications against the real Redis and database: limited per client address,
shared by replicas, counted in /metrics, and never a database query past the limit."""

from __future__ import annotations

import secrets

import pytest
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from accounts import auth_failures, keys
from core import state
from core.errors import AuthenticationFailed, RateLimited
from tests.factories import make_key
from tests.integration.limited_calls import fresh_redis_clients, short_lived_connections
from tests.integration.test_shared_state_outage import UNREACHABLE

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT = 5


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.TOLLGATE = {**settings.TOLLGATE, "AUTH_FAILURES_PER_MINUTE": LIMIT}
    fresh_redis_clients()
    auth_failures._local.clear()
    with short_lived_connections():
        yield
    fresh_redis_clients()
    auth_failures._local.clear()


@pytest.fixture
def queries(monkeypatch) -> list[str]:
    """Secret hashes the database was asked about."""
    asked: list[str] = []
    real = keys._load

    async def counting(secret_hash: str):
        asked.append(secret_hash)
        return await real(secret_hash)

    monkeypatch.setattr(keys, "_load", counting)
    return asked


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("tollgate_auth_failures_total", {"reason": reason}) or 0.0


def guess() -> str:
    """A key nobody has, never guessed before (Redis remembers unknown keys for a while)."""
    return "tg_" + secrets.token_urlsafe(30)[:40]


async def refused(secret: str, origin) -> AuthenticationFailed | RateLimited:
    try:
        await keys.authenticate(secret, origin)
    except (AuthenticationFailed, RateLimited) as err:
        return err
    raise AssertionError("accepted")


async def test_past_the_limit_an_address_gets_429_with_retry_after_and_others_still_401():
    origin = ("198.51.100.10", None)
    limited_before = failures("limited")

    first = [await refused(guess(), origin) for _ in range(LIMIT)]
    over = await refused(guess(), origin)
    elsewhere = await refused(guess(), ("198.51.100.11", None))

    assert all(isinstance(err, AuthenticationFailed) for err in first)
    assert isinstance(over, RateLimited) and over.status == 429 and over.type == "rate_limit_error"
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert "too many failed authentications" in over.message
    assert isinstance(elsewhere, AuthenticationFailed)
    assert failures("limited") == limited_before + 1


async def test_past_the_limit_an_unknown_key_costs_no_database_query(queries):
    origin = ("198.51.100.12", None)
    for _ in range(LIMIT):
        await refused(guess(), origin)
    asked = len(queries)

    for _ in range(100, 150):
        assert isinstance(await refused(guess(), origin), RateLimited)

    assert len(queries) == asked == LIMIT


async def test_a_key_in_use_still_works_from_a_limited_address(queries):
    _, secret = await sync_to_async(make_key)()
    await keys.authenticate(secret)  # in use: in the shared key cache
    keys._process_cache.clear()  # and this replica has not seen it yet
    origin = ("198.51.100.13", None)
    for _ in range(LIMIT + 3):
        await refused(guess(), origin)

    info = await keys.authenticate(secret, origin)

    assert info.prefix == secret[:11]


async def test_replicas_share_the_count_through_redis():
    origin = ("198.51.100.14", None)
    for _ in range(LIMIT):
        await refused(guess(), origin)
    fresh_redis_clients()  # another "replica", with its own connections
    keys._process_cache.clear()

    assert isinstance(await refused(guess(), origin), RateLimited)


async def test_a_missing_key_is_counted_in_metrics_but_never_limited():
    origin = ("198.51.100.15", None)
    missing_before = failures("missing")

    answers = [await refused("", origin) for _ in range(LIMIT * 3)]

    assert all(isinstance(err, AuthenticationFailed) for err in answers)
    assert failures("missing") == missing_before + LIMIT * 3


async def test_each_reason_is_counted_in_metrics(queries):
    key, secret = await sync_to_async(make_key)()
    await sync_to_async(key.tenant.__class__.objects.filter(pk=key.tenant_id).update)(
        is_active=False
    )
    unknown, disabled = failures("unknown"), failures("tenant_disabled")

    await refused(guess(), ("198.51.100.16", None))
    await refused(secret, ("198.51.100.16", None))

    assert failures("unknown") == unknown + 1 and failures("tenant_disabled") == disabled + 1


async def test_a_repeated_unknown_key_is_asked_of_the_database_once(queries):
    wrong = guess()
    for _ in range(3):
        await refused(wrong, ("198.51.100.17", None))
        keys._process_cache.clear()  # the shared cache remembers it too

    assert queries == [keys.hash_secret(wrong)]


async def test_while_redis_is_away_each_process_still_limits_alone(settings, queries):
    settings.REDIS_URL = UNREACHABLE
    fresh_redis_clients()
    origin = ("198.51.100.18", None)

    answers = [await refused(guess(), origin) for _ in range(LIMIT + 20)]

    assert [type(a) for a in answers] == [AuthenticationFailed] * LIMIT + [RateLimited] * 20
    assert len(queries) == LIMIT
    state._Outage.until = 0.0


async def test_random_keys_keep_the_process_cache_within_its_bound(settings):
    settings.TOLLGATE = {**settings.TOLLGATE, "KEY_CACHE_SIZE": 50}

    for _ in range(300):
        await refused(guess(), None)  # an in-process caller: counted, never limited

    assert len(keys._process_cache) == 50


def test_the_rest_api_limits_failed_keys_per_address_too():
    api = APIClient(REMOTE_ADDR="198.51.100.30")
    statuses = []
    for _ in range(LIMIT + 2):
        api.credentials(HTTP_X_API_KEY=guess())
        statuses.append(api.get("/api/v1/keys"))
    other = APIClient(REMOTE_ADDR="198.51.100.31")
    other.credentials(HTTP_X_API_KEY=guess())

    assert [s.status_code for s in statuses] == [401] * LIMIT + [429] * 2
    assert 1 <= int(statuses[-1]["Retry-After"]) <= 60
    assert "too many failed authentications" in statuses[-1].json()["detail"]
    assert other.get("/api/v1/keys").status_code == 401


async def test_without_redis_random_keys_leave_nothing_in_the_in_process_store(settings):
    settings.REDIS_URL = ""  # the quick start: shared state in process memory
    store = state.local_store()
    before = len(store._data)

    for _ in range(200):
        await refused(guess(), None)

    assert len(store._data) == before
    assert isinstance(await refused(guess(), ("198.51.100.40", None)), AuthenticationFailed)
