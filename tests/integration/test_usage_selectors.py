"""Usage reads: roll-up sums per group, and latency percentiles in PostgreSQL and in Python."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.dashboard import selectors
from gateway.dashboard.selectors import DateRange, latency_percentiles, percentile, usage_rows
from tests.factories import DailyUsageFactory, TenantFactory, UsageRecordFactory, make_key

pytestmark = pytest.mark.django_db

FEB = DateRange(date(2026, 2, 1), date(2026, 2, 28))


def on(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 2, day, hour, tzinfo=UTC)


@pytest.fixture
def records():
    """Random latencies over two days, two models and a key; one failure to leave out."""
    tenant = TenantFactory(name="acme")
    key, _ = make_key(tenant)
    rng = random.Random(7)
    for n in range(120):
        UsageRecordFactory(
            tenant=tenant,
            api_key=key if n % 3 else None,
            model=("m1", "m2")[n % 2],
            latency_ms=rng.uniform(50, 3000),
            started_at=on(1 + n % 2, hour=n % 24),
        )
    UsageRecordFactory(tenant=tenant, latency_ms=999_999, status="error", started_at=on(1))
    return tenant


@pytest.mark.parametrize("group_by", [(), ("day",), ("model",), ("day", "model", "key")])
def test_python_percentiles_match_postgresql(records, group_by, monkeypatch):
    in_database = latency_percentiles(tenant=records, period=FEB, group_by=group_by)
    monkeypatch.setattr(selectors, "_percentiles_in_database", selectors._percentiles_in_python)
    in_python = latency_percentiles(tenant=records, period=FEB, group_by=group_by)

    assert in_database.keys() == in_python.keys() and in_database
    for group, (p50, p95) in in_database.items():
        assert in_python[group] == (pytest.approx(p50), pytest.approx(p95))
        assert p95 < 3000  # the failed request's 999,999 ms is not in there


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.95) == pytest.approx(3.85)


def test_records_outside_the_range_or_tenant_are_left_out():
    tenant, other = TenantFactory(name="acme"), TenantFactory(name="globex")
    UsageRecordFactory(tenant=tenant, latency_ms=100, started_at=on(28, hour=23))
    UsageRecordFactory(tenant=tenant, latency_ms=900, started_at=datetime(2026, 3, 1, tzinfo=UTC))
    UsageRecordFactory(tenant=other, latency_ms=700, started_at=on(10))

    assert latency_percentiles(tenant=tenant, period=FEB) == {(): (100, 100)}


def test_usage_rows_sum_per_group_and_name_keys():
    tenant = TenantFactory(name="acme")
    key, _ = make_key(tenant, name="ci")
    DailyUsageFactory(tenant=tenant, day=date(2026, 2, 1), api_key=key, model="m1", requests=3)
    DailyUsageFactory(tenant=tenant, day=date(2026, 2, 2), api_key=key, model="m2", requests=4)
    DailyUsageFactory(tenant=tenant, day=date(2026, 2, 2), model="m1", requests=5)

    by_key = usage_rows(tenant=tenant, period=FEB, group_by=["key"])
    totals = usage_rows(tenant=tenant, period=FEB, group_by=[])

    assert [(r.key_id, r.key_name, r.requests) for r in by_key] == [(0, None, 5), (key.pk, "ci", 7)]
    assert [r.label("key") for r in by_key] == ["(no key)", f"{key.prefix} (ci)"]
    assert totals[0].requests == 12 and totals[0].day is None


def test_an_empty_range_gives_one_row_of_zeros():
    tenant = TenantFactory(name="acme")

    (totals,) = usage_rows(tenant=tenant, period=FEB, group_by=())

    assert (totals.requests, totals.error_rate, totals.latency_p50_ms) == (0, 0.0, None)


def test_unknown_dimensions_are_refused():
    with pytest.raises(ValueError, match="unknown group_by: colour"):
        usage_rows(tenant=TenantFactory(), period=FEB, group_by=["colour"])


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 2, 2), date(2026, 2, 1), "start must be on or before end"),
        (date(2025, 1, 1), date(2026, 1, 2), "at most 366 days"),
    ],
)
def test_bad_date_ranges_are_refused(start, end, message):
    with pytest.raises(ValueError, match=message):
        DateRange.build(start, end)


def test_a_range_covers_whole_utc_days():
    period = DateRange.build(date(2026, 2, 1), date(2026, 2, 3))

    assert len(period.days) == 3
    assert period.bounds == (on(1, 0), on(1, 0) + timedelta(days=3))
