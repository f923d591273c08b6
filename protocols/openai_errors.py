"""The gateway's errors and rate limits in OpenAI's words: shared by the OpenAI client surfaces
(Chat Completions and Responses, reference 2.7 and 3.7).

A `GatewayError` becomes `{"error": {"message", "type", "param", "code"}}` with OpenAI's status
for that kind of failure; `param` is the JSON path the message starts with (the decoders'
`input.3.arguments: ...`). Limits become OpenAI's `x-ratelimit-*` headers. Pure.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import msgspec

from core import redaction
from core.errors import GatewayError

# The gateway's error type -> (status or None for the error's own, OpenAI type, code).
ERRORS: dict[str, tuple[int | None, str, str | None]] = {
    "invalid_request_error": (None, "invalid_request_error", None),  # 400, or 405
    "authentication_error": (401, "invalid_request_error", "invalid_api_key"),
    "permission_error": (403, "permission_error", None),
    "not_found_error": (404, "invalid_request_error", None),
    "request_too_large": (413, "invalid_request_error", "request_too_large"),
    "rate_limit_error": (429, "rate_limit_error", "rate_limit_exceeded"),
    "billing_error": (429, "insufficient_quota", "insufficient_quota"),
    "api_error": (None, "server_error", None),  # 500, or 502 for an unreadable upstream
    "timeout_error": (504, "timeout_error", "timeout"),
    "overloaded_error": (503, "service_unavailable_error", "server_is_overloaded"),
}
_DEFAULT = (500, "server_error", None)
# A message that starts with a JSON path names the field at fault (`tools.2.name: ...`).
_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): ")
_encode = msgspec.json.Encoder()


def error_json(err: GatewayError) -> dict:
    _, kind, code = ERRORS.get(err.type, _DEFAULT)
    message = redaction.scrub(err.message)  # an upstream's message may echo a credential
    m = _PARAM.match(err.message)
    if code is None and err.type == "not_found_error" and "model" in err.message.lower():
        code = "model_not_found"
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": m.group(1) if m else None,
            "code": code,
        }
    }


def status(err: GatewayError) -> int:
    return ERRORS.get(err.type, _DEFAULT)[0] or err.status


def error(err: GatewayError, request_id: str) -> tuple[int, bytes]:
    """OpenAI's status and body; the request id travels in the `x-request-id` header only,
    as OpenAI's does (its error body has no place for it)."""
    return status(err), _encode.encode(error_json(err))


def reset_duration(reset: str, now: float | None = None) -> str:
    """An RFC 3339 instant as OpenAI's reset header says it: the wait, `1s`, `6m0s`, `1h2m3s`."""
    try:
        at = datetime.fromisoformat(reset).timestamp()
    except ValueError:
        return "0s"
    seconds = max(0, round(at - (time.time() if now is None else now)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def limit_headers(
    limits: list[tuple[str, int, int, str]], now: float | None = None
) -> list[tuple[bytes, bytes]]:
    """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` from (kind, limit, remaining,
    reset RFC 3339)."""
    headers = []
    for kind, limit, remaining, reset in limits:
        suffix = kind.encode()
        headers += [
            (b"x-ratelimit-limit-" + suffix, str(limit).encode()),
            (b"x-ratelimit-remaining-" + suffix, str(max(0, remaining)).encode()),
            (b"x-ratelimit-reset-" + suffix, reset_duration(reset, now).encode()),
        ]
    return headers
