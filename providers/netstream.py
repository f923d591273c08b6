"""A plain-asyncio network backend for httpx2's connection pool.

httpx2 reaches sockets through anyio, whose cancel scopes and socket probes cost more than the
rest of an upstream call on a busy gateway (profiled: anyio and its readability `select()`
were a quarter of a worker's CPU at 32 concurrent requests). This backend keeps httpx2's pool,
HTTP/1.1 and TLS logic, and replaces only the byte pipe: an asyncio Protocol with a buffer,
reads that wait on one future with a timer for the timeout, and a readability check that is
a look at that buffer.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
from httpcore2 import AsyncNetworkBackend, AsyncNetworkStream

_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


class _Pipe(asyncio.Protocol):
    """Receives bytes into a buffer; one reader waits on `waiter` at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future | None = None
        self.paused = False
        self.drained: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def _wait(future: asyncio.Future, timeout: float | None, error: type[Exception]) -> None:
    if timeout is None:
        await future
        return
    handle = asyncio.get_running_loop().call_later(
        timeout, lambda: future.done() or future.set_exception(error())
    )
    try:
        await future
    finally:
        handle.cancel()


class AsyncioStream(AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, pipe: _Pipe):
        self.transport = transport
        self.pipe = pipe

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        pipe = self.pipe
        if not pipe.buffer and not pipe.eof:
            pipe.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(pipe.waiter, timeout, httpcore2.ReadTimeout)
            finally:
                pipe.waiter = None
        if pipe.buffer:
            data = bytes(pipe.buffer[:max_bytes])
            del pipe.buffer[:max_bytes]
            return data
        if pipe.error is not None:
            raise httpcore2.ReadError(str(pipe.error))
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self.transport.is_closing():
            raise httpcore2.WriteError("connection closed")
        self.transport.write(buffer)
        if self.pipe.paused:
            self.pipe.drained = asyncio.get_running_loop().create_future()
            await _wait(self.pipe.drained, timeout, httpcore2.WriteTimeout)

    async def aclose(self) -> None:
        self.transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    self.transport, self.pipe, ssl_context, server_hostname=server_hostname
                ),
                timeout,
            )
        except TimeoutError:
            raise httpcore2.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        self.pipe.transport = transport
        return AsyncioStream(transport, self.pipe)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle keep-alive connection with bytes or EOF waiting was closed by the server.
            return bool(self.pipe.buffer) or self.pipe.eof
        if info == "ssl_object":
            return self.transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self.transport.get_extra_info("sockname")
        if info == "server_addr":
            return self.transport.get_extra_info("peername")
        if info == "socket":
            return self.transport.get_extra_info("socket")
        return None


class AsyncioBackend(AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            transport, pipe = await asyncio.wait_for(
                loop.create_connection(_Pipe, host, port, local_addr=local), timeout
            )
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in (*_OPTIONS, *(socket_options or ())):
            sock.setsockopt(*option)
        return AsyncioStream(transport, pipe)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ):
        loop = asyncio.get_running_loop()
        transport, pipe = await asyncio.wait_for(loop.create_unix_connection(_Pipe, path), timeout)
        return AsyncioStream(transport, pipe)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
