"""OpenAI's error shape, for an OpenAI Chat upstream (and the Responses API, which shares it). Pure.

An error body is `{"error": {"message", "type", "param", "code"}}` (reference 2.7): its message
is read by protocols/upstream_errors.py, its code and type here; a stream's error chunk carries
the same object.
"""

from __future__ import annotations

from typing import Any

from core import ir

# OpenAI's error `code` or `type` values that blame the gateway's own key, account or region,
# not the request (any 401 does too); see core/errors.py VERDICTS.
ERROR_KINDS = {
    "invalid_api_key": "credential",
    "unsupported_country_region_territory": "credential",
    "insufficient_quota": "account",
}


def error_codes(body: Any) -> list[Any]:
    """`{"error": {"message", "type", "param", "code"}}` (reference 2.7): code, then type."""
    error = body.get("error") if isinstance(body, dict) else None
    return [error.get("code"), error.get("type")] if isinstance(error, dict) else []


# A stream's error chunk typed by the words of its type, code and status (servers differ in
# which they fill): the first row with a word found wins; none, an `api_error`.
STREAM_ERROR_WORDS = (
    (("overload", "unavailable", "slow_down", "502", "503", "529"), "overloaded_error"),
    (("rate_limit", "429"), "rate_limit_error"),
)


def stream_error(error: Any) -> ir.StreamError:
    """A `{"error": …}` chunk, typed as reference 5.11.5 asks."""
    if not isinstance(error, dict):
        return ir.StreamError("api_error", str(error) or "upstream stream error")
    said = " ".join(str(error.get(k) or "") for k in ("type", "code", "status")).lower()
    message = str(error.get("message") or "upstream stream error")
    found = (kind for words, kind in STREAM_ERROR_WORDS if any(w in said for w in words))
    return ir.StreamError(next(found, "api_error"), message)
