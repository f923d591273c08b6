"""The recorder: one non-blocking hand-off, on disk within a tick, sent when Celery takes it,
kept until its records are in the database, and sent again if the broker lost them."""

import asyncio
import os
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
    """Stands in for Celery and its worker: takes batches (or refuses, or hangs until
    released), and stores them in `stored` while `working`; `landed` is the database's word."""

    def __init__(self):
        self.batches: list[list[UsageRecord]] = []
        self.down = False
        self.working = True
        self.stored: set[str] = set()
        self.looks: list[int] = []  # request ids asked for, per look at the database
        self.gate = threading.Event()
        self.gate.set()

    def publish(self, batch: bytes) -> bool:
        self.gate.wait(10)
        if self.down:
            raise ConnectionError("broker unreachable")
        records = [msgspec.msgpack.decode(f, type=UsageRecord) for f in unpack(batch)]
        self.batches.append(records)
        if self.working:
            self.stored.update(r.request_id for r in records)
        return False  # queued, not known to be stored

    def landed(self, request_ids: list[str]) -> set[str]:
        self.looks.append(len(request_ids))
        return self.stored & set(request_ids)

    @property
    def request_ids(self) -> list[str]:
        return [r.request_id for batch in self.batches for r in batch]


def make(tmp_path, broker: Broker, **options) -> Recorder:
    values = {"flush_seconds": 0.05, "batch_size": 2, "retry_seconds": 0.2, **options}
    values.setdefault("resend_seconds", 60)
    return Recorder(
        spool=Spool(tmp_path / "spool"), publish=broker.publish, landed=broker.landed, **values
    )


def spooled(recorder: Recorder) -> list:
    """Every file still in the spool, sent or not."""
    return list(recorder.spool.directory.rglob("*.usage"))


@pytest.fixture
def quick_checks(monkeypatch):
    """Look at sent files every 0.05 s, backing off to 0.4 s, so tests take a second or two."""
    monkeypatch.setattr(recorder_module, "CHECK_MIN_SECONDS", 0.05)
    monkeypatch.setattr(recorder_module, "CHECK_MAX_SECONDS", 0.4)


async def until(condition, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_records_reach_celery_in_batches_and_leave_no_spool(tmp_path, quick_checks):
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
    await until(lambda: not spooled(recorder))


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
    # Celery first: its configuration is read from the settings as they are before this test,
    # so that is what the monkeypatch puts back (else every later test is eager too).
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    threads = []

    def publish(batch: bytes) -> bool:
        threads.append(threading.get_ident())
        return recorder_module.publish_to_celery(batch)

    recorder = Recorder(
        spool=Spool(tmp_path),
        publish=publish,
        landed=Broker().landed,  # never asked: the eager task says the batch is stored
        flush_seconds=0.05,
        batch_size=100,
        retry_seconds=1,
        resend_seconds=60,
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
    await until(lambda: not spooled(recorder))


async def test_a_sent_file_is_kept_until_its_records_are_in_the_database(tmp_path, quick_checks):
    broker = Broker()
    broker.working = False  # the worker is stopped: the records wait in the queue
    recorder = make(tmp_path, broker)
    record = usage(1)

    recorder.submit(record)
    await until(lambda: broker.request_ids == [record.request_id])
    await asyncio.sleep(0.3)
    assert [p.parent.name for p in spooled(recorder)] == ["sent"]

    broker.stored.add(record.request_id)  # the worker is back and stored it
    await until(lambda: not spooled(recorder))
    assert broker.request_ids == [record.request_id]  # published once


async def test_records_the_broker_lost_are_published_again_once_later_ones_land(
    tmp_path, quick_checks
):
    broker = Broker()
    broker.working = False
    recorder = make(tmp_path, broker, resend_seconds=0.3)
    lost = usage(1)
    recorder.submit(lost)
    await until(lambda: broker.request_ids == [lost.request_id])
    broker.batches.clear()  # the broker restarted without persistence: its queue is gone
    broker.working = True

    later = usage(2)
    recorder.submit(later)

    await until(lambda: not spooled(recorder))
    assert broker.stored >= {lost.request_id, later.request_id}
    assert sorted(broker.request_ids) == sorted([lost.request_id, later.request_id])


async def test_a_backlog_is_not_published_again_while_nothing_lands(tmp_path, quick_checks):
    """A stopped worker: no evidence that anything was lost, so no copies (before 10 x resend)."""
    broker = Broker()
    broker.working = False
    recorder = make(tmp_path, broker, resend_seconds=0.2)
    sent = [usage(n) for n in range(4)]

    for record in sent:
        recorder.submit(record)
        await asyncio.sleep(0.06)  # one file per flush
    await asyncio.sleep(1.5)

    assert sorted(broker.request_ids) == sorted(r.request_id for r in sent)
    await asyncio.sleep(1.0)  # 10 x resend_seconds after they were published:
    assert len(broker.request_ids) > len(sent)  # tried again, in case the queue was lost


async def test_a_dead_worker_costs_bounded_looks_at_the_database(
    tmp_path, quick_checks, monkeypatch
):
    monkeypatch.setattr(recorder_module, "CHECK_RECORDS", 100)
    broker = Broker()
    broker.working = False
    recorder = make(tmp_path, broker, batch_size=500)
    for n in range(60):  # 60 sent files of 30 records: 1,800 records waiting
        recorder.spool.mark_sent(recorder.spool.write([msgspec.msgpack.encode(usage(n))] * 30))

    recorder.submit(usage(99))
    await asyncio.sleep(2.0)

    assert broker.looks and max(broker.looks) <= 100 + 30  # whole files, up to CHECK_RECORDS
    assert len(broker.looks) <= 10  # 0.05, 0.1, 0.2, then every 0.4 s
    assert len(spooled(recorder)) == 61


def test_a_file_another_process_left_in_sent_is_watched_once_orphaned(tmp_path):
    broker = Broker()
    theirs = Spool(tmp_path / "spool")
    theirs.pid = os.getpid() + 1
    record = usage(1)
    path = theirs.mark_sent(theirs.write([msgspec.msgpack.encode(record)]))
    broker.stored.add(record.request_id)
    recorder = make(tmp_path, broker)

    recorder.check_sent()
    assert path.exists()  # its process may still be watching it

    old = time.time() - recorder_module.SENT_ORPHANED_AFTER_SECONDS - 1
    os.utime(path, (old, old))
    recorder.check_sent()
    assert not path.exists()
