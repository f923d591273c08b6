"""Nothing is lost: a real Celery worker stopped during a burst, and the broker (a real Redis
server) restarted in the middle of one; every request's record arrives exactly once.

The broker here is a Redis server of the test's own, so the suite's shared Redis is never
disturbed; the gateway's shared state (key cache, breakers) stays on the suite's Redis, which
is what lets requests be served while the broker is gone.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import msgspec
import pytest

from gateway.models import DailyUsage
from gateway.models import UsageRecord as UsageRow
from gateway.usage.record import UsageRecord
from gateway.usage.spool import unpack
from tests.e2e.conftest import Stage
from tests.e2e.live import LiveGateway, free_port, gateway_env
from tests.e2e.processes import CeleryWorker, RedisServer
from tests.factories import make_key

ASK = {"model": "claude-test", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("broker")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(django_db_setup, broker) -> dict[str, str]:
    return gateway_env(CELERY_BROKER_URL=broker.url, CELERY_VISIBILITY_TIMEOUT="10")


@pytest.fixture(scope="module")
def spool(tmp_path_factory):
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def gateway(env, spool):
    extra = {"TOLLGATE_SPOOL_DIR": str(spool), "TOLLGATE_SPOOL_RETRY_SECONDS": "0.5"}
    server = LiveGateway(env={**env, **extra, "TOLLGATE_ROUTES_CACHE_SECONDS": "0"}).start()
    yield server
    server.stop()


@pytest.fixture
def worker(env, tmp_path):
    process = CeleryWorker(env, tmp_path / "worker.log")
    yield process
    process.stop()


@pytest.fixture
def client(gateway, fake_upstream, transactional_db):
    fake_upstream.reset()
    stage = Stage(gateway, fake_upstream)
    return stage.client(stage.one_route("openai", "gpt-durable"))


def send(client, n: int) -> list[str]:
    """n requests, four at a time; every one must be served. Returns their request ids."""

    def one(_):
        raw = client.messages.with_raw_response.create(**ASK)
        assert raw.status_code == 200
        return raw.headers["request-id"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def landed(request_ids: list[str], within: float) -> list[str]:
    """Wait for the worker to store every record; returns the stored request ids."""
    deadline = time.monotonic() + within
    while True:
        stored = list(
            UsageRow.objects.filter(request_id__in=request_ids).values_list("request_id", flat=True)
        )
        if len(stored) >= len(request_ids) or time.monotonic() > deadline:
            return stored
        time.sleep(0.1)


def test_records_wait_for_a_stopped_worker_and_land_exactly_once(client, worker, broker):
    worker.start()
    before = send(client, 10)
    assert len(landed(before, within=10)) == 10
    worker.stop()

    during = send(client, 30)  # served with the worker gone
    time.sleep(0.5)
    assert broker.queued() > 0 and not UsageRow.objects.filter(request_id__in=during).exists()
    worker.start()

    stored = landed(before + during, within=15)
    assert sorted(stored) == sorted(before + during)  # each once (request_id is unique)
    daily = DailyUsage.objects.get()
    assert daily.requests == 40 and daily.cost_usd > 0


def test_records_survive_a_broker_restart_in_the_middle_of_a_burst(client, worker, broker, spool):
    worker.start()
    sent: list[str] = []
    stop = threading.Event()

    def burst():
        while not stop.is_set():
            sent.extend(send(client, 4))
            time.sleep(0.02)

    sender = threading.Thread(target=burst)
    sender.start()
    try:
        while len(sent) < 20:
            time.sleep(0.02)
        broker.stop()
        down_at = len(sent)
        time.sleep(1.0)  # requests go on while the broker is gone...
        assert len(sent) > down_at  # ...and are served
        assert list(spool.glob("*.usage"))  # their records wait on disk
        broker.start()
        restarted_at = len(sent)
        while len(sent) < restarted_at + 20:
            time.sleep(0.02)
    finally:
        stop.set()
        sender.join(30)

    stored = landed(sent, within=20)
    missing = set(sent) - set(stored)
    assert not missing, f"{len(missing)} of {len(sent)} records lost\n{worker.log()}"
    assert len(stored) == len(sent) == len(set(sent))
    assert DailyUsage.objects.get().requests == len(sent)
    assert not list(spool.glob("*.usage"))


def test_records_still_buffered_at_shutdown_are_spooled_on_exit(env, tmp_path, transactional_db):
    """SIGTERM with a record in the buffer and no broker: the exit flush puts it on disk."""
    spooled = tmp_path / "spool"
    unreachable = {
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "TOLLGATE_SPOOL_DIR": str(spooled),
        "TOLLGATE_USAGE_FLUSH_SECONDS": "60",  # only the exit flush can save it
    }
    _, secret = make_key()  # a request that never authenticated leaves no record
    gateway = LiveGateway(env={**env, **unreachable}).start()
    try:
        response = httpx.post(
            gateway.url + "/v1/messages",
            json={**ASK, "model": "no-such-model"},
            headers={"x-api-key": secret},
        )
        assert response.status_code == 404
    finally:
        gateway.stop()

    assert gateway.process.returncode == 0
    files = list(spooled.glob("*.usage"))
    assert len(files) == 1, gateway.log()[-2000:]
    records = [msgspec.msgpack.decode(f, type=UsageRecord) for f in unpack(files[0].read_bytes())]
    assert [r.request_id for r in records] == [response.headers["request-id"]]
    assert records[0].http_status == 404
