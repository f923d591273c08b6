"""An HTTP/1.1 transport for `httpx2.AsyncClient`: asyncio protocol, httptools parser, a small pool.

Why not httpx2's own transport: profiled on the gateway's hot path, httpcore2's pool and h11's
pure-Python parser cost about 1 ms of CPU per upstream call (a raw asyncio exchange on the same
kept-alive connection costs 0.12 ms), and h11 parses every chunk of a stream in Python. This
module keeps httpx2's client (URLs, headers, timeouts, content decoding, exceptions) and
replaces only what is underneath it: each connection is an `asyncio.Protocol` that feeds bytes
to `httptools` (llhttp, the C parser uvicorn uses), writes a request in one `transport.write`,
and hands body chunks to the reader as they arrive.

Scope, on purpose: HTTP/1.1 over TCP or TLS, no proxies (clients are built with
`trust_env=False`), no HTTP/2, no transport-level retries (a request that fails is retried or
falls back by the gateway's attempt loop, which knows whether the upstream may have billed it).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator

import httptools
import httpx2

_DEFAULT_PORTS = {b"http": 80, b"https": 443}
# A reader that falls this far behind pauses the socket until it catches up.
_HIGH_WATER = 256 * 1024
# A response closed before its end is read to its end in the background when that is close
# (the usual case: a stream's last event was handled before its terminating chunk arrived),
# so the connection is kept instead of reopened for the next request; longer ones are cut.
# A reader that gives a response up calls its "abort" extension first, and the connection
# closes at once: the provider stops generating (and billing) only when it sees the close.
_DRAIN_SECONDS = 0.25
_DRAIN_BYTES = 64 * 1024


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange in flight."""

    def __init__(self, origin: tuple[bytes, bytes, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.closed = False
        self.lost: BaseException | None = None
        self.idle_since = 0.0
        self.waiter: asyncio.Future | None = None
        self.writable: asyncio.Future | None = None
        self.write_paused = False
        self.read_paused = False
        self.exchanges = 0  # requests begun on this connection
        self.on_drained = None  # set while a closed response is read to its end
        self.drain_budget = 0
        self.drain_timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.until_close = False
        self.keep_alive = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.received = 0
        self.error: httpx2.TransportError | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # bytes while idle: the server broke the exchange protocol
            self.closed = True
            self.transport.close()
            return
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:  # not a subclass
            self.error = httpx2.RemoteProtocolError(f"malformed upstream response: {exc}")
            self.closed = True
            self.transport.close()
            self._end_drain()
        self._wake()

    def eof_received(self) -> bool:
        self._finish_on_close()
        return False  # close our side too

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = exc
        self._finish_on_close()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        lowered = {name.lower() for name, _ in self.headers}
        self.until_close = b"content-length" not in lowered and b"transfer-encoding" not in lowered

    def on_body(self, body: bytes) -> None:
        if self.on_drained is not None:  # nobody reads this body any more
            self.drain_budget -= len(body)
            if self.drain_budget < 0:
                self.close()
                self._end_drain()
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim answer (103 Early Hints): the real one follows
            self.headers = []
            self.headers_done = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self.parser = None
        self._end_drain()

    # -- used by the transport ---------------------------------------------------------------

    def _finish_on_close(self) -> None:
        self.closed = True
        if self.parser is not None and self.headers_done and self.until_close:
            self.complete = True  # a body delimited by the connection closing has ended
            self.parser = None
        self._wake()
        self._end_drain()

    def start_drain(self, done) -> None:
        """Read the rest of the response in the background; `done(self)` when it settles."""
        self.chunks.clear()
        self.buffered = 0
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.on_drained = done
        self.drain_budget = _DRAIN_BYTES
        self.drain_timer = asyncio.get_running_loop().call_later(_DRAIN_SECONDS, self._drain_late)

    def _drain_late(self) -> None:
        self.close()
        self._end_drain()

    def _end_drain(self) -> None:
        done, self.on_drained = self.on_drained, None
        if done is not None:
            self.drain_timer.cancel()
            done(self)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def reusable(self, now: float, expiry: float) -> bool:
        fresh = now - self.idle_since < expiry
        return fresh and not self.closed and not self.transport.is_closing()

    def begin(self, head: bytes, body: bytes, method: bytes) -> None:
        self._reset()
        self.exchanges += 1
        if self.read_paused:  # the last body was closed unread after its final bytes paused us
            self.read_paused = False
            self.transport.resume_reading()
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = method == b"HEAD"
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    async def request_written(self, timeout: float | None) -> None:
        if self.write_paused and not self.closed:
            self.writable = asyncio.get_running_loop().create_future()
            await _wait(self.writable, timeout, httpx2.WriteTimeout, "writing the request")

    async def response_head(self, timeout: float | None) -> None:
        while not self.headers_done:
            await self._await_bytes(timeout)
        if self.head_only and not self.complete:  # llhttp cannot know a HEAD answer has no body
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()
            self.parser = None

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        while not self.chunks:
            if self.complete:
                return None
            await self._await_bytes(timeout)
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.read_paused and self.buffered < _HIGH_WATER // 4:
            self.read_paused = False
            self.transport.resume_reading()
        return chunk

    async def _await_bytes(self, timeout: float | None) -> None:
        if self.error is not None:
            raise self.error
        if self.closed:
            reason = f": {self.lost}" if self.lost else ""
            raise httpx2.RemoteProtocolError(f"upstream closed the connection mid-response{reason}")
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await _wait(self.waiter, timeout, httpx2.ReadTimeout, "reading the response")
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # close() would keep flushing a request we gave up on


async def _wait(future: asyncio.Future, timeout: float | None, error: type, what: str) -> None:
    if timeout is None:
        await future
        return
    handle = asyncio.get_running_loop().call_later(
        timeout, lambda: future.done() or future.set_exception(error(f"timed out {what}"))
    )
    try:
        await future
    finally:
        handle.cancel()


class _Body(httpx2.AsyncByteStream):
    """The response body as it arrives; closing it returns the connection to the pool."""

    def __init__(self, pool: WireTransport, conn: _Connection, timeouts: dict) -> None:
        self._pool = pool
        self._conn = conn
        # The same dict the caller holds: a read timeout changed mid-stream applies at once.
        self._timeouts = timeouts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        while (chunk := await conn.next_chunk(self._timeouts.get("read"))) is not None:
            yield chunk

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._pool._release(conn)


class WireTransport(httpx2.AsyncBaseTransport):
    """A connection pool per event loop: `limits` as httpx2 reads them."""

    def __init__(self, *, limits: httpx2.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max = limits.max_connections or 1 << 30
        self._max_idle = limits.max_keepalive_connections
        if self._max_idle is None:
            self._max_idle = self._max
        self._expiry = limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
        self._ssl_context = ssl_context
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0  # connections that exist: busy, idle or being opened
        self._slots: collections.deque[asyncio.Future] = collections.deque()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx2.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout") or {}
        body = await request.aread()
        head = _head(request.method.encode(), url.raw_path, request.headers.raw, request)

        while True:
            conn = await self._acquire(origin, timeouts)
            try:
                conn.begin(head, body, request.method.encode())
                await conn.request_written(timeouts.get("write"))
                await conn.response_head(timeouts.get("read"))
            except BaseException as exc:
                conn.close()
                self._settle(conn)
                if _stale(conn, exc):
                    continue  # the server had closed this idle connection: it never saw us
                raise
            break
        return httpx2.Response(
            status_code=conn.status,
            headers=conn.headers,
            stream=_Body(self, conn, timeouts),
            # "abort": the reader gives the response up (a client gone, a stream cut short), so
            # its connection closes now instead of being read to its end (see _DRAIN_SECONDS).
            extensions={"http_version": b"HTTP/1.1", "abort": conn.close},
            request=request,
        )

    async def aclose(self) -> None:
        while self._idle:
            self._idle.popleft().close()

    # -- the pool ---------------------------------------------------------------------------

    async def _acquire(self, origin: tuple[bytes, bytes, int], timeouts: dict) -> _Connection:
        while True:  # and again after each wait: the connection released may be idle now
            now = time.monotonic()
            for conn in reversed(self._idle):  # most recently used first: likeliest still open
                if conn.origin == origin:
                    self._idle.remove(conn)
                    if conn.reusable(now, self._expiry):
                        return conn
                    conn.close()
                    self._open -= 1
                    break
            if self._open < self._max:
                break
            if self._idle:  # make room by closing an idle connection to another origin
                self._idle.popleft().close()
                self._open -= 1
                continue
            slot = asyncio.get_running_loop().create_future()
            self._slots.append(slot)
            try:
                await _wait(slot, timeouts.get("pool"), httpx2.PoolTimeout, "waiting for the pool")
            except BaseException:
                if slot in self._slots:
                    self._slots.remove(slot)
                else:  # woken, then cancelled: pass the wake-up on instead of losing it
                    self._wake_one()
                raise
        self._open += 1
        try:
            return await self._connect(origin, timeouts.get("connect"))
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    async def _connect(self, origin: tuple[bytes, bytes, int], timeout: float | None):
        scheme, host, port = origin
        hostname = host.decode("ascii")
        conn = _Connection(origin)
        tls = self._ssl_context if scheme == b"https" else None
        if scheme == b"https" and tls is None:
            tls = self._ssl_context = httpx2.create_ssl_context(trust_env=False)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: conn, hostname, port, ssl=tls, server_hostname=hostname if tls else None
                )
        except TimeoutError:
            conn.close()
            raise httpx2.ConnectTimeout(f"connecting to {hostname}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(f"could not connect to {hostname}:{port}: {exc}") from None
        return conn

    def _release(self, conn: _Connection) -> None:
        """A response closed by its reader: its connection is kept if its end is near."""
        if not (conn.complete or conn.closed) and conn.error is None and conn.headers_done:
            conn.start_drain(self._settle)  # the pool slot stays taken until it settles
            return
        self._settle(conn)

    def _settle(self, conn: _Connection) -> None:
        """Back to the idle set when the exchange ended cleanly, otherwise closed."""
        reusable = conn.complete and conn.keep_alive and not conn.closed
        if reusable and len(self._idle) < self._max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._slots:
            slot = self._slots.popleft()
            if not slot.done():
                slot.set_result(None)
                return


def _stale(conn: _Connection, exc: BaseException) -> bool:
    """A kept-alive connection the server closed as we reused it: closed, not a byte back.

    Servers close idle connections only between exchanges, so a request that met such a close
    was not processed; it is sent once more on a new connection (as browsers do).
    """
    return (
        conn.exchanges > 1
        and conn.received == 0
        and isinstance(exc, httpx2.RemoteProtocolError)
        and conn.error is None
    )


def _head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], request) -> bytes:
    """The request line and headers, refusing anything that would split them: the head must
    hold exactly one CR and one LF per line we wrote (counted in C, not per header in Python)."""
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    head = b"".join(lines)
    expected = len(headers) + 2
    if head.count(b"\n") != expected or head.count(b"\r") != expected or b"\0" in head:
        raise httpx2.LocalProtocolError("illegal header value (CR, LF or NUL)", request=request)
    if any(b":" in name for name, _ in headers):
        raise httpx2.LocalProtocolError("illegal header name", request=request)
    return head
