"""uvicorn's httptools protocol, sending a response's head together with its first body bytes.

uvicorn writes a response's head as soon as the application starts it, and its body as a
second socket send; on a loopback exchange a send (and the reader's wake-up it causes) is the
largest single cost of a request in the profile. The production server (`main` below, run by
`make serve` and the image) uses this protocol: a head is held until the next write of the same
connection, which goes out with it, and is sent alone at the end of the event-loop tick if no
body comes in that tick. Bytes never change order; only a head ever waits, for at most a tick.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadHoldingTransport(transport, self.loop))


def main() -> None:
    """`python -m gateway.server`: the production server, as `make serve` and the image run it.

    uvicorn with uvloop, this protocol and WORKERS processes (default 2) on HOST:PORT (default
    127.0.0.1:8000). With PROMETHEUS_MULTIPROC_DIR set (`make serve` and the image set it), the
    workers keep their metrics there and `/metrics` adds them up; it is emptied first, as
    prometheus-client requires, since a previous run's files would be counted again.
    """
    import os
    import shutil

    import uvicorn

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
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
