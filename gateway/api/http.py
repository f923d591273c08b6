"""A lean Channels consumer for the `/v1` API: raw ASGI speed, Anthropic-shaped errors.

Channels' `AsyncHttpConsumer` closes old database connections through a thread-pool hop on
every ASGI message and buffers the body without a limit; the hot path needs neither, so this
consumer reads the body itself (enforcing the size limit as bytes arrive) and never touches
the database unless a cold cache sends it there.
"""

from __future__ import annotations

import logging
import time

import msgspec
from channels.consumer import AsyncConsumer
from django.conf import settings

from core import ids, metrics
from core.errors import ApiError, GatewayError, MethodNotAllowed, RequestTooLarge

log = logging.getLogger("tollgate.api")
_json = msgspec.json.Encoder()
# Every /v1 response says how long the gateway itself took, upstream waits excluded.
OVERHEAD_HEADER = b"tollgate-overhead-ms"


class ClientGone(Exception):
    """The client closed the connection."""


class GatewayConsumer(AsyncConsumer):
    methods: tuple[str, ...] = ("POST",)
    # The label this endpoint's requests are counted under in /metrics (a handful of values).
    endpoint = "other"

    async def __call__(self, scope, receive, send):
        in_flight = metrics.in_flight(self.endpoint)
        in_flight.inc()
        try:
            await self.serve(scope, receive, send)
        finally:
            in_flight.dec()

    async def serve(self, scope, receive, send):
        self.scope, self.receive, self.base_send = scope, receive, send
        self.request_id = ids.request_id()
        self.started = time.perf_counter()
        self.upstream_seconds = 0.0  # spent waiting for providers: not the gateway's own time
        self.response_started = False
        self.headers = dict(scope["headers"])
        try:
            if scope["method"] not in self.methods:
                raise MethodNotAllowed(f"method {scope['method']} is not allowed here")
            body = await self.read_body() if scope["method"] == "POST" else b""
            await self.handle(body)
        except ClientGone:
            await self.client_gone()
        except GatewayError as err:
            await self.send_error(err)
        except Exception:
            log.exception("unhandled error serving %s (request %s)", scope["path"], self.request_id)
            await self.send_error(ApiError("internal error in the gateway"))

    async def read_body(self) -> bytes:
        limit = settings.TOLLGATE["MAX_BODY_BYTES"]
        declared = self.headers.get(b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"request body exceeds the {limit} byte limit")
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"request body exceeds the {limit} byte limit")
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def handle(self, body: bytes) -> None:
        raise NotImplementedError

    def origin(self) -> tuple[str | None, bytes | None]:
        """Where the request came from (peer address, X-Forwarded-For): what failed
        authentications are counted against (accounts.auth_failures)."""
        client = self.scope.get("client")
        return (client[0] if client else None), self.headers.get(b"x-forwarded-for")

    async def client_gone(self) -> None:
        """Hook for subclasses that must account for abandoned requests."""

    def base_headers(self, content_type: bytes) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", content_type), (b"request-id", self.request_id.encode())]

    async def send_headers(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.response_started = True
        if not any(name == OVERHEAD_HEADER for name, _ in headers):
            own = (time.perf_counter() - self.started - self.upstream_seconds) * 1000
            headers = [*headers, (OVERHEAD_HEADER, f"{own:.2f}".encode())]
        await self.base_send({"type": "http.response.start", "status": status, "headers": headers})

    async def send_body(self, body: bytes, *, more: bool = False) -> None:
        await self.base_send({"type": "http.response.body", "body": body, "more_body": more})

    async def send_json(
        self, status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        headers = self.base_headers(b"application/json")
        headers.append((b"content-length", str(len(payload)).encode()))  # no chunk framing
        if extra:
            headers.extend(extra)
        await self.send_headers(status, headers)
        await self.send_body(payload)

    def error_response(self, err: GatewayError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Status, body and extra headers of `err` for this endpoint's clients (Anthropic's
        shape here; a surface's consumer answers in its own)."""
        return err.status, err.to_json(self.request_id), []

    async def send_error(self, err: GatewayError) -> None:
        if self.response_started:
            return  # a streaming response reports its own errors as SSE events
        status, body, extra = self.error_response(err)
        if status < 500:  # refused by the gateway itself (an upstream's 4xx is its own too)
            metrics.observe_refusal(endpoint=self.endpoint, status=status, error_type=err.type)
        extra = [(b"x-should-retry", b"true" if err.retryable else b"false"), *extra]
        extra += [(k.encode(), str(v).encode()) for k, v in err.headers.items()]
        await self.send_json(status, body, extra)


class NotFoundConsumer(GatewayConsumer):
    """Any other `/v1` path: an Anthropic-shaped 404 instead of an HTML page."""

    methods = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

    async def handle(self, body: bytes) -> None:
        from core.errors import NotFound

        raise NotFound(f"no such endpoint: {self.scope['method']} {self.scope['path']}")
