"""The usage record of one request, built from the pipeline's `Call` and what the consumer saw.

Building it is pure (no ORM, no I/O): the consumer calls `build` once, after the response,
and hands the record to the recorder. Strings are cut to their column sizes here, so a record
can never be refused by the database for its length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec

from gateway import ir
from gateway.errors import GatewayError
from gateway.usage import billing

if TYPE_CHECKING:
    from gateway.pipeline import Call

CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away before the answer"


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
    reasoning_tokens: int = 0
    estimated: bool = False
    cost_usd: Decimal = Decimal(0)
    billed: bool = False
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    overhead_ms: float | None = None
    error_type: str = ""
    streamed: bool = False

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


def outcome_of(call: Call, seen: Seen) -> billing.Outcome:
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


def build(call: Call, seen: Seen, policy: dict) -> UsageRecord:
    outcome = outcome_of(call, seen)
    billed = billing.is_billed(outcome, policy) and call.model is not None
    # Tokens are recorded whether billed or not (rate limits count them); cost only if billed.
    usage = tokens_used(seen, policy["chars_per_token"])
    latency = seen.finished - call.started
    return UsageRecord(
        request_id=call.request_id,
        started_at=call.started_at,
        finished_at=call.started_at + latency,
        status=_status(outcome),
        http_status=seen.http_status or _http_status(seen),
        **_who(call),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        estimated=usage.estimated,
        cost_usd=billing.cost_usd(usage, call.model.prices) if billed else Decimal(0),
        billed=billed,
        latency_ms=_ms(latency),
        ttfb_ms=_ms(seen.first_byte - call.started) if seen.first_byte else None,
        overhead_ms=None if seen.overhead_ms is None else round(seen.overhead_ms, 3),
        error_type=_error_type(outcome, seen)[:64],
        streamed=bool(call.body and call.body.stream),
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _who(call: Call) -> dict:
    """Tenant, key, public model and the route that served (or last failed)."""
    who: dict = {}
    if call.key is not None:
        who.update(tenant_id=call.key.tenant_id, key_id=call.key.key_id, key_prefix=call.key.prefix)
    if call.model is not None:
        who["model"] = call.model.name[:128]
    elif call.body is not None:
        who["model"] = call.body.model[:128]
    if call.target is not None:
        who.update(provider=call.target.provider_name, upstream_model=call.target.upstream_model)
    elif call.attempts:
        last = call.attempts[-1]
        who.update(provider=last.provider, upstream_model=last.upstream_model)
    who["provider"] = who.get("provider", "")[:64]
    who["upstream_model"] = who.get("upstream_model", "")[:200]
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
