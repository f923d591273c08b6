"""Redis going away: requests are still served, a key revoked meanwhile stops working, and what
Redis held from before the outage is not trusted when it answers again.

The gateway's shared state lives in a Redis server of this module's own (the suite's is never
disturbed); stopping it refuses connections, SIGSTOP makes it hang without answering.
"""

from __future__ import annotations

import signal
import time

import anthropic
import httpx
import pytest
import redis
from django.conf import settings

from accounts import keys
from accounts.models import ApiKey
from accounts.services import api_key_revoke
from gateway import state
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
