"""Structured logs: the JSON formatter (structlog) and the access log of /v1 requests.

`LOG_FORMAT=json` renders every standard-library log record as one JSON object: `event` (the
message), `level`, `logger`, `timestamp` (UTC, ISO 8601) and any `extra` fields. The redaction
filter (core/redaction.py) still runs first on every record, so a configured credential
never reaches a log line in either format.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import structlog

from gateway.usage.record import UsageRecord

access_log = logging.getLogger("tollgate.access")


def timestamp(_logger, _name, event: dict) -> dict:
    event["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    return event


def json_formatter() -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(sort_keys=False, default=str),
        ],
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            timestamp,
            structlog.processors.format_exc_info,
        ],
    )


def log_request(record: UsageRecord, *, endpoint: str, tenant: str | None) -> None:
    """One access-log line for a finished request (after its response, off the latency path)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": record.request_id,
        "endpoint": endpoint,
        "tenant": tenant,
        "key_prefix": record.key_prefix or None,
        "model": record.model or None,
        "provider": record.provider or None,
        "upstream_model": record.upstream_model or None,
        "status": record.status,
        "http_status": record.http_status,
        "error_type": record.error_type or None,
        "latency_ms": record.latency_ms,
        "ttfb_ms": record.ttfb_ms,
        "overhead_ms": record.overhead_ms,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_usd": str(record.cost_usd),
        "streamed": record.streamed,
        "client_request_id": record.client_request_id or None,
        "trace_id": record.trace_id or None,
    }
    access_log.info(
        "%s %s %s %s %s %.1fms",
        endpoint,
        record.request_id,
        record.model or "-",
        record.provider or "-",
        record.http_status,
        record.latency_ms,
        extra=fields,
    )
