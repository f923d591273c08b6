"""Response extras a client asks for: `usage: true`, `meta: true`, `echo_upstream_request`,
`debug`. Never forwarded upstream; credentials never appear in them: whatever they show of
the upstream exchange goes through the one redaction rule (core/redaction.py) first.

Non-streaming responses carry them as fields of the message (`usage.cost_usd`,
`usage.pricing`, `meta`, `upstream_request`, `debug`); streams carry the same fields on the
final `message_delta` event, which the official SDKs parse without complaint. Money is a
Decimal rendered as a string, so it is exact.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from core import ir, redaction
from gateway.usage import billing


def _usd(amount: Decimal) -> str:
    return format(amount.normalize(), "f") if amount else "0"


def pricing(usage: ir.Usage, prices) -> dict[str, Any]:
    """Cost of this request, one line per meter, from the model's prices per million tokens."""
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    meters = [
        ("input", usage.input_tokens, prices.input),
        ("output", usage.output_tokens - reasoning, prices.output),
        ("cache_read", usage.cache_read_input_tokens, prices.cache_read),
        ("cache_write", usage.cache_creation_input_tokens, prices.cache_write),
        ("reasoning", reasoning, billing.reasoning_price(prices)),
    ]
    lines = [
        {
            "meter": meter,
            "quantity": quantity,
            "unit_price_per_mtok_usd": _usd(price),
            "cost_usd": _usd(quantity * price / billing.MTOK),
        }
        for meter, quantity, price in meters
    ]
    if usage.web_search_requests:
        price = billing.search_price(prices)
        lines.append(
            {
                "meter": "web_search",
                "quantity": usage.web_search_requests,
                "unit_price_per_1k_usd": _usd(price),
                "cost_usd": _usd(usage.web_search_requests * price / billing.KSEARCH),
            }
        )
    return {"cost_usd": _usd(billing.cost_usd(usage, prices)), "currency": "USD", "lines": lines}


def usage_fields(usage: ir.Usage, prices) -> dict[str, Any]:
    breakdown = pricing(usage, prices)
    return {"cost_usd": breakdown["cost_usd"], "pricing": breakdown}


def meta(
    call,
    *,
    warnings: list[str],
    skipped: list[dict],
    output_tokens: int,
    first_token_at: float | None,
) -> dict[str, Any]:
    """What answered, how, and how long it took (names as the gateway we share an API with)."""
    now = time.perf_counter()
    latency_ms = (now - call.started) * 1000
    generating = (now - first_token_at) if first_token_at else call.upstream_seconds
    generation_ms = generating * 1000
    tps = round(output_tokens / generating, 2) if generating > 0 else None
    target = call.target
    return {
        "request_id": call.request_id,
        "provider": target.provider_name if target else None,
        "upstream_model": target.upstream_model if target else None,
        "attempts": [
            {
                "provider": a.provider,
                "upstream_model": a.upstream_model,
                "status": a.status,
                "latency_ms": round(a.latency_ms, 2),
                "error_type": a.error_type,
            }
            for a in call.attempts
        ],
        "gateway_overhead_ms": round(call.overhead_ms(), 2),
        "latency_ms": round(latency_ms, 2),
        "generation_ms": round(generation_ms, 2),
        "throughput_tps": tps,
        "routing": {
            "selected_provider": target.provider_name if target else None,
            "attempted_providers": [a.provider for a in call.attempts],
            "skipped_providers": skipped,
        },
        "warnings": warnings,
    }


def secrets(call) -> redaction.Secrets:
    """Every credential value known here: the process's, and the answering route's own."""
    target = call.target
    if target is None:
        return redaction.known()
    return redaction.known() + redaction.Secrets([target.api_key, *target.extra_headers.values()])


def debug(call, options) -> dict[str, Any]:
    exchange = call.exchange
    out: dict[str, Any] = {}
    hidden = secrets(call) if exchange is not None else None
    if exchange is not None and exchange.request is not None and options.return_upstream_request:
        out["upstream_request"] = {
            "url": hidden.scrub(exchange.request.url),
            "headers": redaction.headers(exchange.request.headers, hidden),
            "body": redaction.scrub_json(exchange.request.body, hidden),
        }
    if exchange is not None and options.return_upstream_response:
        out["upstream_response"] = redaction.scrub_json(exchange.response_body, hidden)
    if options.trace:
        trace = [
            {
                "step": "attempt",
                "provider": a.provider,
                "status": a.status,
                "latency_ms": round(a.latency_ms, 2),
                "error_type": a.error_type,
            }
            for a in call.attempts
        ]
        if options.trace_level == "full":
            trace.append(
                {
                    "step": "gateway",
                    "overhead_ms": round(call.overhead_ms(), 2),
                    "upstream_ms": round(call.upstream_seconds * 1000, 2),
                }
            )
        out["trace"] = trace
    return out


def fields(
    call,
    usage: ir.Usage,
    *,
    warnings: list[str],
    skipped: list[dict],
    first_token_at: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields to merge into `usage`, top-level fields) for what the client asked."""
    ask = call.ask
    usage_extra = usage_fields(usage, call.model.prices) if ask.usage else {}
    top: dict[str, Any] = {}
    if ask.meta:
        top["meta"] = meta(
            call,
            warnings=warnings,
            skipped=skipped,
            output_tokens=usage.output_tokens,
            first_token_at=first_token_at,
        )
    exchange = call.exchange
    if ask.echo_upstream_request and exchange is not None and exchange.request is not None:
        top["upstream_request"] = redaction.scrub_json(exchange.request.body, secrets(call))
    if ask.debug is not None and ask.debug.enabled:
        top["debug"] = debug(call, ask.debug)
    return usage_extra, top
