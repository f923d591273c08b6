"""Per process: usage records in, batches out to Celery, without ever blocking a request.

`submit` is the request path's one hand-off: it msgpack-encodes the record and appends it to
an in-process buffer. A background task on the serving event loop (started by the first
`submit`) wakes every USAGE_FLUSH_SECONDS and

1. writes what the buffer holds to the spool, one fsync'd file (in the spool thread), so no
   record stays only in memory for longer than a tick;
2. lets the sender thread publish spool files to Celery, oldest first, deleting each once
   accepted. A failure (broker unreachable) leaves the files; they are tried again every
   SPOOL_RETRY_SECONDS while requests go on being served.

`task.apply_async` is blocking I/O, so it only ever runs in the sender thread. With no broker
(quick start, CELERY_TASK_ALWAYS_EAGER) the same task runs right there, in that thread. At
interpreter exit the buffer is spooled and one last send is tried.
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
from gateway.usage.spool import Spool, pack

log = logging.getLogger("tollgate.usage")
_encoder = msgspec.msgpack.Encoder()
# Another process's spool file is taken over after this long (that process is likely gone).
ORPHANED_AFTER_SECONDS = 30.0
# Celery's own retry on a stale broker connection: reconnect once, then give up and spool.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


class Recorder:
    def __init__(
        self,
        *,
        spool: Spool,
        publish: Callable[[bytes], None],
        flush_seconds: float,
        batch_size: int,
        retry_seconds: float,
    ):
        self.spool = spool
        self.publish = publish
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()  # the exit flush runs on another thread than the loop
        self._task: asyncio.Task | None = None
        self._spool_thread = ThreadPoolExecutor(1, thread_name_prefix="usage-spool")
        self._send_thread = ThreadPoolExecutor(1, thread_name_prefix="usage-send")
        self._sending: Future | None = None
        self._next_send = 0.0  # monotonic: when to look at the spool again unprompted
        self._failing = False  # the last send failed: new files wait for the next try too

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
        if time.monotonic() >= self._next_send or (new and not self._failing):
            self._sending = self._send_thread.submit(self.send_pending)

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
        try:
            for start in range(0, len(frames), self.batch_size):
                self.publish(pack(frames[start : start + self.batch_size]))
        except Exception as exc:
            log.warning("usage: Celery did not take the records in %s (%r); will retry", path, exc)
            return False
        self.spool.remove(path)
        return True

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


def publish_to_celery(batch: bytes) -> None:
    """Queue one batch for the worker; raises if it was not accepted (or, eager, not stored)."""
    from celery.result import EagerResult
    from django.db import close_old_connections

    from gateway.usage.tasks import record_usage_batch

    payload = base64.b64encode(batch).decode("ascii")
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        record_usage_batch.apply_async(args=[payload], retry=True, retry_policy=PUBLISH_RETRY)
        return
    close_old_connections()  # the task runs here, on this thread's own database connection
    try:
        result = record_usage_batch.apply_async(args=[payload])
    finally:
        close_old_connections()
    if isinstance(result, EagerResult) and result.failed():
        raise RuntimeError(f"usage batch not stored: {result.result!r}")


@cache
def recorder() -> Recorder:
    """Explicit process cache: one recorder per process, flushed at interpreter exit."""
    conf = settings.TOLLGATE
    instance = Recorder(
        spool=Spool(conf["SPOOL_DIR"]),
        publish=publish_to_celery,
        flush_seconds=conf["USAGE_FLUSH_SECONDS"],
        batch_size=conf["USAGE_BATCH_SIZE"],
        retry_seconds=conf["SPOOL_RETRY_SECONDS"],
    )
    atexit.register(instance.close)
    return instance


def submit(record: UsageRecord) -> None:
    recorder().submit(record)
