"""The recorder: one non-blocking hand-off, on disk within a tick, sent when Celery takes it."""

import asyncio
import threading
import time

import msgspec
import pytest
from channels.db import database_sync_to_async

from gateway.celery import app as celery_app
from gateway.models import UsageRecord as UsageRow
from gateway.usage import recorder as recorder_module
from gateway.usage.record import UsageRecord
from gateway.usage.recorder import Recorder
from gateway.usage.spool import Spool, unpack
from tests.integration.limited_calls import short_lived_connections


def usage(n: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"req_recorder_{n}_{time.time_ns()}",
        started_at=time.time(),
        finished_at=time.time(),
        status="ok",
        http_status=200,
    )


class Broker:
    """Stands in for Celery: takes batches, or refuses, or hangs until released."""

    def __init__(self):
        self.batches: list[list[UsageRecord]] = []
        self.down = False
        self.gate = threading.Event()
        self.gate.set()

    def publish(self, batch: bytes) -> None:
        self.gate.wait(10)
        if self.down:
            raise ConnectionError("broker unreachable")
        self.batches.append([msgspec.msgpack.decode(f, type=UsageRecord) for f in unpack(batch)])

    @property
    def request_ids(self) -> list[str]:
        return [r.request_id for batch in self.batches for r in batch]


def make(tmp_path, broker: Broker, **options) -> Recorder:
    values = {"flush_seconds": 0.05, "batch_size": 2, "retry_seconds": 0.2, **options}
    return Recorder(spool=Spool(tmp_path / "spool"), publish=broker.publish, **values)


async def until(condition, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_records_reach_celery_in_batches_and_leave_no_spool(tmp_path):
    broker = Broker()
    recorder = make(tmp_path, broker)
    sent = [usage(n) for n in range(5)]

    began = time.perf_counter()
    for record in sent:
        recorder.submit(record)
    assert time.perf_counter() - began < 0.01  # the hand-off is an append

    await until(lambda: len(broker.request_ids) == 5)
    assert broker.request_ids == [r.request_id for r in sent]
    assert max(len(b) for b in broker.batches) == 2  # USAGE_BATCH_SIZE per message
    await until(lambda: not recorder.spool.pending(orphaned_after=0))


async def test_records_wait_on_disk_while_the_broker_is_down_then_go(tmp_path):
    broker = Broker()
    broker.down = True
    recorder = make(tmp_path, broker)
    recorder.submit(usage(1))
    recorder.submit(usage(2))

    await until(lambda: len(recorder.spool.pending(orphaned_after=0)) == 1)
    await asyncio.sleep(0.5)  # a few failed retries
    assert broker.request_ids == []
    assert len(recorder.spool.pending(orphaned_after=0)) >= 1
    recorder.submit(usage(3))

    broker.down = False
    await until(lambda: len(broker.request_ids) == 3)
    await until(lambda: not recorder.spool.pending(orphaned_after=0))


async def test_a_record_is_on_disk_within_a_second_even_if_the_broker_hangs(tmp_path):
    broker = Broker()
    broker.gate.clear()  # publish blocks
    recorder = make(tmp_path, broker)
    record = usage(1)

    recorder.submit(record)
    await until(lambda: recorder.spool.pending(orphaned_after=0), within=1.0)

    path = recorder.spool.pending(orphaned_after=0)[0]
    assert [msgspec.msgpack.decode(f, type=UsageRecord) for f in unpack(path.read_bytes())] == [
        record
    ]
    broker.gate.set()
    await until(lambda: broker.request_ids == [record.request_id])


def test_the_exit_flush_spools_and_sends_what_is_buffered(tmp_path):
    broker = Broker()
    recorder = make(tmp_path, broker)
    recorder.submit(usage(1))  # no event loop: nothing runs until exit

    recorder.close()

    assert len(broker.request_ids) == 1
    assert not recorder.spool.pending(orphaned_after=0)


def test_the_exit_flush_keeps_records_on_disk_when_the_broker_is_down(tmp_path):
    broker = Broker()
    broker.down = True
    recorder = make(tmp_path, broker)
    recorder.submit(usage(1))

    recorder.close()

    later = make(tmp_path, Broker())  # the next process on this host
    assert later.send_pending()
    assert not later.spool.pending(orphaned_after=0)


@pytest.mark.django_db(transaction=True)
async def test_quick_start_runs_the_task_eagerly_in_the_sender_thread(
    tmp_path, settings, monkeypatch
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    threads = []

    def publish(batch: bytes) -> None:
        threads.append(threading.get_ident())
        recorder_module.publish_to_celery(batch)

    recorder = Recorder(
        spool=Spool(tmp_path), publish=publish, flush_seconds=0.05, batch_size=100, retry_seconds=1
    )
    record = usage(1)
    stored = database_sync_to_async(UsageRow.objects.filter(request_id=record.request_id).exists)

    with short_lived_connections():
        recorder.submit(record)
        deadline = time.monotonic() + 3
        while not await stored():
            assert time.monotonic() < deadline, "the eager task did not store the record"
            await asyncio.sleep(0.05)

    assert threads and threading.get_ident() not in threads
