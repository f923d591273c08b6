"""uvicorn's httptools protocol, sending a response's head together with its first body bytes.

uvicorn writes a response's head as soon as the application starts it, and its body as a
second socket send; on a loopback exchange a send (and the reader's wake-up it causes) is the
largest single cost of a request in the profile. The production server (`main` below, run by
`make serve` and the image) uses this protocol: a head is held until the next write of the same
connection, which goes out with it, and is sent alone at the end of the event-loop tick if no
body comes in that tick. Bytes never change order; only a head ever waits, for at most a tick.

The protocol also enforces gateway/connection_guard.py's limits (head size and time, body pace
and size, clients that stop reading, idle and waiting connections) with httptools' callbacks
and asyncio timer handles: a timer is armed only while a head or body is incomplete at the end
of a read, or while the client's socket buffer is full, so an ordinary request arms none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.errors import GatewayError
from gateway import connection_guard as guard

_HEAD = b"HTTP/1."


class HeadHoldingTransport:
    """Wraps a connection's transport; see the module docstring."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data.startswith(_HEAD):
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            data, self._head = self._head, None
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def is_closing(self) -> bool:  # asked once a request: direct, not through __getattr__
        return self._transport.is_closing()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def _limits(server_state: Any) -> tuple[guard.ConnectionLimits, guard.Pending]:
    """The limits and the waiting connections of one server (one worker process), kept on the
    state uvicorn shares between that server's connections."""
    shared = getattr(server_state, "tollgate_guard", None)
    if shared is None:
        limits = guard.ConnectionLimits.from_settings()
        shared = server_state.tollgate_guard = (limits, guard.Pending(limits.max_pending))
    return shared


class HttpProtocol(HttpToolsProtocol):
    def __init__(self, config, server_state, app_state, _loop=None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits, self.pending = _limits(server_state)
        self.head_bytes: int | None = 0  # of the request head being read; None past its end
        self.reading_body = False
        self.body_bytes = self.body_counted = 0  # received; received when the clock started
        self.body_started = self.body_seen = 0.0
        self.deadline: asyncio.TimerHandle | None = None  # of the head or body being read
        self.send_stall: asyncio.TimerHandle | None = None  # armed while writing is paused
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadHoldingTransport(transport, self.loop))
        self.pending.add(self)
        self.deadline = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pending.discard(self)
        self.cancel_deadline()
        if self.send_stall is not None:
            self.send_stall.cancel()
            self.send_stall = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # lingering after a refusal: what the client still sends is dropped
        if self.head_bytes is not None:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.head_bytes is not None:  # a head is incomplete (or has not begun)
            if self.head_bytes > self.limits.max_head_bytes:
                self.refuse(guard.head_too_large(self.limits))
            elif self.head_bytes and self.deadline is None:  # the first bytes after keep-alive
                self.deadline = self.loop.call_later(self.limits.head_timeout, self.head_timed_out)
        elif self.body_bytes > self.limits.max_body_bytes:
            self.refuse(guard.body_too_large(self.limits))
        elif self.reading_body:
            self.body_seen = now = self.loop.time()
            if self.deadline is None:
                self.body_started = now
                self.deadline = self.loop.call_at(
                    now + self.limits.body_timeout, self.body_timed_out
                )

    def on_headers_complete(self) -> None:
        self.head_bytes = None
        self.reading_body = True
        self.body_bytes = self.body_counted = 0
        if self.deadline is not None:
            self.cancel_deadline()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_body = False
        self.head_bytes = 0
        if self.deadline is not None:
            self.cancel_deadline()
        self.pending.discard(self)

    def on_response_complete(self) -> None:
        idle = not self.pipeline
        super().on_response_complete()
        if self.refused or self.transport.is_closing():
            return
        if self.reading_body:  # answered before the body ended (413, say): read no more of it
            self.linger()
        elif idle:
            self.pending.add(self)  # kept alive: waiting for the next request

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.send_stall is None:
            self.send_stall = self.loop.call_later(self.limits.send_timeout, self.drop)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.send_stall is not None:
            self.send_stall.cancel()
            self.send_stall = None

    def send_400_response(self, msg: str) -> None:  # httptools could not parse the request
        self.refuse(guard.malformed())

    def head_timed_out(self) -> None:
        self.deadline = None
        self.refuse(guard.head_timeout(self.limits))

    def body_timed_out(self) -> None:
        self.deadline = None
        if not self.reading_body:
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the application is not reading: the client is not slow
            self.body_started = self.body_seen = now
            self.body_counted = self.body_bytes
        received = self.body_bytes - self.body_counted
        deadline = self.limits.body_deadline(self.body_started, self.body_seen, received)
        if deadline > now:
            self.deadline = self.loop.call_at(deadline, self.body_timed_out)
        else:
            self.refuse(guard.body_timeout(self.limits))

    def cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def refuse(self, err: GatewayError) -> None:
        """Answer `err` (unless this request's answer is already written or under way), then
        linger: read no more requests and close once the client has had time to read it."""
        if self.refused or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's receive says so; its sends are dropped
            cycle.message_event.set()
            if cycle.response_started:  # mid-answer: nothing more can be said
                self.refused = True
                self.transport.abort()
                return
        if self.head_bytes is not None or cycle is None or not cycle.response_complete:
            target = getattr(self, "url", None) or None  # the request target read so far
            self.transport.write(guard.refusal(err, target))
        self.linger()

    def linger(self) -> None:
        """Half-close after what was written, drop what the client still sends, close after
        LINGER_SECONDS: a close with unread input resets the connection, and a reset can
        destroy the answer on its way to the client."""
        self.refused = True
        self.pending.discard(self)
        self.cancel_deadline()
        self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(guard.LINGER_SECONDS, self.transport.close)

    def drop(self) -> None:
        """Close at once, without an answer: the oldest waiting connection when one more
        arrives past the limit, or a client that read nothing for `send_timeout`."""
        self.pending.discard(self)
        self.transport.abort()


def main() -> None:
    """`python -m gateway.server`: the production server, as `make serve` and the image run it.

    uvicorn with uvloop, this protocol and WORKERS processes (default 2) on HOST:PORT (default
    127.0.0.1:8000). With PROMETHEUS_MULTIPROC_DIR set (`make serve` and the image set it), the
    workers keep their metrics there and `/metrics` adds them up; it is emptied first, as
    prometheus-client requires, since a previous run's files would be counted again.
    """
    import os
    import shutil
    import sys

    import uvicorn
    from django.core.exceptions import ImproperlyConfigured

    # The production server never runs on development secrets (gateway/settings.py).
    os.environ.setdefault("TOLLGATE_PRODUCTION", "1")
    try:
        import gateway.settings  # noqa: F401
    except ImproperlyConfigured as exc:
        sys.exit(f"tollgate: {exc}")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    limits = guard.ConnectionLimits.from_settings()  # a bad TOLLGATE_* value stops us here
    if metrics_dir := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.makedirs(metrics_dir)

    uvicorn.run(
        "gateway.asgi:application",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        workers=int(os.environ.get("WORKERS", "2")),
        # Tollgate decides which X-Forwarded-For entries to trust (TOLLGATE_TRUSTED_PROXIES).
        proxy_headers=False,
        loop="uvloop",
        http="gateway.server:HttpProtocol",
        access_log=False,
        timeout_keep_alive=limits.keepalive_timeout,  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
