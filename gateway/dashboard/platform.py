"""Reads behind the platform usage view (dashboard page, CSV and REST API, staff only): every
tenant's usage from the roll-ups, per UTC day (`DailyUsage`) or per UTC hour (`HourlyUsage`).

Only roll-ups are read, never raw records, so a range across all tenants stays a few indexed
queries; latency is the average (percentiles would need the raw records). Hourly ranges cover
at most MAX_HOURLY_DAYS days; hourly rows older than TOLLGATE_HOURLY_USAGE_RETENTION_DAYS are gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.db.models import QuerySet, Sum

from accounts.models import ApiKey, Tenant
from gateway.dashboard.selectors import DateRange, UsageFigures
from gateway.models import DailyUsage, HourlyUsage
from gateway.usage.services import SUMMED

GRANULARITIES = ("day", "hour")
DIMENSIONS = ("time", "tenant", "model", "provider", "key")
BREAKDOWNS = ("tenant", "model", "provider", "key")
MAX_HOURLY_DAYS = 31
BREAKDOWN_ROWS = 100  # busiest groups a breakdown table lists; the CSV and API have them all

_FIELDS = {
    "tenant": ("tenant_id", "tenant__name"),
    "model": ("model",),
    "provider": ("provider",),
    "key": ("api_key_id", "api_key_prefix"),
}
_SUMS = {name: Sum(name) for name in SUMMED}


@dataclass(frozen=True, kw_only=True)
class PlatformRow(UsageFigures):
    """Usage summed over one group; a dimension not grouped by stays None."""

    time: datetime | None = None  # start of the UTC day or hour
    tenant_id: int | None = None
    tenant_name: str | None = None
    model: str | None = None
    provider: str | None = None
    key_id: int | None = None
    key_prefix: str | None = None
    key_name: str | None = None

    def group(self, dimension: str) -> object:
        return {"tenant": self.tenant_id, "key": self.key_id}.get(
            dimension, getattr(self, dimension, None)
        )

    def label(self, dimension: str) -> str:
        if dimension == "tenant":
            return self.tenant_name or "(deleted tenant)"
        if dimension == "key":
            if not self.key_id:
                return "(no key)"
            prefix = self.key_prefix or f"key #{self.key_id}"
            return f"{prefix} ({self.key_name})" if self.key_name else prefix
        if dimension == "time":
            return self.time.isoformat() if self.time else ""
        return getattr(self, dimension) or ("(unknown)" if dimension == "model" else "(none)")


@dataclass(frozen=True)
class PlatformOverview:
    period: DateRange
    granularity: str
    dimension: str
    tenant: Tenant | None
    buckets: list[datetime]
    totals: PlatformRow
    by_time: list[PlatformRow]
    by_time_and_group: list[PlatformRow]
    breakdowns: dict[str, list[PlatformRow]] = field(default_factory=dict)


def check_period(period: DateRange, granularity: str) -> None:
    """ValueError when the granularity is unknown or an hourly range is too long."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    if granularity == "hour" and len(period.days) > MAX_HOURLY_DAYS:
        raise ValueError(f"an hourly range covers at most {MAX_HOURLY_DAYS} days")


def buckets(period: DateRange, granularity: str) -> list[datetime]:
    """Every day or hour of the range, as the UTC instant it starts."""
    if granularity == "day":
        return [datetime.combine(day, time.min, tzinfo=UTC) for day in period.days]
    start, end = period.bounds
    return [start + timedelta(hours=n) for n in range(int((end - start).total_seconds()) // 3600)]


def _roll_ups(period: DateRange, granularity: str, tenant: Tenant | None) -> QuerySet:
    if granularity == "day":
        rows = DailyUsage.objects.filter(day__gte=period.start, day__lte=period.end)
    else:
        since, until = period.bounds
        rows = HourlyUsage.objects.filter(hour__gte=since, hour__lt=until)
    return rows.filter(tenant=tenant) if tenant is not None else rows


def platform_usage_rows(
    *,
    period: DateRange,
    granularity: str = "day",
    group_by: Sequence[str] = ("time",),
    tenant: Tenant | None = None,
) -> list[PlatformRow]:
    """Usage of every tenant (or one) summed per group of DIMENSIONS; none: one row of totals."""
    check_period(period, granularity)
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown group_by: {', '.join(unknown)} (use {', '.join(DIMENSIONS)})")
    group_by = tuple(dict.fromkeys(group_by))
    bucket = granularity  # the roll-up's column: "day" or "hour"
    fields = [
        name
        for dimension in group_by
        for name in ((bucket,) if dimension == "time" else _FIELDS[dimension])
    ]
    rows = _roll_ups(period, granularity, tenant)
    if fields:
        sums = list(rows.values(*fields).annotate(**_SUMS).order_by(*fields))
    else:
        sums = [rows.aggregate(**_SUMS)]
    names = _key_names({s["api_key_id"] for s in sums if s.get("api_key_id")})
    return [_platform_row(values, bucket, names) for values in sums]


def _platform_row(values: dict, bucket: str, key_names: dict[int, str]) -> PlatformRow:
    when = values.get(bucket)
    if bucket == "day" and when is not None:
        when = datetime.combine(when, time.min, tzinfo=UTC)
    key_id = values.get("api_key_id")
    return PlatformRow(
        time=when,
        tenant_id=values.get("tenant_id"),
        tenant_name=values.get("tenant__name"),
        model=values.get("model"),
        provider=values.get("provider"),
        key_id=key_id,
        key_prefix=values.get("api_key_prefix"),
        key_name=key_names.get(key_id) if key_id else None,
        requests=values["requests"] or 0,
        errors=values["errors"] or 0,
        input_tokens=values["input_tokens"] or 0,
        output_tokens=values["output_tokens"] or 0,
        cache_read_tokens=values["cache_read_tokens"] or 0,
        cache_write_tokens=values["cache_write_tokens"] or 0,
        cost_usd=values["cost_usd"] or Decimal(0),
        latency_ms_total=values["latency_ms_total"] or 0.0,
    )


def _key_names(key_ids: set[int]) -> dict[int, str]:
    if not key_ids:
        return {}
    keys = ApiKey.objects.filter(pk__in=key_ids).exclude(name="")
    return dict(keys.values_list("id", "name"))


def platform_breakdown(
    *, period: DateRange, granularity: str, dimension: str, tenant: Tenant | None = None
) -> list[PlatformRow]:
    """Usage per tenant, model, provider or key over the range, busiest first."""
    group_by = ("tenant", "key") if dimension == "key" else (dimension,)
    rows = platform_usage_rows(
        period=period, granularity=granularity, group_by=group_by, tenant=tenant
    )
    return sorted(rows, key=lambda row: (-row.requests, row.label(dimension)))


def platform_overview(
    *,
    period: DateRange,
    granularity: str = "day",
    dimension: str = "tenant",
    tenant: Tenant | None = None,
) -> PlatformOverview:
    """Totals, the series per day or hour split by `dimension`, and the breakdown tables."""
    if dimension not in BREAKDOWNS:
        raise ValueError(f"dimension must be one of {', '.join(BREAKDOWNS)}")
    scope = {"period": period, "granularity": granularity, "tenant": tenant}
    return PlatformOverview(
        period=period,
        granularity=granularity,
        dimension=dimension,
        tenant=tenant,
        buckets=buckets(period, granularity),
        totals=platform_usage_rows(group_by=(), **scope)[0],
        by_time=platform_usage_rows(group_by=("time",), **scope),
        by_time_and_group=platform_usage_rows(group_by=("time", dimension), **scope),
        breakdowns={
            d: platform_breakdown(dimension=d, **scope)[:BREAKDOWN_ROWS] for d in BREAKDOWNS
        },
    )
