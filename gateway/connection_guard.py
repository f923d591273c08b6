"""What both servers enforce on a client connection before the application sees its request.

Nobody needs a key to open a connection, so nothing a connection does before its request is
whole may cost the process more than a bounded amount, for more than a bounded time:

- a request head (request line and headers) is at most `max_head_bytes`: past it, 431;
- it must arrive within `head_timeout` of the connection opening, or of its first byte after
  a kept-alive response: past it, 408 (a connection that never sends anything gets it too);
- a body may pause at most `body_timeout` between two chunks and, once that long has passed,
  must keep an average of `body_min_rate` bytes a second (a body trickled a byte at a time is
  slow too): past either, 408; past `max_body_bytes`, 413;
- a client that reads nothing of a response for `send_timeout` is dropped (both servers make
  the application wait while a client's socket buffer is full: that is the backpressure that
  also stops the upstream read; this timeout ends the wait);
- an idle kept-alive connection is closed after `keepalive_timeout`;
- at most `max_pending` connections per process are waiting for a whole request (new, still
  sending, or idle between requests): past it, the oldest of them is closed (`Pending`).

Refusals, a malformed request's 400 included, are JSON in the shape of the client surface the
request's path names (OpenAI's for its endpoints, Anthropic's otherwise: `refusal`).
gateway/server.py (uvicorn, `make serve`) and gateway/devserver.py (daphne, `make run`) apply
these rules with their own hooks.
"""

from __future__ import annotations

import http
import logging
import resource
from dataclasses import dataclass
from typing import Protocol

from core import ids
from core.errors import GatewayError, InvalidRequest, RequestTooLarge
from protocols import openai_errors

log = logging.getLogger("tollgate.server")

# Paths whose clients are OpenAI SDKs (gateway/api/routing.py SURFACES): a refusal of the server
# itself answers them in OpenAI's error shape, which their SDKs read (param, code).
OPENAI_PATHS = (b"/v1/chat/completions", b"/v1/responses")

# After a refusal a server half-closes and discards what the client still sends for this long
# before it closes, so the client can read the answer (a close with unread input resets the
# connection, and a reset can destroy the answer on its way).
LINGER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_head_bytes: int
    head_timeout: float
    body_timeout: float
    body_min_rate: int
    max_body_bytes: int
    send_timeout: float
    keepalive_timeout: float
    max_pending: int

    @classmethod
    def from_settings(cls) -> ConnectionLimits:
        from django.conf import settings

        tollgate = settings.TOLLGATE
        max_pending = tollgate["MAX_PENDING_CONNECTIONS"]
        # Waiting connections may take half the descriptors the process may open (`ulimit -n`,
        # often 1,024, 256 on macOS): the other half stays for requests, upstreams and files.
        descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if descriptors != resource.RLIM_INFINITY and max_pending > descriptors // 2:
            log.warning(
                "TOLLGATE_MAX_PENDING_CONNECTIONS=%d lowered to %d: `ulimit -n` is %d",
                max_pending,
                descriptors // 2,
                descriptors,
            )
            max_pending = max(1, descriptors // 2)
        return cls(
            max_head_bytes=tollgate["MAX_HEADER_BYTES"],
            head_timeout=tollgate["HEADER_TIMEOUT_SECONDS"],
            body_timeout=tollgate["BODY_TIMEOUT_SECONDS"],
            body_min_rate=tollgate["BODY_MIN_RATE"],
            max_body_bytes=tollgate["MAX_BODY_BYTES"],
            send_timeout=tollgate["SEND_TIMEOUT_SECONDS"],
            keepalive_timeout=tollgate["KEEPALIVE_TIMEOUT_SECONDS"],
            max_pending=max_pending,
        )

    def body_deadline(self, started: float, last_chunk: float, received: int) -> float:
        """When a body still arriving has been too slow: `body_timeout` after its last chunk,
        or once it falls below `body_min_rate` on average after its first `body_timeout`."""
        return min(
            last_chunk + self.body_timeout,
            started + self.body_timeout + received / self.body_min_rate,
        )


class Droppable(Protocol):
    def drop(self) -> None:
        """Close the connection now, without an answer."""


class Pending:
    """One process's connections waiting for a whole request, oldest first, at most `limit`.

    When one more would exceed the limit, the oldest is dropped rather than the newcomer
    refused: refusing newcomers would let whoever holds `limit` slow connections (and renews
    them within the timeouts) lock everyone else out, while dropping the oldest lets a client
    that sends its request at once (every real client) in, and makes a flood of slow
    connections cost its sender a new connection for each one it holds. nginx does the same
    with its idle and waiting connections when it runs out.
    """

    __slots__ = ("_waiting", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: dict[Droppable, None] = {}  # insertion order: oldest first

    def add(self, connection: Droppable) -> None:
        waiting = self._waiting
        waiting[connection] = None
        if len(waiting) > self.limit:
            oldest = next(iter(waiting))
            del waiting[oldest]
            oldest.drop()

    def discard(self, connection: Droppable) -> None:
        self._waiting.pop(connection, None)

    def __len__(self) -> int:
        return len(self._waiting)


class RequestTimeout(InvalidRequest):
    # Anthropic documents no type for 408 and says invalid_request_error may stand for any
    # other 4XX; 408 itself tells the SDKs (which retry 408) that it was a timeout.
    status = 408


class HeadTooLarge(InvalidRequest):
    status = 431  # invalid_request_error, as for 408


def malformed() -> GatewayError:
    return InvalidRequest("malformed HTTP request")


def head_too_large(limits: ConnectionLimits) -> GatewayError:
    return HeadTooLarge(f"request head exceeds the {limits.max_head_bytes} byte limit")


def head_timeout(limits: ConnectionLimits) -> GatewayError:
    return RequestTimeout(f"request head not received within {limits.head_timeout:g} s")


def body_timeout(limits: ConnectionLimits) -> GatewayError:
    return RequestTimeout(
        f"request body too slow: a pause over {limits.body_timeout:g} s, or under"
        f" {limits.body_min_rate} bytes/s on average after the first {limits.body_timeout:g} s"
    )


def body_too_large(limits: ConnectionLimits) -> GatewayError:
    return RequestTooLarge(f"request body exceeds the {limits.max_body_bytes} byte limit")


def refusal(err: GatewayError, path: bytes | None = None) -> bytes:
    """A whole HTTP/1.1 response carrying `err` in the error shape of the surface at `path`
    (the request target, when its line was read), closing the connection: what a server
    writes itself when it refuses a request it will not read."""
    request_id = ids.request_id()
    body, ids_header = err.to_json(request_id), ""
    if path is not None and path.split(b"?", 1)[0].rstrip(b"/") in OPENAI_PATHS:
        body = openai_errors.error(err, request_id)[1]
        ids_header = f"x-request-id: {request_id}\r\n"
    head = (
        f"HTTP/1.1 {err.status} {http.HTTPStatus(err.status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"request-id: {request_id}\r\n{ids_header}"
        f"x-should-retry: {'true' if err.retryable else 'false'}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body
