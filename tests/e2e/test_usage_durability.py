"""Nothing is lost: a real Celery worker stopped during a burst, the broker (a real Redis
server) restarted in the middle of one, killed without persistence under a backlog, or killed
while the worker holds batches it cannot finish; every request's record arrives exactly once.

The broker here is a Redis server of the test's own, so the suite's shared Redis is never
disturbed; the gateway's shared state (key cache, breakers) stays on the suite's Redis, which
is what lets requests be served while the broker is gone.
"""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import msgspec
import psycopg
import pytest
from django.db import connection

from gateway.celery import app as celery_app
from gateway.models import DailyUsage
from gateway.models import UsageRecord as UsageRow
from gateway.usage.record import UsageRecord
from gateway.usage.spool import pack, unpack
from gateway.usage.tasks import record_usage_batch
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


def test_a_backlog_survives_its_broker_killed_without_persistence(
    env, tmp_path, fake_upstream, transactional_db
):
    """The worker is stopped, 300 records wait in a Redis that keeps nothing on disk, Redis is
    SIGKILLed and restarted empty: the gateway still has them in its spool, and once records
    published after the restart land, it sends the lost ones again."""
    volatile = RedisServer(tmp_path / "volatile", persistent=False)
    (tmp_path / "volatile").mkdir()
    volatile.start()
    spool = tmp_path / "spool"
    gateway = LiveGateway(
        env={
            **env,
            "CELERY_BROKER_URL": volatile.url,
            "TOLLGATE_SPOOL_DIR": str(spool),
            "TOLLGATE_SPOOL_RETRY_SECONDS": "0.5",
            "TOLLGATE_USAGE_RESEND_SECONDS": "1",
            "TOLLGATE_ROUTES_CACHE_SECONDS": "0",
        }
    ).start()
    worker = CeleryWorker({**env, "CELERY_BROKER_URL": volatile.url}, tmp_path / "worker.log")
    try:
        fake_upstream.reset()
        stage = Stage(gateway, fake_upstream)
        client = stage.client(stage.one_route("openai", "gpt-volatile"))
        backlog = send(client, 300)
        deadline = time.monotonic() + 10
        while published(spool) < 300:  # all in the broker, and in the spool's `sent/`
            assert time.monotonic() < deadline, "the backlog never reached the broker"
            time.sleep(0.1)

        volatile.kill()
        volatile.start()
        assert volatile.queued() == 0  # the queue is gone with it
        worker.start()
        after = send(client, 10)  # traffic goes on; these land at once

        stored = landed(backlog + after, within=25)
        missing = set(backlog + after) - set(stored)
        assert not missing, (
            f"{len(missing)} of {len(backlog)} records lost\n{gateway.log()[-3000:]}"
        )
        assert DailyUsage.objects.get().requests == 310
        deadline = time.monotonic() + 10
        while list(spool.rglob("*.usage")):  # every spool file let go once its records landed
            assert time.monotonic() < deadline, list(spool.rglob("*"))
            time.sleep(0.2)
    finally:
        worker.stop()
        gateway.stop()
        volatile.stop()


def published(spool) -> int:
    """Records the gateway has handed to the broker and still keeps."""
    return sum(len(unpack(path.read_bytes())) for path in (spool / "sent").glob("*.usage"))


def usage_batch(tag: str, n: int) -> tuple[str, list[str]]:
    """A batch as the gateway queues it, and its request ids."""
    now = time.time()
    records = [
        UsageRecord(
            request_id=f"req_{tag}_{i}",
            started_at=now,
            finished_at=now,
            status="ok",
            http_status=200,
        )
        for i in range(n)
    ]
    frames = [msgspec.msgpack.encode(r) for r in records]
    return base64.b64encode(pack(frames)).decode(), [r.request_id for r in records]


def publish(url: str, payload: str) -> None:
    """Queue a batch on that broker (send_task: never run here, even if a test made Celery
    eager in this process)."""
    with celery_app.connection_for_write(url) as conn:
        celery_app.send_task(record_usage_batch.name, args=[payload], connection=conn)


def test_recording_resumes_after_redis_drops_while_the_worker_holds_batches(
    env, tmp_path, transactional_db
):
    """The usage table is locked, so the worker (prefork, as compose runs it) holds batches it
    cannot finish; Redis is killed and comes back. kombu may take the worker down while it puts
    them back; `python -m gateway.worker` starts it again and every record lands."""
    broker = RedisServer(tmp_path).start()  # append-only, fsync'd every second, as in compose
    worker_env = {
        **env,
        "CELERY_BROKER_URL": broker.url,
        "CELERY_VISIBILITY_TIMEOUT": "4",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    }
    worker = CeleryWorker(worker_env, tmp_path / "worker.log", pool=["--concurrency=2"]).start()
    held = []
    try:
        with usage_table_locked():
            for n in range(6):
                payload, ids = usage_batch(f"held{n}", 3)
                publish(broker.url, payload)
                held += ids
            deadline = time.monotonic() + 10
            while broker.unacknowledged() < 6:
                assert time.monotonic() < deadline, worker.log()
                time.sleep(0.1)
            time.sleep(1.5)  # the append-only file has them (fsync'd every second)

            broker.kill()
            time.sleep(1)
            broker.start()
        payload, after = usage_batch("after", 2)
        publish(broker.url, payload)

        stored = landed(held + after, within=25)
        missing = sorted(set(held + after) - set(stored))
        assert not missing, f"not recorded: {missing}\n{worker.log()}"
        assert worker.process.poll() is None  # still running (restarted, if it had to be)
    finally:
        worker.stop()
        broker.stop()


@contextmanager
def usage_table_locked():
    """A transaction of its own holds the usage table: every insert waits until it ends."""
    with psycopg.connect(**connection.get_connection_params()) as locker:
        locker.execute(f"LOCK TABLE {UsageRow._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            locker.rollback()
