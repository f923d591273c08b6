"""One error hierarchy for the whole gateway, mapped to Anthropic error shapes in one place.

Every failure a client can see is a `GatewayError`: a type, an HTTP status and a message.
`retryable` feeds the `x-should-retry` header the official SDKs honour.

What a failed attempt says about its route is typed too, because routes are shared by every
tenant: `fallback` says another route may succeed, `provider_fault` that the provider itself
failed (a connect error, a timeout, 5xx, 429/529, an unreadable answer, our credential or
account refused): only those count against the route's circuit breaker, and those that may
pass (`transient`: all but a refused credential or account) are retried on the same route. A
`RouteRefusal` (decided before any network call) and an upstream 4xx caused by the client's
content say nothing about the provider. Which upstream error is which is one table
(`VERDICTS`), fed by the provider's error details where it gives them (each adapter's
`ERROR_KINDS`), by its status otherwise.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import msgspec

from core import redaction


class GatewayError(Exception):
    status = 500
    type = "api_error"
    retryable = True
    # True when another route might succeed where this attempt failed.
    fallback = False
    # True when the provider failed: a breaker failure.
    provider_fault = False
    # With `provider_fault`: a same-route retry may help (not when our credential was refused).
    transient = True
    # Rate limits as they stand after a refusal, (kind, limit, remaining, reset), which the
    # client's surface turns into its headers.
    limits: list[tuple[str, int, int, str]] | None = None

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
    it as the request's doing instead (gateway/pipeline/attempts.py).
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
        retryable: bool | None = None,
        transient: bool = True,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type
        self.fallback = fallback
        self.provider_fault = fault
        self.retryable = fallback if retryable is None else retryable
        self.transient = transient
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        if retry_after is not None:
            self.headers["retry-after"] = str(max(1, round(retry_after)))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one kind of upstream error means, for the client and for the route (5.14)."""

    status: int  # what the client gets once no route is left
    type: str
    _: KW_ONLY
    fallback: bool  # another route may succeed
    retryable: bool  # `x-should-retry`: the same request may succeed later
    fault: bool  # the provider, or our account with it, failed: counts against the breaker
    transient: bool  # a same-route retry may succeed
    # The client's message: the upstream's own (None), or this text with the status and the
    # provider's code (an upstream's words about our credential are not the tenant's business).
    message: str | None = None


# Who is to blame for an upstream error, as data. Adapters name the kind from the provider's
# error details (`ERROR_KINDS` in each adapter); the status decides when they say nothing.
# `credential` and `account` are the gateway's own key, project or billing: nothing a tenant
# sends can earn them, so they count against the route, and a retry of the same request will
# not help (`x-should-retry: false`). A 403, 404 or 409 without such a detail may be the
# request's doing (a cache or file id it may not use, a beta it may not have): another route
# may serve it, but it never counts.
_OURS = "upstream refused the gateway's"
VERDICTS: dict[str, Verdict] = {
    # The client's content: returned at once with the upstream's message.
    "request": Verdict(
        400, "invalid_request_error", fallback=False, retryable=False, fault=False, transient=False
    ),
    "too_large": Verdict(
        413, "request_too_large", fallback=False, retryable=False, fault=False, transient=False
    ),
    # Our key or project, our account (quota, billing).
    "credential": Verdict(
        500, "api_error", fallback=True, retryable=False, fault=True, transient=False,
        message=f"{_OURS} credential",
    ),
    "account": Verdict(
        500, "api_error", fallback=True, retryable=False, fault=True, transient=False,
        message=f"{_OURS} account",
    ),
    # A 403/404 (409) without details: the route's configuration, or the request's doing.
    "refused": Verdict(
        500, "api_error", fallback=True, retryable=False, fault=False, transient=False,
        message=f"{_OURS} request",
    ),
    "conflict": Verdict(
        500, "api_error", fallback=True, retryable=True, fault=False, transient=False,
        message=f"{_OURS} request",
    ),
    # The provider failed: a moment later it may not.
    "overloaded": Verdict(
        529, "overloaded_error", fallback=True, retryable=True, fault=True, transient=True
    ),
    "timeout": Verdict(
        504, "timeout_error", fallback=True, retryable=True, fault=True, transient=True
    ),
    "server": Verdict(500, "api_error", fallback=True, retryable=True, fault=True, transient=True),
}  # fmt: skip
STATUS_KINDS = {
    400: "request",
    401: "credential",
    402: "account",
    403: "refused",
    404: "refused",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    422: "request",
    429: "overloaded",
    502: "overloaded",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}
DEFAULT_MESSAGES = {"overloaded": "upstream overloaded", "timeout": "upstream timed out"}
# A stream's error event (before the stream was answered), by its error type: the VERDICTS kind
# it is. An upstream's rate limit is on the gateway's account, so the client sees it overloaded.
STREAM_ERROR_KINDS = {
    "invalid_request_error": "request",
    "request_too_large": "too_large",
    "rate_limit_error": "overloaded",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
    "api_error": "server",
}
# A type not listed is the provider's word, kept as the type: another route may serve the
# request, and it does not count against this one.
_UNKNOWN_STREAM_ERROR = Verdict(
    500, "", fallback=True, retryable=True, fault=False, transient=False
)


def status_kind(upstream_status: int) -> str:
    kind = STATUS_KINDS.get(upstream_status)
    if kind is None:
        kind = "server" if upstream_status >= 500 else "request"
    return kind


def stream_error(error_type: str, message: str) -> GatewayError:
    """What an upstream stream's error event means (STREAM_ERROR_KINDS), its message kept."""
    kind = STREAM_ERROR_KINDS.get(error_type)
    verdict = VERDICTS[kind] if kind is not None else _UNKNOWN_STREAM_ERROR
    err = GatewayError(message)
    err.status, err.type = verdict.status, verdict.type or error_type
    err.fallback, err.retryable = verdict.fallback, verdict.retryable
    err.provider_fault = verdict.fault
    return err


def upstream_error(
    upstream_status: int,
    message: str,
    *,
    retry_after: float | None = None,
    kind: str | None = None,
    code: str = "",
) -> UpstreamError:
    """Map an upstream error to what the client sees (reference section 5.14).

    `kind` is what the provider's error details say (a key of VERDICTS); without one the status
    decides. `code` is the provider's own name for the error, shown with a fixed message.
    """
    kind = kind or status_kind(upstream_status)
    verdict = VERDICTS[kind]
    if verdict.message is not None:
        detail = f"{upstream_status} {code}" if code else str(upstream_status)
        message = f"{verdict.message} ({detail})"
    else:
        message = message or DEFAULT_MESSAGES.get(kind, "upstream error")
    return UpstreamError(
        message,
        status=verdict.status,
        type=verdict.type,
        fallback=verdict.fallback,
        fault=verdict.fault,
        retryable=verdict.retryable,
        transient=verdict.transient,
        retry_after=retry_after if verdict.transient else None,
        upstream_status=upstream_status,
    )
