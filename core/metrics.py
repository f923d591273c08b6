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
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
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
TIME_TO_FIRST_BYTE = Histogram(
    "tollgate_time_to_first_byte_seconds",
    "Time from request received to the first response byte sent (headers of a stream).",
    ["model", "provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
IN_FLIGHT = Gauge(
    "tollgate_in_flight_requests",
    "Requests being served now, by endpoint (messages, count_tokens, models, other).",
    ["endpoint"],
    multiprocess_mode="livesum",
)
IN_FLIGHT_STREAMS = Gauge(
    "tollgate_in_flight_streams",
    "Server-sent event streams open to clients now.",
    multiprocess_mode="livesum",
)
REFUSED = Counter(
    "tollgate_refused_requests",
    "Requests the gateway itself answered with a 4xx (bad input, unknown model or key, limits), "
    "by endpoint, status and Anthropic error type: every label has a handful of values.",
    ["endpoint", "status", "error_type"],
)
OVERHEAD = Histogram(
    "tollgate_overhead_ms",
    "Latency Tollgate itself adds to a request, in milliseconds (tollgate-overhead-ms).",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250),
)
TOKENS = Counter(
    "tollgate_tokens",
    "Tokens used, by direction: input, output, cache_read, cache_write.",
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
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cost: Decimal | float = 0,
    ttfb_s: float | None = None,
) -> None:
    """Count one finished request (status: "ok", "error" or "cancelled", as UsageRecord)."""
    REQUESTS.labels(model, provider, status, error_type).inc()
    LATENCY.labels(model, provider).observe(latency_s)
    if ttfb_s is not None:
        TIME_TO_FIRST_BYTE.labels(model, provider).observe(ttfb_s)
    if overhead_ms is not None:
        OVERHEAD.observe(overhead_ms)
    for direction, tokens in (
        ("input", input_tokens),
        ("output", output_tokens),
        ("cache_read", cache_read_tokens),
        ("cache_write", cache_write_tokens),
    ):
        if tokens:
            TOKENS.labels(model, provider, direction).inc(tokens)
    if cost:
        COST.labels(model, provider).inc(float(cost))


def observe_upstream_error(*, provider: str, status: int | str) -> None:
    """Count one failed upstream attempt (a fallback that then succeeded counts too)."""
    UPSTREAM_ERRORS.labels(provider, str(status)).inc()


def observe_refusal(*, endpoint: str, status: int, error_type: str) -> None:
    REFUSED.labels(endpoint, str(status), error_type).inc()


@cache
def in_flight(endpoint: str) -> Gauge:
    """The in-flight gauge of one endpoint (looked up once, not on every request)."""
    return IN_FLIGHT.labels(endpoint)


def observe_auth_failure(reason: str) -> None:
    AUTH_FAILURES.labels(reason).inc()


def observe_shared_state_error(operation: str) -> None:
    SHARED_STATE_ERRORS.labels(operation).inc()


@dataclass(frozen=True)
class Scraped:
    """What other processes know, read when `/metrics` is scraped (None: not readable now)."""

    usage_dead_letters: int | None = None
    # Usage records not yet in the database: spool files waiting to be sent, files sent and
    # waiting for their records to land (this host), and batches queued in the broker.
    spool_unsent: int | None = None
    spool_sent: int | None = None
    usage_queue: int | None = None
    # (model, provider, upstream model, state) per route, state closed, open or half-open.
    breakers: list[tuple[str, str, str, str]] = field(default_factory=list)


BREAKER_STATES = ("closed", "half-open", "open")


class _Snapshot:
    """A collector of values read at scrape time from elsewhere (database, Redis, disk)."""

    def __init__(self, scraped: Scraped):
        self.scraped = scraped

    def collect(self):
        s = self.scraped
        if s.usage_dead_letters is not None:
            yield GaugeMetricFamily(
                "tollgate_usage_dead_letters",
                "Usage records the database refused, parked by the worker (admin: dead letters).",
                value=s.usage_dead_letters,
            )
        if s.spool_unsent is not None:
            backlog = GaugeMetricFamily(
                "tollgate_usage_spool_files",
                "Usage spool files on this host: unsent (broker unreachable) or sent and "
                "waiting for their records to land in the database.",
                labels=["state"],
            )
            backlog.add_metric(["unsent"], s.spool_unsent)
            backlog.add_metric(["sent"], s.spool_sent or 0)
            yield backlog
        if s.usage_queue is not None:
            yield GaugeMetricFamily(
                "tollgate_usage_queue_batches",
                "Usage batches waiting in the broker for the worker (the pipeline's backlog).",
                value=s.usage_queue,
            )
        if s.breakers:
            breakers = GaugeMetricFamily(
                "tollgate_breaker_state",
                "Each route's circuit breaker: 1 for its current state, 0 for the others.",
                labels=["model", "provider", "upstream_model", "state"],
            )
            for model, provider, upstream, current in s.breakers:
                for state in BREAKER_STATES:
                    breakers.add_metric(
                        [model, provider, upstream, state], 1 if state == current else 0
                    )
            yield breakers


def render(scraped: Scraped | None = None) -> tuple[bytes, str]:
    """(body, content type) of the Prometheus text exposition for this process or all workers,
    with what other processes know (`scraped`)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(scraped or Scraped()))
    return body + generate_latest(snapshot), CONTENT_TYPE_LATEST
