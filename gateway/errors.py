"""One error hierarchy for the whole gateway, mapped to Anthropic error shapes in one place.

Every failure a client can see is a `GatewayError`: a type, an HTTP status and a message.
`retryable` feeds the `x-should-retry` header the official SDKs honour.

What a failed attempt says about its route is typed too, because routes are shared by every
tenant: `fallback` says another route may succeed, `provider_fault` that the provider itself
failed (a connect error, a timeout, 5xx, 429/529, an unreadable answer): only those count
against the route's circuit breaker and are retried on the same route. A `RouteRefusal`
(decided before any network call) and an upstream 4xx caused by the client's content say
nothing about the provider.
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
    # True when the provider failed: a breaker failure, and a same-route retry may help.
    provider_fault = False

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


class RouteRefusal(InvalidRequest):
    """This route cannot carry the request (content or a field it has no way to send).

    Decided while building the upstream request, before any network call: never retried,
    never counted by the route's breaker; the next route may carry it, and when none can the
    client gets this 400 naming what could not be sent.
    """

    fallback = True

    def __init__(self, feature: str, provider: str):
        super().__init__(f"{feature} is not supported by provider `{provider}`")
        self.feature = feature
        self.provider = provider


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


class InvalidAnswer(GatewayError):
    """The upstream answered something the gateway cannot read (not JSON, not its shape).

    A provider fault when the gateway alone shaped the request; when the client's own fields
    went upstream with it (provider options, fields passed through), the attempt loop counts
    it as the request's doing instead (gateway/attempts.py).
    """

    status = 502
    type = "api_error"
    fallback = True
    provider_fault = True


class UpstreamError(GatewayError):
    """An upstream answered with an error; `fallback` says whether another route may help,
    `provider_fault` whether the provider failed (see the module docstring)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str,
        fallback: bool,
        fault: bool = False,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type
        self.fallback = fallback
        self.provider_fault = fault
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
    if s in (401, 403, 404, 409):
        # Another route may work. Only 401 (the gateway's own credential refused) says the route
        # is broken: a client can earn a 403, 404 or 409 with what it sends (a cache or file id
        # it may not use, a beta it may not have), so those never count against the route.
        return UpstreamError(
            f"upstream refused the gateway's request ({s})",
            status=500,
            type="api_error",
            fallback=True,
            fault=s == 401,
            upstream_status=s,
        )
    if s == 429 or s in (502, 503, 529):
        return UpstreamError(
            message or "upstream overloaded",
            status=529,
            type="overloaded_error",
            fallback=True,
            fault=True,
            retry_after=retry_after,
            upstream_status=s,
        )
    if s in (408, 504):
        return UpstreamError(
            message or "upstream timed out",
            status=504,
            type="timeout_error",
            fallback=True,
            fault=True,
            upstream_status=s,
        )
    if s >= 500:
        return UpstreamError(
            message or "upstream error",
            status=500,
            type="api_error",
            fallback=True,
            fault=True,
            upstream_status=s,
        )
    return UpstreamError(
        message, status=400, type="invalid_request_error", fallback=False, upstream_status=s
    )
