"""Reads behind the dashboards, the CSV export and the REST API: one tenant's usage over days.

Counts, tokens, cost and errors come from the daily roll-ups (`DailyUsage`). Latency
percentiles need the individual requests (`UsageRecord`, successful ones only, so instant
refusals do not drag p50 to zero): PostgreSQL computes them with `percentile_cont`; other
databases (the SQLite quick start) in Python over the newest PERCENTILE_SAMPLE_LIMIT rows.
The tenant's keys, members and the models its keys may be limited to are read here too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connections
from django.db.models import Aggregate, Case, FloatField, Q, QuerySet, Sum, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import ApiKey, Membership, Tenant
from gateway.limits.budgets import period_of
from gateway.models import CapturedBody, DailyUsage, UsageRecord
from gateway.usage.selectors import spent_usd
from gateway.usage.services import SUMMED
from providers.models import Model

DIMENSIONS = ("day", "model", "key", "provider")
BREAKDOWNS = ("model", "key", "provider")
DEFAULT_DAYS = 30
MAX_DAYS = 366
# Days a range may name: far from the calendar's ends, so no date arithmetic can overflow.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9999, 12, 30)
PERCENTILE_SAMPLE_LIMIT = 100_000

# Columns each dimension groups by, in the roll-ups and in the raw records.
_DAILY_FIELDS = {
    "day": ("day",),
    "model": ("model",),
    "key": ("api_key_id", "api_key_prefix"),
    "provider": ("provider",),
}
_RECORD_FIELDS = {"day": "day", "model": "model", "key": "api_key_id", "provider": "provider"}
_SUMS = {name: Sum(name) for name in SUMMED}


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(f) WITHIN GROUP (ORDER BY expr)`: interpolated percentile."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        fraction = float(fraction)  # goes into the SQL text, so only ever a checked float
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        super().__init__(expression, fraction=repr(fraction), **extra)


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days, both ends included."""

    start: date
    end: date

    @classmethod
    def build(cls, start: date | None = None, end: date | None = None) -> DateRange:
        """A checked range; missing ends default to the last DEFAULT_DAYS days. ValueError."""
        for day in (start, end):
            if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
                raise ValueError(f"dates must lie between {EARLIEST_DAY} and {LATEST_DAY}")
        end = end or timezone.now().date()
        start = start or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise ValueError("start must be on or before end")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValueError(f"a range covers at most {MAX_DAYS} days")
        return cls(start, end)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00 UTC, the day after end 00:00 UTC): for timestamps."""
        start = datetime.combine(self.start, time.min, tzinfo=UTC)
        return start, datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class UsageFigures:
    """The sums of a row of usage (usage/services.py SUMMED) and what derives from them, for
    tenant and platform rows alike."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms_total: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def error_rate_pct(self) -> float:
        return 100 * self.error_rate

    @property
    def latency_ms_avg(self) -> float | None:
        return self.latency_ms_total / self.requests if self.requests else None


@dataclass(frozen=True, kw_only=True)
class UsageRow(UsageFigures):
    """Usage summed over one group; a dimension not grouped by stays None."""

    day: date | None = None
    model: str | None = None
    key_id: int | None = None
    key_prefix: str | None = None
    key_name: str | None = None
    provider: str | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None

    def group(self, dimension: str) -> object:
        """This row's value for a dimension (the key's id for "key")."""
        return self.key_id if dimension == "key" else getattr(self, dimension)

    def label(self, dimension: str) -> str:
        """How people read this row's group: a model name, "tg_AbCd1234 (ci)", a date."""
        if dimension == "key":
            if not self.key_id:
                return "(no key)"
            prefix = self.key_prefix or f"key #{self.key_id}"
            return f"{prefix} ({self.key_name})" if self.key_name else prefix
        value = getattr(self, dimension)
        if dimension == "day":
            return value.isoformat()
        return value or ("(unknown)" if dimension == "model" else "(none)")


@dataclass(frozen=True)
class Overview:
    """Everything one dashboard page shows for a tenant (or one of its keys) and a range."""

    period: DateRange
    dimension: str
    totals: UsageRow
    daily: list[UsageRow]
    daily_by_group: list[UsageRow]
    breakdowns: dict[str, list[UsageRow]] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyUsage:
    key: ApiKey
    usage: UsageRow


def _check_dimensions(group_by: Sequence[str]) -> tuple[str, ...]:
    unknown = [d for d in group_by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown group_by: {', '.join(unknown)} (use {', '.join(DIMENSIONS)})")
    return tuple(dict.fromkeys(group_by))


def usage_rows(
    *,
    tenant: Tenant,
    period: DateRange,
    group_by: Sequence[str] = ("day",),
    api_key_id: int | None = None,
) -> list[UsageRow]:
    """Usage summed per group (any of DIMENSIONS; none: one row of totals), groups in order."""
    group_by = _check_dimensions(group_by)
    daily = DailyUsage.objects.filter(tenant=tenant, day__gte=period.start, day__lte=period.end)
    if api_key_id is not None:
        daily = daily.filter(api_key_id=api_key_id)
    fields = [name for dimension in group_by for name in _DAILY_FIELDS[dimension]]
    if fields:
        sums = list(daily.values(*fields).annotate(**_SUMS).order_by(*fields))
    else:
        sums = [daily.aggregate(**_SUMS)]
    latency = latency_percentiles(
        tenant=tenant, period=period, group_by=group_by, api_key_id=api_key_id
    )
    names = _key_names(tenant) if "key" in group_by else {}
    rows = []
    for values in sums:
        row = _usage_row(values, names)
        p50, p95 = latency.get(tuple(row.group(d) for d in group_by), (None, None))
        rows.append(replace(row, latency_p50_ms=p50, latency_p95_ms=p95))
    return rows


def _usage_row(values: dict, key_names: dict[int, str]) -> UsageRow:
    key_id = values.get("api_key_id")
    return UsageRow(
        day=values.get("day"),
        model=values.get("model"),
        key_id=key_id,
        key_prefix=values.get("api_key_prefix"),
        key_name=key_names.get(key_id) if key_id else None,
        provider=values.get("provider"),
        requests=values["requests"] or 0,
        errors=values["errors"] or 0,
        input_tokens=values["input_tokens"] or 0,
        output_tokens=values["output_tokens"] or 0,
        cache_read_tokens=values["cache_read_tokens"] or 0,
        cache_write_tokens=values["cache_write_tokens"] or 0,
        cost_usd=values["cost_usd"] or Decimal(0),
        latency_ms_total=values["latency_ms_total"] or 0.0,
    )


def _key_names(tenant: Tenant) -> dict[int, str]:
    return dict(ApiKey.objects.filter(tenant=tenant).exclude(name="").values_list("id", "name"))


def latency_percentiles(
    *,
    tenant: Tenant,
    period: DateRange,
    group_by: Sequence[str] = (),
    api_key_id: int | None = None,
) -> dict[tuple, tuple[float, float]]:
    """(p50, p95) latency in ms of successful requests, per group (key id 0: no key)."""
    group_by = _check_dimensions(group_by)
    since, until = period.bounds
    records = UsageRecord.objects.filter(
        tenant=tenant,
        status=UsageRecord.Status.OK,
        started_at__gte=since,
        started_at__lt=until,
    ).exclude(endpoint=UsageRecord.Endpoint.COUNT_TOKENS)  # counting is not a request's latency
    if api_key_id is not None:
        records = records.filter(api_key_id=api_key_id)
    if "day" in group_by:
        records = records.annotate(day=TruncDate("started_at"))
    fields = [_RECORD_FIELDS[d] for d in group_by]
    if connections[records.db].vendor == "postgresql":
        return _percentiles_in_database(records, fields)
    return _percentiles_in_python(records, fields)


def _group_key(values: Sequence) -> tuple:
    # A record without a key groups with the roll-ups' api_key_id 0.
    return tuple(0 if v is None else v for v in values)


def _percentiles_in_database(records: QuerySet, fields: list[str]) -> dict:
    quantiles = {
        "p50": PercentileCont("latency_ms", 0.5),
        "p95": PercentileCont("latency_ms", 0.95),
    }
    if not fields:
        result = records.aggregate(**quantiles)
        return {} if result["p50"] is None else {(): (result["p50"], result["p95"])}
    rows = records.values(*fields).annotate(**quantiles).order_by()
    return {_group_key([r[f] for f in fields]): (r["p50"], r["p95"]) for r in rows}


def _percentiles_in_python(records: QuerySet, fields: list[str]) -> dict:
    newest = records.order_by("-started_at").values_list(*fields, "latency_ms")
    groups: dict[tuple, list[float]] = defaultdict(list)
    for *group, latency in newest[:PERCENTILE_SAMPLE_LIMIT]:
        groups[_group_key(group)].append(latency)
    return {
        group: (percentile(values, 0.5), percentile(values, 0.95))
        for group, values in groups.items()
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's `percentile_cont`."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def usage_overview(
    *, tenant: Tenant, period: DateRange, dimension: str = "model", api_key_id: int | None = None
) -> Overview:
    """Totals, per-day series split by `dimension`, and the breakdown tables."""
    if dimension not in BREAKDOWNS:
        raise ValueError(f"dimension must be one of {', '.join(BREAKDOWNS)}")
    scope = {"tenant": tenant, "period": period, "api_key_id": api_key_id}
    breakdowns = [d for d in BREAKDOWNS if not (api_key_id is not None and d == "key")]
    return Overview(
        period=period,
        dimension=dimension,
        totals=usage_rows(group_by=(), **scope)[0],
        daily=usage_rows(group_by=("day",), **scope),
        daily_by_group=usage_rows(group_by=("day", dimension), **scope),
        breakdowns={d: usage_breakdown(dimension=d, **scope) for d in breakdowns},
    )


def usage_breakdown(
    *, tenant: Tenant, period: DateRange, dimension: str, api_key_id: int | None = None
) -> list[UsageRow]:
    """Usage per model, key or provider over the range, busiest first."""
    rows = usage_rows(tenant=tenant, period=period, group_by=(dimension,), api_key_id=api_key_id)
    return sorted(rows, key=lambda row: (-row.requests, row.label(dimension)))


def usage_records(
    *, tenant: Tenant, period: DateRange | None = None, api_key_id: int | None = None
) -> QuerySet[UsageRecord]:
    """The tenant's requests, newest first."""
    records = UsageRecord.objects.filter(tenant=tenant).select_related("api_key")
    if period is not None:
        since, until = period.bounds
        records = records.filter(started_at__gte=since, started_at__lt=until)
    if api_key_id is not None:
        records = records.filter(api_key_id=api_key_id)
    return records.order_by("-started_at", "-id")


@dataclass(frozen=True)
class RequestFilter:
    """What the request log is narrowed to; a field left None does not narrow it."""

    period: DateRange | None = None
    request_id: str | None = None  # the gateway's, the client's or the provider's id
    api_key_id: int | None = None
    status: str | None = None
    error_type: str | None = None
    model: str | None = None
    provider: str | None = None
    endpoint: str | None = None


def requests_search(*, tenant: Tenant, filters: RequestFilter) -> QuerySet[UsageRecord]:
    """The tenant's request log, newest first, narrowed by `filters`. An id is searched among
    the gateway's request ids, the client's `x-request-id` and the provider's request ids, and
    only ever within the tenant."""
    records = usage_records(tenant=tenant, period=filters.period, api_key_id=filters.api_key_id)
    if filters.request_id:
        wanted = filters.request_id
        records = records.filter(
            Q(request_id=wanted) | Q(client_request_id=wanted) | Q(upstream_request_id=wanted)
        )
    exact = {
        name: getattr(filters, name)
        for name in ("status", "error_type", "model", "provider", "endpoint")
        if getattr(filters, name)
    }
    return records.filter(**exact)


def captured_body_get(*, tenant: Tenant, request_id: str) -> CapturedBody | None:
    """The body and answer captured with one of the tenant's requests, if any are kept."""
    return CapturedBody.objects.filter(tenant=tenant, request_id=request_id).first()


def request_get(*, tenant: Tenant, request_id: str) -> UsageRecord:
    """One of the tenant's requests by the gateway's id; UsageRecord.DoesNotExist otherwise
    (another tenant's request does not exist for this one)."""
    return UsageRecord.objects.select_related("api_key").get(tenant=tenant, request_id=request_id)


@dataclass(frozen=True)
class Budget:
    """A budget that applies to a key's requests, with what its period has cost so far."""

    scope: str  # "key" or "tenant"
    amount: Decimal
    period: str  # "daily" or "monthly"
    spent: Decimal  # landed usage of the current period
    resets: date


def key_budgets(*, key: ApiKey) -> list[Budget]:
    """The key's own budget and its tenant's, when set (both apply to every request)."""
    today = timezone.now().astimezone(UTC).date()
    found = []
    for scope, owner in (("key", key), ("tenant", key.tenant)):
        if owner.budget_usd is None:
            continue
        period = period_of(owner.budget_period or "monthly", today)
        spent = spent_usd(scope=scope, owner_id=owner.pk, start=period.start, end=period.end)
        found.append(Budget(scope, owner.budget_usd, period.name, spent, period.end))
    return found


def api_keys_of(*, tenant: Tenant) -> QuerySet[ApiKey]:
    """The tenant's keys, revoked ones included (their requests stay in the log)."""
    return ApiKey.objects.filter(tenant=tenant).order_by("prefix")


def api_key_get(*, tenant: Tenant, key_id: int) -> ApiKey:
    """One of the tenant's keys, or ApiKey.DoesNotExist (another tenant's key is missing too)."""
    return ApiKey.objects.select_related("tenant").get(tenant=tenant, pk=key_id)


def api_keys_with_usage(*, tenant: Tenant, period: DateRange) -> list[KeyUsage]:
    """Every key of the tenant, newest first, with its usage over the range."""
    usage = {row.key_id: row for row in usage_rows(tenant=tenant, period=period, group_by=["key"])}
    return [
        KeyUsage(key=key, usage=usage.get(key.pk) or UsageRow(key_id=key.pk, key_prefix=key.prefix))
        for key in tenant.api_keys.order_by("-created_at", "-id")
    ]


def tenant_members(*, tenant: Tenant) -> QuerySet[Membership]:
    """The tenant's members with their accounts: owners first, then admins, then viewers."""
    order = Case(
        *(When(role=role, then=rank) for rank, role in enumerate(Membership.Role.values)),
        default=len(Membership.Role.values),
    )
    return (
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .order_by(order, "user__username")
    )


def membership_get(*, tenant: Tenant, membership_id: int) -> Membership:
    """One of the tenant's memberships, or Membership.DoesNotExist (another tenant's too)."""
    return Membership.objects.select_related("user", "tenant").get(tenant=tenant, pk=membership_id)


def tenant_model_names(*, tenant: Tenant) -> list[str]:
    """The models a key of this tenant may be limited to: the tenant's list, or every enabled
    model when the tenant has none."""
    if names := sorted(tenant.allowed_models.values_list("name", flat=True)):
        return names
    return list(Model.objects.filter(enabled=True).order_by("name").values_list("name", flat=True))
