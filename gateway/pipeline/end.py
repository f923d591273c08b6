"""The end of a request, whatever happened to it: its one usage record built and handed off
(one non-blocking append), its figures in /metrics, its access-log line and trace, then the
limits it reserved settled, after the response bytes are out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from core import metrics
from gateway import limits, logs, otel
from gateway.pipeline.call import Call
from gateway.usage import recorder
from gateway.usage.record import Captured, Seen, UsageRecord, build

log = logging.getLogger("tollgate.api")


async def finish(call: Call, seen: Seen, captured: Callable[[Call], Captured | None]) -> None:
    """Record, observe and settle a request. A request that never authenticated (401, 429 for
    too many failed authentications, or refused before its key was read) has no tenant to bill
    or show a record to: it leaves none, and /metrics counts it (tollgate_auth_failures_total).
    `captured` gives the tenant's body capture of it, when it asked for one."""
    if call.key is None:
        return
    try:
        record = build(call.served(), seen, settings.TOLLGATE_BILLING)
        record.captured = captured(call)
        recorder.submit(record)
    except Exception:
        log.exception("usage record of request %s could not be built", call.request_id)
        return
    observe(call, record)
    if settings.ACCESS_LOG:
        logs.log_request(record, endpoint=call.surface.endpoint, tenant=call.key.tenant_name)
    otel.export_request(
        record,
        trace=call.trace,
        path=call.path,
        max_tokens=call.request.max_tokens if call.request is not None else None,
        attempts=call.attempts,
        targets=call.targets,
    )
    if call.admission is not None:
        await limits.settle(call.admission, record)


def observe(call: Call, record: UsageRecord) -> None:
    """Prometheus figures of one finished request and of its failed upstream attempts."""
    if call.model is None:
        return  # refused before a model was resolved: no bounded label to count it under
    metrics.observe_request(
        model=record.model,
        provider=record.provider or "none",
        status=record.status,
        error_type=record.error_type,
        latency_s=record.latency_ms / 1000,
        overhead_ms=record.overhead_ms,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_write_tokens,
        cost=record.cost_usd,
        ttfb_s=None if record.ttfb_ms is None else record.ttfb_ms / 1000,
    )
    for attempt in call.attempts:
        if attempt.error_type is not None:
            metrics.observe_upstream_error(
                provider=attempt.provider, status=attempt.status or attempt.error_type
            )
