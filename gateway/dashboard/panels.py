"""Which charts a dashboard page shows, and how an overview's rows become their series."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.utils.safestring import SafeString

from gateway.dashboard.charts import Series, line_chart
from gateway.dashboard.platform import PlatformOverview, PlatformRow
from gateway.dashboard.selectors import Overview, UsageRow

TOP_GROUPS = 7  # more lines than this cannot be told apart; the rest are summed as "Other"
OTHER = "Other"


@dataclass(frozen=True)
class Metric:
    slug: str
    title: str
    unit: str
    value: Callable[[UsageRow], float | None]
    empty: float | None  # the value of a day without requests: 0 for sums, a gap for rates


METRICS = (
    Metric("requests", "Requests", "count", lambda row: row.requests, 0),
    Metric("tokens", "Tokens (input + output)", "count", lambda row: row.tokens, 0),
    Metric("cost", "Cost (USD)", "usd", lambda row: float(row.cost_usd), 0),
    Metric(
        "error-rate",
        "Error rate",
        "percent",
        lambda row: row.error_rate if row.requests else None,
        None,
    ),
)


def _metric_charts(per: str, dimension: str, buckets: list, by_group: dict) -> list[SafeString]:
    """One line chart per metric, one series per group, over the days or hours `buckets`."""
    return [
        line_chart(
            title=f"{metric.title} per {per}, by {dimension}",
            chart_id=f"chart-{metric.slug}",
            days=buckets,
            series=[
                Series(name, tuple(_value(metric, per_bucket.get(when)) for when in buckets))
                for name, per_bucket in by_group.items()
            ],
            unit=metric.unit,
        )
        for metric in METRICS
    ]


def overview_charts(overview: Overview) -> list[SafeString]:
    """Requests, tokens, cost and error rate per day split by the dimension, then latency."""
    days = overview.period.days
    by_group = grouped_by_day(overview.daily_by_group, overview.dimension)
    charts = _metric_charts("day", overview.dimension, days, by_group)
    daily = {row.day: row for row in overview.daily}
    charts.append(
        line_chart(
            title="Latency of successful requests per day (p50 and p95)",
            chart_id="chart-latency",
            days=days,
            series=[
                Series("p50", tuple(_latency(daily.get(day), "p50") for day in days)),
                Series("p95", tuple(_latency(daily.get(day), "p95") for day in days)),
            ],
            unit="ms",
        )
    )
    return charts


def grouped_by_day(rows: Iterable[UsageRow], dimension: str) -> dict[str, dict[date, UsageRow]]:
    """{group label: {day: row}}, busiest TOP_GROUPS groups first, the rest merged as OTHER."""
    per_group: dict[object, list[UsageRow]] = defaultdict(list)
    for row in rows:
        per_group[row.group(dimension)].append(row)
    ranked = sorted(per_group.values(), key=lambda rs: (-sum(r.requests for r in rs), _label(rs)))
    if len(ranked) > TOP_GROUPS + 1:
        rest = [row for rs in ranked[TOP_GROUPS:] for row in rs]
        ranked = [*ranked[:TOP_GROUPS], rest]
    result: dict[str, dict[date, UsageRow]] = {}
    for position, group_rows in enumerate(ranked):
        name = OTHER if position == TOP_GROUPS else group_rows[0].label(dimension)
        per_day: dict[date, list[UsageRow]] = defaultdict(list)
        for row in group_rows:
            per_day[row.day].append(row)
        result[name] = {day: merged(day_rows) for day, day_rows in per_day.items()}
    return result


def _label(rows: list[UsageRow]) -> str:
    return str(rows[0].model or rows[0].provider or rows[0].key_prefix or "")


def merged(rows: list[UsageRow]) -> UsageRow:
    """One row summing several groups' counts (percentiles cannot be summed: left out)."""
    if len(rows) == 1:
        return rows[0]
    return UsageRow(
        day=rows[0].day,
        requests=sum(r.requests for r in rows),
        errors=sum(r.errors for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cache_read_tokens=sum(r.cache_read_tokens for r in rows),
        cache_write_tokens=sum(r.cache_write_tokens for r in rows),
        cost_usd=sum((r.cost_usd for r in rows), start=rows[0].cost_usd * 0),
        latency_ms_total=sum(r.latency_ms_total for r in rows),
    )


def _value(metric: Metric, row: UsageRow | None) -> float | None:
    return metric.empty if row is None else metric.value(row)


def _latency(row: UsageRow | None, which: str) -> float | None:
    if row is None:
        return None
    return row.latency_p50_ms if which == "p50" else row.latency_p95_ms


def platform_charts(overview: PlatformOverview) -> list[SafeString]:
    """The platform view's charts: requests, tokens, cost and error rate per day or hour, split
    by the dimension, and the average latency (percentiles need raw records: not here)."""
    buckets = overview.buckets
    unit = overview.granularity
    by_group = _platform_groups(overview.by_time_and_group, overview.dimension)
    charts = _metric_charts(unit, overview.dimension, buckets, by_group)
    per_time = {row.time: row for row in overview.by_time}
    average = tuple(getattr(per_time.get(when), "latency_ms_avg", None) for when in buckets)
    charts.append(
        line_chart(
            title=f"Average latency per {unit}",
            chart_id="chart-latency",
            days=buckets,
            series=[Series("average", average)],
            unit="ms",
        )
    )
    return charts


def _platform_groups(rows: Iterable[PlatformRow], dimension: str) -> dict[str, dict]:
    """{group label: {bucket: row}}, busiest TOP_GROUPS first, the rest summed as OTHER."""
    per_group: dict[object, list[PlatformRow]] = defaultdict(list)
    for row in rows:
        per_group[row.group(dimension)].append(row)
    ranked = sorted(
        per_group.values(), key=lambda rs: (-sum(r.requests for r in rs), rs[0].label(dimension))
    )
    if len(ranked) > TOP_GROUPS + 1:
        ranked = [*ranked[:TOP_GROUPS], [row for rs in ranked[TOP_GROUPS:] for row in rs]]
    result: dict[str, dict] = {}
    for position, group_rows in enumerate(ranked):
        name = OTHER if position == TOP_GROUPS else group_rows[0].label(dimension)
        per_time: dict[datetime, list[PlatformRow]] = defaultdict(list)
        for row in group_rows:
            per_time[row.time].append(row)
        result[name] = {when: _platform_merged(rs) for when, rs in per_time.items()}
    return result


def _platform_merged(rows: list[PlatformRow]) -> PlatformRow:
    if len(rows) == 1:
        return rows[0]
    sums = {
        name: sum(getattr(r, name) for r in rows)
        for name in ("requests", "errors", "input_tokens", "output_tokens", "latency_ms_total")
    }
    return PlatformRow(time=rows[0].time, cost_usd=sum(r.cost_usd for r in rows), **sums)
