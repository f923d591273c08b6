"""CSV exports: a tenant's usage, one line per day, model, key and provider (the roll-up grain);
the platform's, one line per day or hour, tenant, model, key and provider."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from gateway.dashboard.platform import PlatformRow
from gateway.dashboard.selectors import UsageRow

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
