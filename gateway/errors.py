"""One error hierarchy for the whole gateway, mapped to Anthropic error shapes in one place.

Every failure a client can see is a `GatewayError`: a type, an HTTP status and a message.
`retryable` feeds the `x-should-retry` header the official SDKs honour.
"""

from __future__ import annotations

import msgspec

from gateway import redaction


class GatewayError(Exception):
    status = 500
    type = "api_error"
    retryable = True
    # True when another route might succeed where this attempt failed.
    fallback = False

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict:
        return {
            "type": "error",
            # An upstream's message may echo a credential it was sent.
            "error": {"type": self.type, "message": redaction.scrub(self.message)},
            "request_id": request_id,
        }

    def to_json(self, request_id: str | None = None) -> bytes:
        return msgspec.json.encode(self.body(request_id))


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    retryable = False


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    retryable = False


class BillingError(GatewayError):
    status = 402
    type = "billing_error"
    retryable = False


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    retryable = False


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    retryable = False


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    retryable = False


class RequestTooLarge(GatewayError):
    status = 413
    type = "request_too_large"
    retryable = False


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"


class ApiError(GatewayError):
    status = 500
    type = "api_error"


class TimeoutError_(GatewayError):
    status = 504
    type = "timeout_error"


class Overloaded(GatewayError):
    status = 529
    type = "overloaded_error"


class UpstreamError(GatewayError):
    """An upstream answered with an error; `fallback` says whether another route may help."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str,
        fallback: bool,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type
        self.fallback = fallback
        self.retryable = fallback
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        if retry_after is not None:
            self.headers["retry-after"] = str(max(1, round(retry_after)))


def upstream_error(
    upstream_status: int, message: str, *, retry_after: float | None = None
) -> UpstreamError:
    """Map an upstream HTTP status to what the client sees (reference section 5.14)."""
    s = upstream_status
    if s in (400, 422):
        return UpstreamError(
            message, status=400, type="invalid_request_error", fallback=False, upstream_status=s
        )
    if s == 413:
        return UpstreamError(
            message, status=413, type="request_too_large", fallback=False, upstream_status=s
        )
    if s in (401, 403, 404):
        # Our credential or route is wrong, not the tenant's request: another route may work.
        return UpstreamError(
            f"upstream refused the gateway's request ({s})",
            status=500,
            type="api_error",
            fallback=True,
            upstream_status=s,
        )
    if s == 429 or s in (502, 503, 529):
        return UpstreamError(
            message or "upstream overloaded",
            status=529,
            type="overloaded_error",
            fallback=True,
            retry_after=retry_after,
            upstream_status=s,
        )
    if s in (408, 504):
        return UpstreamError(
            message or "upstream timed out",
            status=504,
            type="timeout_error",
            fallback=True,
            upstream_status=s,
        )
    if s == 409 or s >= 500:
        return UpstreamError(
            message or "upstream error",
            status=500,
            type="api_error",
            fallback=True,
            upstream_status=s,
        )
    return UpstreamError(
        message, status=400, type="invalid_request_error", fallback=False, upstream_status=s
    )
