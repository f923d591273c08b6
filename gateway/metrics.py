"""Prometheus metrics of the gateway: what `/metrics` shows, and the two calls that feed it.

The metric objects are module-level because prometheus-client's registry is process-wide by
design. Under several uvicorn workers set PROMETHEUS_MULTIPROC_DIR (an empty directory, the
same for every worker, emptied before the server starts): prometheus-client then keeps the
values in files there, and `render` sums every worker's files, so any worker answers for all.

Label values must stay few: pass the resolved public model name ("" when none was resolved,
e.g. an unknown model or a bad key), never a name a client typed that matched nothing.

What another process knows (the usage worker's dead letters, in the database) is not kept in
this process: `render` is handed it at scrape time and shows it as a gauge.
"""

from __future__ import annotations

import os
from decimal import Decimal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "tollgate_requests",
    "Finished /v1/messages requests.",
    ["model", "provider", "status", "error_type"],
)
LATENCY = Histogram(
    "tollgate_request_latency_seconds",
    "Time from request received to last byte sent.",
    ["model", "provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
OVERHEAD = Histogram(
    "tollgate_overhead_ms",
    "Latency Tollgate itself adds to a request, in milliseconds (tollgate-overhead-ms).",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250),
)
TOKENS = Counter(
    "tollgate_tokens",
    "Tokens used, by direction (input or output).",
    ["model", "provider", "direction"],
)
COST = Counter("tollgate_cost_usd", "Cost of requests in USD.", ["model", "provider"])
UPSTREAM_ERRORS = Counter(
    "tollgate_upstream_errors",
    "Failed upstream attempts (status: HTTP status, or 'connect' / 'timeout').",
    ["provider", "status"],
)

SHARED_STATE_ERRORS = Counter(
    "tollgate_shared_state_errors",
    "Redis calls that failed; the gateway served from process state and the database instead.",
    ["operation"],
)

AUTH_FAILURES = Counter(
    "tollgate_auth_failures",
    "Failed authentications, by reason: missing, unknown, revoked, expired, rotated, "
    "tenant_disabled, or limited (429: too many failures from the client's address).",
    ["reason"],
)


def observe_request(
    *,
    model: str,
    provider: str,
    status: str,
    error_type: str = "",
    latency_s: float,
    overhead_ms: float | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost: Decimal | float = 0,
) -> None:
    """Count one finished request (status: "ok", "error" or "cancelled", as UsageRecord)."""
    REQUESTS.labels(model, provider, status, error_type).inc()
    LATENCY.labels(model, provider).observe(latency_s)
    if overhead_ms is not None:
        OVERHEAD.observe(overhead_ms)
    if input_tokens:
        TOKENS.labels(model, provider, "input").inc(input_tokens)
    if output_tokens:
        TOKENS.labels(model, provider, "output").inc(output_tokens)
    if cost:
        COST.labels(model, provider).inc(float(cost))


def observe_upstream_error(*, provider: str, status: int | str) -> None:
    """Count one failed upstream attempt (a fallback that then succeeded counts too)."""
    UPSTREAM_ERRORS.labels(provider, str(status)).inc()


def observe_auth_failure(reason: str) -> None:
    AUTH_FAILURES.labels(reason).inc()


def observe_shared_state_error(operation: str) -> None:
    SHARED_STATE_ERRORS.labels(operation).inc()


class _Snapshot:
    """A collector of values read at scrape time from elsewhere (the database)."""

    def __init__(self, usage_dead_letters: int | None):
        self.usage_dead_letters = usage_dead_letters

    def collect(self):
        if self.usage_dead_letters is not None:
            yield GaugeMetricFamily(
                "tollgate_usage_dead_letters",
                "Usage records the database refused, parked by the worker (admin: dead letters).",
                value=self.usage_dead_letters,
            )


def render(*, usage_dead_letters: int | None = None) -> tuple[bytes, str]:
    """(body, content type) of the Prometheus text exposition for this process or all workers;
    `usage_dead_letters` is shown when known (None: the database did not answer)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(usage_dead_letters))
    return body + generate_latest(snapshot), CONTENT_TYPE_LATEST
