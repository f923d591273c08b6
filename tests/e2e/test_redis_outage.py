"""Redis going away: requests are still served, a key revoked meanwhile stops working, and what
Redis held from before the outage is not trusted when it answers again. Redis restarting: the
connections it closed are replaced at once, so limits hold right after it is back.

The gateway's shared state lives in a Redis server of this module's own (the suite's is never
disturbed); stopping it refuses connections, SIGSTOP makes it hang without answering.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import anthropic
import httpx
import pytest
import redis
from django.conf import settings

from accounts import keys
from accounts.models import ApiKey
from accounts.services import api_key_revoke
from core import state
from tests.e2e.conftest import Stage
from tests.e2e.live import LiveGateway, gateway_env
from tests.e2e.processes import RedisServer

ASK = {"model": "claude-test", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("shared-state")).start()
    yield server
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)  # a test that failed while it was stopped
    server.stop()


@pytest.fixture(scope="module")
def gateway(django_db_setup, shared, tmp_path_factory):
    env = gateway_env(
        REDIS_URL=shared.url,
        CELERY_BROKER_URL=settings.REDIS_URL,  # usage records keep the suite's broker
        TOLLGATE_KEY_CACHE_SECONDS="0.2",
        TOLLGATE_ROUTES_CACHE_SECONDS="0",
        TOLLGATE_REDIS_TIMEOUT="0.3",
        TOLLGATE_SPOOL_DIR=str(tmp_path_factory.mktemp("spool")),
    )
    server = LiveGateway(env=env).start()
    yield server
    server.stop()


@pytest.fixture
def stage(gateway, shared, fake_upstream, transactional_db, settings):
    # This process's admin-side calls (config notices, key revocations) go to the same Redis.
    settings.REDIS_URL = shared.url
    state.sync_redis.cache_clear()
    fake_upstream.reset()
    yield Stage(gateway, fake_upstream)
    state.sync_redis.cache_clear()


def served(client: anthropic.Anthropic) -> None:
    assert client.messages.create(**ASK).content[0].type == "text"
    with client.messages.stream(**ASK) as stream:
        assert stream.get_final_message().stop_reason == "end_turn"


def refused(client: anthropic.Anthropic, within: float) -> anthropic.AuthenticationError:
    deadline = time.monotonic() + within
    while True:
        try:
            client.messages.create(**ASK)
        except anthropic.AuthenticationError as err:
            return err
        assert time.monotonic() < deadline, "the revoked key was still accepted"
        time.sleep(0.1)


def test_requests_are_served_while_redis_is_down_and_revocations_still_apply(stage, shared):
    secret = stage.one_route("openai", "gpt-outage")
    client = stage.client(secret)
    served(client)
    cached = redis.Redis.from_url(shared.url)
    entry = keys.redis_key(keys.hash_secret(secret))
    assert cached.exists(entry)  # the shared key cache is in use

    shared.stop()
    for _ in range(3):
        served(client)  # key from the database, routes as last loaded, breakers local
        time.sleep(0.3)  # past the key cache: each round asks Redis (or backs off) anew

    api_key_revoke(key=ApiKey.objects.get(secret_hash=keys.hash_secret(secret)))  # delete fails
    assert "revoked" in str(refused(client, within=2).message)

    shared.start()  # the same data: the entry saying the key is valid is still there
    assert cached.exists(entry)
    refused(client, within=0)  # not trusted: the gateway drops what it cached before the outage
    served(stage.client(stage.tenant_key("acme")))  # and Redis is in use again

    metrics = httpx.get(stage.gateway.url + "/metrics").text
    failed_calls = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("tollgate_shared_state_errors_total{")
    )
    assert failed_calls >= 1  # operators see the outage in /metrics


def test_a_redis_that_hangs_delays_requests_by_its_timeout_only(stage, shared):
    client = stage.client(stage.one_route("anthropic", "claude-upstream-outage"))
    served(client)

    shared.process.send_signal(signal.SIGSTOP)
    try:
        for _ in range(3):
            began = time.monotonic()
            served(client)
            assert time.monotonic() - began < 2.0  # TOLLGATE_REDIS_TIMEOUT is 0.3 s
            time.sleep(0.3)
    finally:
        shared.process.send_signal(signal.SIGCONT)
    served(client)


async def _fire(url: str, key: str, count: int, concurrency: int) -> list[httpx.Response]:
    """`count` requests, `concurrency` at a time (each one a gateway request and Redis call)."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one() -> httpx.Response:
            async with gate:
                return await client.post("/v1/messages", json=ASK, headers={"x-api-key": key})

        return list(await asyncio.gather(*(one() for _ in range(count))))


def fire(stage: Stage, key: str, count: int, concurrency: int = 20) -> list[httpx.Response]:
    return asyncio.run(_fire(stage.gateway.url, key, count, concurrency))


def counted(responses: list[httpx.Response]) -> int:
    """Admissions, each checked that Redis counted it (fail-open ones carry no limit headers)."""
    admitted = [r for r in responses if r.status_code == 200]
    assert all("anthropic-ratelimit-requests-limit" in r.headers for r in admitted) or all(
        "anthropic-ratelimit-tokens-limit" in r.headers for r in admitted
    )
    return len(admitted)


@pytest.fixture
def steady(stage):
    """The gateway out of the backoff an earlier test's outage may have left it in (requests
    admitted then, unlimited, would not count against the limits these tests measure)."""
    time.sleep(state.OUTAGE_BACKOFF_SECONDS + 0.2)


def restart(server: RedisServer, down: float) -> None:
    """A short restart: stopped (its append-only file keeps the limits), down for `down` s."""
    server.stop()
    time.sleep(down)
    server.start()


def tokens_of(responses: list[httpx.Response]) -> int:
    """What the admitted requests used, as a tokens-per-minute limit counts it."""
    used = [r.json()["usage"] for r in responses if r.status_code == 200]
    return sum(u["input_tokens"] + u["output_tokens"] for u in used)


@pytest.mark.usefixtures("steady")
def test_after_a_short_redis_restart_an_rpm_key_admits_no_more_than_its_limit(stage, shared):
    stage.one_route("openai", "gpt-restart-rpm")
    key = stage.tenant_key("acme", rpm=50)
    began = time.monotonic()
    before = fire(stage, key, 60)  # spends the minute's 50, over 20 pooled Redis connections
    assert counted(before) >= 50  # 51 if it took over 1.2 s

    restart(shared, down=0.8)
    after = fire(stage, key, 200)

    # GCRA refills 50 a minute: whatever came back since the first burst, and nothing more.
    refilled = 1 + int((time.monotonic() - began) * 50 / 60)
    admitted = sum(r.status_code == 200 for r in after)
    assert admitted <= refilled, f"{admitted} of 200 admitted after the restart"
    assert {r.status_code for r in after} <= {200, 429}


@pytest.mark.usefixtures("steady")
def test_after_a_short_redis_restart_a_tpm_key_admits_no_more_than_its_limit(stage, shared):
    stage.one_route("openai", "gpt-restart-tpm")
    key = stage.tenant_key("acme", tpm=3_000)
    began = time.monotonic()
    before = fire(stage, key, 150)
    assert counted(before) and any(r.status_code == 429 for r in before)  # the minute is spent

    restart(shared, down=0.6)
    after = fire(stage, key, 200)

    # Requests in flight together may pass the limit by one reservation: about 120 tokens here
    # (the bound of a ~100-byte body, and max_tokens 20), rounded up to 1,000.
    refilled = (time.monotonic() - began) * 3_000 / 60
    used = tokens_of(before) + tokens_of(after)
    assert used <= 3_000 + refilled + 1_000, f"{used} tokens used against a limit of 3,000"


class Load:
    """`workers` clients sending one request after another until stopped: (sent at, status)."""

    def __init__(self, stage: Stage, key: str, workers: int = 8):
        self.stop = threading.Event()
        self.seen: list[tuple[float, int]] = []
        self.threads = [
            threading.Thread(target=self._run, args=(stage.gateway.url, key))
            for _ in range(workers)
        ]

    def _run(self, url: str, key: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                answer = client.post("/v1/messages", json=ASK, headers={"x-api-key": key})
                self.seen.append((sent, answer.status_code))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


@pytest.mark.usefixtures("steady")
def test_under_load_through_a_restart_limits_hold_again_once_redis_is_back(stage, shared):
    stage.one_route("openai", "gpt-restart-load")
    key = stage.tenant_key("acme", rpm=50)
    began = time.monotonic()
    assert counted(fire(stage, key, 60)) >= 50

    with Load(stage, key) as load:
        time.sleep(1.0)
        restart(shared, down=0.8)  # meanwhile requests are served without limits (fail open)
        back = time.monotonic()
        time.sleep(4.0)

    # A process that saw Redis fail leaves it alone for a second (OUTAGE_BACKOFF_SECONDS).
    settled = back + state.OUTAGE_BACKOFF_SECONDS + 0.5
    after = [status for sent, status in load.seen if sent >= settled]
    refilled = 1 + int((time.monotonic() - began) * 50 / 60)
    assert len(after) > 50  # the load went on
    assert set(after) <= {200, 429} and after.count(200) <= refilled, after.count(200)
