"""Gemini's error shape, for a Gemini upstream (reference 4.6-4.7). Pure.

An error body is `{"error": {"code", "message", "status", "details"}}`, sometimes wrapped in a
one-element array; its `details` name the reason (`google.rpc.ErrorInfo`) and the wait
(`RetryInfo`). A stream's error chunk carries the same object.
"""

from __future__ import annotations

from typing import Any

from core import ir
from core.errors import UpstreamError
from protocols import upstream_errors

OVERLOADED = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
# A stream's error chunk typed by its status name or its HTTP code (overloaded wins over timeout
# when they disagree); neither known, an `api_error`.
STREAM_ERRORS: dict[Any, str] = {
    **dict.fromkeys(OVERLOADED, "overloaded_error"),
    429: "overloaded_error",
    503: "overloaded_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    504: "timeout_error",
}
# Error details that blame the gateway's own key, project or billing, not the request (Gemini
# answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID), and status names that
# tell more than the HTTP status (see core/errors.py VERDICTS).
# fmt: off
ERROR_KINDS = {
    **dict.fromkeys((
        "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED", "ACCESS_TOKEN_EXPIRED",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "CREDENTIALS_MISSING", "CONSUMER_SUSPENDED",
        "CONSUMER_INVALID", "SERVICE_DISABLED", "USER_PROJECT_DENIED",
    ), "credential"),
    "BILLING_DISABLED": "account",
    # Region or billing of the project (reference 4.7), but also the state of a cache or file
    # the request names: another route may serve it, and it never counts.
    "FAILED_PRECONDITION": "refused",
}
# fmt: on


def stream_error(error: Any) -> ir.StreamError:
    """An `{"error": {code, message, status}}` chunk, typed as reference 5.11.5 asks."""
    if not isinstance(error, dict):
        return ir.StreamError("api_error", str(error) or "upstream stream error")
    status = str(error.get("status") or "").upper()
    message = str(error.get("message") or "upstream stream error")
    code = error.get("code")
    said = {
        STREAM_ERRORS.get(status),
        STREAM_ERRORS.get(code if type(code) in (int, float) else None),
    }
    kind = next((k for k in ("overloaded_error", "timeout_error") if k in said), "api_error")
    return ir.StreamError(kind, message)


def retry_delay(body: Any) -> float | None:
    """Gemini's `RetryInfo.retryDelay` ("37s") from an error body (reference 4.7)."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            try:
                return float(str(detail.get("retryDelay", "")).removesuffix("s"))
            except ValueError:
                return None
    return None


def unwrap(body: Any) -> Any:
    """Error bodies sometimes come wrapped in a one-element array (reference 4.6)."""
    return body[0] if isinstance(body, list) and body else body


def error_message(body: Any) -> str:
    """Gemini's `{"error": {"code", "message", "status", "details"}}`."""
    return upstream_errors.error_message(unwrap(body))


def error_codes(body: Any) -> list[Any]:
    """The `google.rpc.ErrorInfo` reasons (API_KEY_INVALID…), then the status name."""
    body = unwrap(body)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return []
    details = error.get("details")
    reasons = [
        d.get("reason")
        for d in (details if isinstance(details, list) else [])
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("ErrorInfo")
    ]
    return [*reasons, error.get("status")]


def error_retry_after(body: Any) -> float | None:
    return retry_delay(unwrap(body))


def error_from(status: int, body: Any) -> UpstreamError:
    """An error body as the upstream error it says (also one answered with HTTP 200)."""
    return upstream_errors.error_from(
        status,
        body,
        message_of=error_message,
        codes_of=error_codes,
        retry_after_of=error_retry_after,
        kinds=ERROR_KINDS,
    )
