"""Per process: usage records in, batches out to Celery, without ever blocking a request.

`submit` is the request path's one hand-off: it msgpack-encodes the record and appends it to
an in-process buffer. A background task on the serving event loop (started by the first
`submit`) wakes every USAGE_FLUSH_SECONDS and

1. writes what the buffer holds to the spool, one fsync'd file (in the spool thread), so no
   record stays only in memory for longer than a tick;
2. lets the sender thread publish spool files to Celery, oldest first, moving each to `sent/`
   once accepted. A failure (broker unreachable) leaves the files; they are tried again every
   SPOOL_RETRY_SECONDS while requests go on being served;
3. lets the sender thread watch the sent files (`check_sent`): one whose records have all
   landed in the database is deleted; one whose records have not landed USAGE_RESEND_SECONDS
   after it was published, while records published after it have (the broker lost it: Redis
   restarted without persistence, say), is published again. Without that evidence (the worker
   is stopped or behind) a file is published again only every 10 x USAGE_RESEND_SECONDS, so a
   long backlog is not multiplied in the queue; the insert is idempotent, so a copy is harmless.

Each look at `sent/` reads at most CHECK_RECORDS request ids (the oldest files, which may be
lost, and the newest, which say whether the worker keeps up) in one query, and while nothing
lands the looks back off from CHECK_MIN_SECONDS to half of USAGE_RESEND_SECONDS (at most
CHECK_MAX_SECONDS): a gateway whose worker is down for an hour keeps a bounded memory and asks
the database twice a minute.

`task.apply_async` is blocking I/O, so it only ever runs in the sender thread. With no broker
(quick start, CELERY_TASK_ALWAYS_EAGER) the same task runs right there, in that thread, and the
file is deleted as soon as it reports the batch stored. At interpreter exit the buffer is
spooled and one last send is tried.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path

import msgspec
from django.conf import settings

from gateway.usage.record import UsageRecord
from gateway.usage.spool import Spool, frame_id, pack

log = logging.getLogger("tollgate.usage")
_encoder = msgspec.msgpack.Encoder()
# Another process's spool file is taken over after this long (that process is likely gone);
# a sent one once it has not been published again for longer (its records are in the broker).
ORPHANED_AFTER_SECONDS = 30.0
SENT_ORPHANED_AFTER_SECONDS = 600.0
# Celery's own retry on a stale broker connection: reconnect once, then give up and spool.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# Watching sent files: request ids per look, and how often to look (backing off while nothing
# lands). Without evidence that a file was lost, it is published again only this many times
# more rarely than USAGE_RESEND_SECONDS.
CHECK_RECORDS = 5000
CHECK_MIN_SECONDS = 1.0
CHECK_MAX_SECONDS = 30.0
STALLED_FACTOR = 10


_record = msgspec.msgpack.Decoder(UsageRecord)


def landed_id(frame: bytes) -> str:
    """The id a record lands under: its request id, or, for a frame the worker cannot read as
    a record (so parks as it is), the frame's own id."""
    try:
        return _record.decode(frame).request_id
    except msgspec.DecodeError:
        return frame_id(frame)


class Recorder:
    def __init__(
        self,
        *,
        spool: Spool,
        publish: Callable[[bytes], bool],
        landed: Callable[[list[str]], set[str]],
        flush_seconds: float,
        batch_size: int,
        retry_seconds: float,
        resend_seconds: float,
    ):
        self.spool = spool
        self.publish = publish  # True: the batch is stored (eager); False: queued; raises: not
        self.landed = landed  # request ids -> those in the database
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.resend_seconds = resend_seconds
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()  # the exit flush runs on another thread than the loop
        self._task: asyncio.Task | None = None
        self._spool_thread = ThreadPoolExecutor(1, thread_name_prefix="usage-spool")
        self._send_thread = ThreadPoolExecutor(1, thread_name_prefix="usage-send")
        self._sending: Future | None = None
        self._next_send = 0.0  # monotonic: when to look at the spool again unprompted
        self._failing = False  # the last send failed: new files wait for the next try too
        self._next_check = 0.0  # monotonic: when to look at the sent files again
        self._check_every = CHECK_MIN_SECONDS
        # Looking more rarely than twice per USAGE_RESEND_SECONDS would resend late.
        self._check_max = min(CHECK_MAX_SECONDS, max(CHECK_MIN_SECONDS, resend_seconds / 2))
        self._landed_through = 0.0  # the latest publish time of a file seen fully landed

    def submit(self, record: UsageRecord) -> None:
        """The hand-off: encode and append. Never blocks, never raises for I/O."""
        frame = _encoder.encode(record)
        with self._lock:
            self._buffer.append(frame)
        task = self._task
        if task is None or task.done() or task.get_loop() is not _running_loop():
            self._start()

    def _start(self) -> None:
        loop = _running_loop()
        if loop is not None:  # without a loop the exit flush takes the buffer
            self._task = loop.create_task(self._run(), name="usage-recorder")

    def _take(self) -> list[bytes]:
        with self._lock:
            frames, self._buffer = self._buffer, []
        return frames

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.flush_seconds)
            frames = self._take()
            if frames:
                try:
                    await loop.run_in_executor(self._spool_thread, self.spool.write, frames)
                except Exception:
                    log.exception("usage: cannot write the spool; keeping %d records", len(frames))
                    with self._lock:
                        self._buffer[:0] = frames
                    continue
            self._kick_sender(new=bool(frames))

    def _kick_sender(self, *, new: bool) -> None:
        if self._sending is not None and not self._sending.done():
            return
        now = time.monotonic()
        send = now >= self._next_send or (new and not self._failing)
        if send or now >= self._next_check:
            self._sending = self._send_thread.submit(self._round, send=send)

    def _round(self, *, send: bool) -> None:
        if send:
            self.send_pending()
        if time.monotonic() >= self._next_check:
            self.check_sent()

    def send_pending(self) -> bool:
        """Publish every spool file this process should send; False if Celery refused one."""
        self._next_send = time.monotonic() + self.retry_seconds
        self._failing = not all(
            self._send_file(path)
            for path in self.spool.pending(orphaned_after=ORPHANED_AFTER_SECONDS)
        )
        return not self._failing

    def _send_file(self, path: Path) -> bool:
        frames = self.spool.read(path)
        if frames is None:
            return True
        stored = True
        try:
            for start in range(0, len(frames), self.batch_size):
                stored = self.publish(pack(frames[start : start + self.batch_size])) and stored
        except Exception as exc:
            log.warning("usage: Celery did not take the records in %s (%r); will retry", path, exc)
            return False
        if stored:
            self.spool.remove(path)
        else:
            self.spool.mark_sent(path)
        return True

    def check_sent(self) -> None:
        """Delete sent files whose records all landed; publish again those that look lost."""
        window = self._window()
        if not window:
            self._check_every = CHECK_MIN_SECONDS
        else:
            try:
                landed = self.landed([rid for _, _, records in window for rid, _ in records])
            except Exception as exc:
                log.warning("usage: cannot tell which records landed (%r); will look again", exc)
                landed = None
            progress = landed is not None and self._settle(window, landed)
            self._check_every = (
                CHECK_MIN_SECONDS if progress else min(self._check_max, 2 * self._check_every)
            )
        self._next_check = time.monotonic() + self._check_every

    def _window(self) -> list[tuple[Path, float, list[tuple[str, bytes]]]]:
        """Sent files to look at now, oldest and newest in turn, up to CHECK_RECORDS ids:
        (path, published at, [(request id, frame)])."""
        paths = self.spool.sent(orphaned_after=SENT_ORPHANED_AFTER_SECONDS)
        turns = [p for pair in zip(paths, reversed(paths), strict=True) for p in pair]
        window, seen, count = [], set(), 0
        for path in turns:
            if count >= CHECK_RECORDS:
                break
            if path in seen:
                continue
            seen.add(path)
            frames, published = self.spool.read(path), self.spool.published_at(path)
            if frames is None or published is None:
                continue
            records = [(landed_id(frame), frame) for frame in frames]
            window.append((path, published, records))
            count += len(records)
        return window

    def _settle(self, window, landed: set[str]) -> bool:
        """Delete what landed, publish again what looks lost; True if anything had landed."""
        waiting, progress = [], False
        for path, published, records in window:
            missing = [frame for rid, frame in records if rid not in landed]
            if missing:
                waiting.append((path, published, missing))
            else:
                self.spool.remove(path)
                self._landed_through = max(self._landed_through, published)
                progress = True
        lost = [(p, m) for p, published, m in waiting if self._looks_lost(published, time.time())]
        if lost:
            self._republish(lost)
        return progress

    def _looks_lost(self, published: float, now: float) -> bool:
        """Not landed for USAGE_RESEND_SECONDS while records published after it have (the
        worker is alive, the broker lost it), or for 10 times as long in any case."""
        age = now - published
        if published < self._landed_through:
            return age >= self.resend_seconds
        return age >= STALLED_FACTOR * self.resend_seconds

    def _republish(self, lost: list[tuple[Path, list[bytes]]]) -> None:
        sent = 0
        try:
            for path, frames in lost:
                for start in range(0, len(frames), self.batch_size):
                    self.publish(pack(frames[start : start + self.batch_size]))
                self.spool.republished(path)
                sent += len(frames)
        except Exception as exc:
            log.warning("usage: Celery did not take records to send again (%r); will retry", exc)
        if sent:
            log.warning(
                "usage: %d records not landed %.0f s or more after publication; sent again",
                sent,
                self.resend_seconds,
            )

    def close(self) -> None:
        """At exit: spool what is buffered, then try once to send (bounded by socket timeouts)."""
        frames = self._take()
        try:
            if frames:
                self.spool.write(frames)
            self.send_pending()
        except Exception:
            log.exception("usage: final flush failed; %d records not spooled", len(frames))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def publish_to_celery(batch: bytes) -> bool:
    """Queue one batch for the worker: False once queued; with eager Celery (quick start) the
    task runs here and True means it stored the batch. Raises if it was not accepted or stored."""
    from celery.result import EagerResult
    from django.db import close_old_connections

    from gateway.usage.tasks import record_usage_batch

    payload = base64.b64encode(batch).decode("ascii")
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        record_usage_batch.apply_async(args=[payload], retry=True, retry_policy=PUBLISH_RETRY)
        return False
    close_old_connections()  # the task runs here, on this thread's own database connection
    try:
        result = record_usage_batch.apply_async(args=[payload])
    finally:
        close_old_connections()
    if isinstance(result, EagerResult) and result.failed():
        raise RuntimeError(f"usage batch not stored: {result.result!r}")
    return True


def landed_in_database(request_ids: list[str]) -> set[str]:
    """The sender thread's look at which records landed, on its own database connection."""
    from django.db import close_old_connections

    from gateway.usage.selectors import landed_request_ids

    close_old_connections()
    try:
        return landed_request_ids(request_ids)
    finally:
        close_old_connections()


@cache
def recorder() -> Recorder:
    """Explicit process cache: one recorder per process, flushed at interpreter exit."""
    conf = settings.TOLLGATE
    instance = Recorder(
        spool=Spool(conf["SPOOL_DIR"]),
        publish=publish_to_celery,
        landed=landed_in_database,
        flush_seconds=conf["USAGE_FLUSH_SECONDS"],
        batch_size=conf["USAGE_BATCH_SIZE"],
        retry_seconds=conf["SPOOL_RETRY_SECONDS"],
        resend_seconds=conf["USAGE_RESEND_SECONDS"],
    )
    atexit.register(instance.close)
    return instance


def submit(record: UsageRecord) -> None:
    recorder().submit(record)
