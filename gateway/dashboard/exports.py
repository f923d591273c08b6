"""Exports: a tenant's usage, one CSV line per day, model, key and provider (the roll-up grain);
the platform's, one line per day or hour, tenant, model, key and provider; and the request log
as CSV or JSON Lines (one line per request, streamed)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse

from gateway.dashboard.platform import PlatformRow
from gateway.dashboard.selectors import UsageRow
from gateway.models import UsageRecord

COLUMNS = (
    "day",
    "model",
    "key_prefix",
    "key_name",
    "provider",
    "requests",
    "errors",
    "error_rate",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "latency_p50_ms",
    "latency_p95_ms",
)
# Spreadsheets run a cell starting with these as a formula; key names are typed by tenants.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def usage_csv(rows: Iterable[UsageRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.day.isoformat() if row.day else "",
                _text(row.model),
                _text(row.key_prefix),
                _text(row.key_name),
                _text(row.provider),
                row.requests,
                row.errors,
                f"{row.error_rate:.4f}",
                row.input_tokens,
                row.output_tokens,
                row.cache_read_tokens,
                row.cache_write_tokens,
                f"{row.cost_usd:.6f}",
                _number(row.latency_p50_ms),
                _number(row.latency_p95_ms),
            ]
        )
    return out.getvalue()


PLATFORM_COLUMNS = (
    "time",
    "tenant",
    "model",
    "key_prefix",
    "key_name",
    "provider",
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "latency_ms_avg",
)


def platform_usage_csv(rows: Iterable[PlatformRow], *, granularity: str) -> str:
    """`time` is the UTC day (YYYY-MM-DD) or hour (YYYY-MM-DDTHH:00Z) the line covers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PLATFORM_COLUMNS)
    for row in rows:
        when = ""
        if row.time is not None:
            when = f"{row.time:%Y-%m-%d}" if granularity == "day" else f"{row.time:%Y-%m-%dT%H}:00Z"
        writer.writerow(
            [
                when,
                _text(row.tenant_name),
                _text(row.model),
                _text(row.key_prefix),
                _text(row.key_name),
                _text(row.provider),
                row.requests,
                row.errors,
                row.input_tokens,
                row.output_tokens,
                row.cache_read_tokens,
                row.cache_write_tokens,
                f"{row.cost_usd:.6f}",
                _number(row.latency_ms_avg),
            ]
        )
    return out.getvalue()


def _text(value: str | None) -> str:
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


# The request log's columns, in export order (attempts, warnings and cost parts as JSON).
REQUEST_COLUMNS = (
    "request_id",
    "endpoint",
    "started_at",
    "finished_at",
    "key_prefix",
    "model",
    "provider",
    "upstream_model",
    "status",
    "http_status",
    "error_type",
    "error_message",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "estimated",
    "cost_usd",
    "billed",
    "streamed",
    "latency_ms",
    "ttfb_ms",
    "overhead_ms",
    "generation_ms",
    "client_request_id",
    "trace_id",
    "upstream_request_id",
    "attempts",
    "warnings",
    "cost_parts",
)
EXPORT_BATCH = 2000  # rows read from the database at a time


def request_dict(record: UsageRecord) -> dict:
    """One request as plain JSON values: the REST API's detail, and each exported line."""
    data = {}
    for name in REQUEST_COLUMNS:
        if name == "key_prefix":
            value = record.api_key.prefix if record.api_key_id else None
        else:
            value = getattr(record, name)
        if name in ("started_at", "finished_at"):
            value = value.isoformat()
        elif name == "cost_usd":
            value = str(value)
        data[name] = value
    return data


def requests_jsonl(records: Iterable[UsageRecord]) -> Iterator[str]:
    for record in records:
        yield json.dumps(request_dict(record), ensure_ascii=False) + "\n"


def requests_csv(records: Iterable[UsageRecord]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REQUEST_COLUMNS)
    yield _drain(out)
    for record in records:
        row = []
        for value in request_dict(record).values():
            if isinstance(value, list | dict):
                value = json.dumps(value, ensure_ascii=False)
            row.append(_text(value) if isinstance(value, str) else "" if value is None else value)
        writer.writerow(row)
        yield _drain(out)


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def requests_response(records, fmt: str, filename: str) -> StreamingHttpResponse:
    """The request log as a streamed download: `fmt` csv or jsonl (callers check which)."""
    rows = records.iterator(chunk_size=EXPORT_BATCH)
    if fmt == "csv":
        body, content_type = requests_csv(rows), "text/csv; charset=utf-8"
    else:
        body, content_type = requests_jsonl(rows), "application/x-ndjson"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
