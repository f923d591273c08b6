"""The usage record of one request, built from what the pipeline served and what was sent.

Building it is pure (no ORM, no I/O): the pipeline calls `build` once, after the response,
and hands the record to the recorder. Every string bound for the database goes through `clean`
here (NUL removed, lone surrogates replaced, cut to its column's size), so nothing a tenant
typed (a model name with a NUL in it, say) can make the database refuse a record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from core import ir, redaction
from core.errors import GatewayError
from core.target import Target
from gateway.usage import billing

CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away before the answer"
# Column sizes of gateway.models.UsageRecord (and DailyUsage.api_key_prefix); a test keeps them
# equal to the models' max_length (this module stays free of the ORM).
COLUMN_SIZES = {
    "request_id": 40,
    "status": 16,
    "key_prefix": 16,
    "model": 128,
    "provider": 64,
    "upstream_model": 200,
    "error_type": 64,
    "client_request_id": 128,
    "trace_id": 32,
    "upstream_request_id": 128,
}
MAX_ERROR_MESSAGE = 2000
MAX_WARNINGS = 50


class Captured(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A request's body and answer as kept for the request log, and for how many days."""

    request: str = ""
    response: str = ""
    truncated: bool = False
    days: int = 7


class UsageRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What is sent to the worker (msgpack). Times are epoch seconds; tenant/key may be None."""

    request_id: str
    started_at: float
    finished_at: float
    status: str  # gateway.models.UsageRecord.Status: ok, error, cancelled
    http_status: int
    tenant_id: int | None = None
    key_id: int | None = None
    key_prefix: str = ""
    model: str = ""
    provider: str = ""
    upstream_model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of cache_write_tokens, those written for one hour
    reasoning_tokens: int = 0
    estimated: bool = False
    cost_usd: Decimal = Decimal(0)
    billed: bool = False
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    overhead_ms: float | None = None
    error_type: str = ""
    streamed: bool = False
    endpoint: str = "messages"  # gateway.models.UsageRecord.Endpoint
    # The request log: what happened on the way (see gateway.models.UsageRecord).
    error_message: str = ""
    client_request_id: str = ""
    trace_id: str = ""
    upstream_request_id: str = ""
    attempts: list[dict] = []
    warnings: list[str] = []
    cost_parts: dict[str, str] = {}
    # The tenant's body capture (Tenant.capture_bodies): redacted, each cut to its size cap.
    captured: Captured | None = None

    @property
    def tokens(self) -> int:
        """Input (cached or not) plus output: what tokens-per-minute limits count."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.output_tokens
        )


@dataclass(slots=True)
class Served:
    """What the pipeline knows of a finished request that its record keeps (a narrow view of
    the pipeline's `Call`, built by `Call.served`)."""

    request_id: str
    started: float  # perf_counter
    started_at: float  # wall clock
    endpoint: str = "messages"
    streamed: bool = False
    key: Any = None  # accounts.keys.KeyInfo, None before authentication
    model: str = ""  # the resolved model's name, else what the client typed
    prices: Any = None  # the resolved model's prices; None: no model, nothing billed
    target: Target | None = None  # the route that answered
    attempts: list = field(default_factory=list)  # gateway.pipeline.attempts.Attempt
    trace: Any = None  # gateway.tracing.Trace
    upstream_request_id: str | None = None  # the answering provider's id for the call
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Seen:
    """What the consumer observed while serving the request."""

    finished: float  # perf_counter
    http_status: int | None = None  # the status sent, None if nothing was sent
    error: GatewayError | None = None  # raised before or instead of the answer
    stream_error: str | None = None  # error type of an SSE `error` event we sent
    disconnected: bool = False
    usage: ir.Usage | None = None
    completed: bool = False  # the upstream's final usage arrived (answer or stream end)
    output_chars: int = 0
    first_byte: float | None = None  # perf_counter when the first byte went out
    overhead_ms: float | None = None


def outcome_of(call: Served, seen: Seen) -> billing.Outcome:
    if seen.disconnected:
        return "client_disconnect"
    if seen.stream_error is not None:
        return "upstream_error_after_first_byte"
    if seen.error is None:
        return "ok"
    if not call.attempts:
        return "gateway_rejection"
    return "upstream_client_error" if seen.error.status < 500 else "upstream_error"


def tokens_used(seen: Seen, chars_per_token: int) -> ir.Usage:
    """The upstream's usage; for a reply cut short, output estimated from what was streamed."""
    usage = seen.usage or ir.Usage()
    if not seen.completed:
        guess = billing.estimate_output_tokens(seen.output_chars, chars_per_token)
        if guess > usage.output_tokens:
            usage = msgspec.structs.replace(usage, output_tokens=guess, estimated=True)
    return usage


def build(call: Served, seen: Seen, policy: dict) -> UsageRecord:
    outcome = outcome_of(call, seen)
    billed = billing.is_billed(outcome, policy) and call.prices is not None
    # Tokens are recorded whether billed or not (rate limits count them); cost only if billed.
    usage = tokens_used(seen, policy["chars_per_token"])
    latency = seen.finished - call.started
    parts = billing.cost_parts(usage, call.prices) if billed else {}
    return UsageRecord(
        request_id=clean(call.request_id, COLUMN_SIZES["request_id"]),
        started_at=call.started_at,
        finished_at=call.started_at + latency,
        status=_status(outcome),
        http_status=seen.http_status or _http_status(seen),
        **_who(call),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        cache_write_1h_tokens=billing.hour_writes(usage),
        reasoning_tokens=usage.reasoning_tokens,
        estimated=usage.estimated,
        cost_usd=billing.cost_usd(usage, call.prices, parts) if billed else Decimal(0),
        cost_parts={
            kind: str(cost.quantize(billing.QUANTUM)) for kind, cost in parts.items() if cost
        },
        billed=billed,
        latency_ms=_ms(latency),
        ttfb_ms=_ms(seen.first_byte - call.started) if seen.first_byte else None,
        overhead_ms=None if seen.overhead_ms is None else round(seen.overhead_ms, 3),
        error_type=clean(_error_type(outcome, seen), COLUMN_SIZES["error_type"]),
        streamed=call.streamed,
        endpoint=call.endpoint,
        **_log(call, seen),
    )


def _log(call: Served, seen: Seen) -> dict:
    """The request log's fields: attempts, correlation ids, warnings, the error's message."""
    log: dict = {
        "attempts": [
            {
                "provider": clean(a.provider, COLUMN_SIZES["provider"]),
                "upstream_model": clean(a.upstream_model, COLUMN_SIZES["upstream_model"]),
                "status": a.status,
                "latency_ms": round(a.latency_ms, 3),
                "error_type": a.error_type,
                "error_message": clean(a.error_message, MAX_ERROR_MESSAGE),
                "upstream_request_id": a.upstream_request_id,
            }
            for a in call.attempts
        ],
        "warnings": [clean(w, 500) for w in call.warnings[:MAX_WARNINGS]],
    }
    if call.trace is not None:
        log["client_request_id"] = clean(call.trace.client_request_id, 128)
        log["trace_id"] = call.trace.trace_id
    if call.upstream_request_id:
        log["upstream_request_id"] = call.upstream_request_id
    elif call.attempts and call.attempts[-1].upstream_request_id:
        log["upstream_request_id"] = call.attempts[-1].upstream_request_id
    error = seen.error.message if seen.error is not None else seen.stream_error or ""
    if error:
        log["error_message"] = clean(redaction.scrub(error), MAX_ERROR_MESSAGE)
    return log


def clean(value: str, size: int) -> str:
    """`value` as PostgreSQL stores it in a column of `size` characters: without NUL (a text
    field refuses it), lone surrogates replaced by U+FFFD (not encodable), at most `size` long."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    value = value[:size]
    if value.isascii():
        return value
    # UTF-16 with surrogatepass joins a split pair and leaves a lone half for "replace".
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _who(call: Served) -> dict:
    """Tenant, key, public model and the route that served (or last failed)."""
    who: dict = {}
    if call.key is not None:
        who.update(tenant_id=call.key.tenant_id, key_id=call.key.key_id, key_prefix=call.key.prefix)
    if call.model:
        who["model"] = call.model  # unresolved: what the client typed, anything at all
    if call.target is not None:
        who.update(provider=call.target.provider_name, upstream_model=call.target.upstream_model)
    elif call.attempts:
        last = call.attempts[-1]
        who.update(provider=last.provider, upstream_model=last.upstream_model)
    for name in ("key_prefix", "model", "provider", "upstream_model"):
        if name in who:
            who[name] = clean(who[name], COLUMN_SIZES[name])
    return who


def _status(outcome: billing.Outcome) -> str:
    if outcome == "ok":
        return "ok"
    return "cancelled" if outcome == "client_disconnect" else "error"


def _http_status(seen: Seen) -> int:
    if seen.error is not None:
        return seen.error.status
    return CLIENT_CLOSED_REQUEST if seen.disconnected else 500


def _error_type(outcome: billing.Outcome, seen: Seen) -> str:
    if outcome in ("ok", "client_disconnect"):
        return ""
    if seen.stream_error is not None:
        return seen.stream_error
    return seen.error.type if seen.error is not None else ""


def now_epoch(perf_started: float) -> float:
    """The wall-clock time at which a perf_counter() reading was taken."""
    return time.time() - (time.perf_counter() - perf_started)
