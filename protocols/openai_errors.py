"""Gateway errors and rate limits as an OpenAI client expects them, for both OpenAI client
surfaces: Chat Completions and Responses (reference 2.7, 3.7).

One table from the gateway's error type (core/errors.py) to OpenAI's status, `type` and
`code`: the official SDK picks its exception class by status and retries 408/409/429/5xx, so
the status matters most. Bodies are `{"error": {"message", "type", "param", "code"}}`, with
the message scrubbed of credentials (core/redaction.py). Pure: the clock is passed in.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from core import redaction
from core.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Shape:
    status: int | None  # None: the gateway error's own status (400 or 405; 500 or 502)
    type: str
    code: str | None = None


ERRORS: dict[str, Shape] = {
    "invalid_request_error": Shape(None, "invalid_request_error"),
    "authentication_error": Shape(401, "invalid_request_error", "invalid_api_key"),
    "permission_error": Shape(403, "permission_error"),
    "not_found_error": Shape(404, "invalid_request_error"),  # `model_not_found` when it is one
    "request_too_large": Shape(413, "invalid_request_error", "request_too_large"),
    "rate_limit_error": Shape(429, "requests", "rate_limit_exceeded"),
    # A spent budget: a retry will not help, which OpenAI says with `insufficient_quota`.
    "billing_error": Shape(429, "insufficient_quota", "insufficient_quota"),
    "api_error": Shape(None, "server_error"),
    "timeout_error": Shape(504, "server_error", "timeout"),
    # OpenAI has no 529; 503 is what its SDK and OpenAI-compatible servers know as "overloaded".
    "overloaded_error": Shape(503, "service_unavailable_error"),
}
# Where OpenAI's SDKs read a response's request id (`response._request_id`).
REQUEST_ID_HEADER = b"x-request-id"
# A message that starts with a JSON path (`messages.1.content: ...`), as every decoder writes.
_PATH = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): ")
_INDEX = re.compile(r"\.(\d+)(?=\.|$)")
_MODEL = re.compile(r"\bmodel\b", re.IGNORECASE)
# Where the OpenAI SDKs read the request id (`_request_id`, `APIError.request_id`).
REQUEST_ID_HEADER = b"x-request-id"


def shape(error_type: str, status: int, message: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, OpenAI error object) for a gateway error's type, status and message."""
    row = ERRORS.get(error_type) or Shape(
        None, "server_error" if status >= 500 else "invalid_request_error"
    )
    code = row.code
    if error_type == "not_found_error" and _MODEL.search(message):
        code = "model_not_found"
    if row.type == "requests" and "token" in message.lower():
        row = Shape(row.status, "tokens", row.code)
    error = {
        "message": redaction.scrub(message),
        "type": row.type,
        "param": param(message),
        "code": code,
    }
    return row.status or status, error


def param(message: str) -> str | None:
    """The JSON path a message starts with, in OpenAI's notation (`messages[1].content`)."""
    match = _PATH.match(message)
    return _INDEX.sub(r"[\1]", match.group(1)) if match else None


def error(err: GatewayError, request_id: str) -> tuple[int, bytes]:
    """The status and body of `err`; the request id travels in the `x-request-id` header."""
    status, body = shape(err.type, err.status, err.message)
    return status, msgspec.json.encode({"error": body})


def duration(seconds: float) -> str:
    """A wait as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1s`, `6m0s`, `1h0m0s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def limit_headers(
    limits: list[tuple[str, int, int, str]], now: float | None = None
) -> list[tuple[bytes, bytes]]:
    """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` from (kind, limit, remaining,
    reset RFC 3339); of several limits of one kind, the one with the least room left."""
    now = time.time() if now is None else now
    tightest: dict[str, tuple[int, int, str]] = {}
    for kind, limit, remaining, reset in limits:
        if kind in ("requests", "tokens") and (
            kind not in tightest or remaining < tightest[kind][1]
        ):
            tightest[kind] = (limit, remaining, reset)
    headers: list[tuple[bytes, bytes]] = []
    for kind, (limit, remaining, reset) in tightest.items():
        try:
            wait = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp() - now
        except ValueError:
            wait = 0.0
        headers += [
            (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
            (f"x-ratelimit-remaining-{kind}".encode(), str(max(0, remaining)).encode()),
            (f"x-ratelimit-reset-{kind}".encode(), duration(wait).encode()),
        ]
    return headers
