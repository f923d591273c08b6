"""Hourly and daily roll-ups: written together from the same inserted rows, so both agree with
the raw records, across an hour's and a day's boundary, and a batch delivered again adds nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from gateway.models import DailyUsage, HourlyUsage
from gateway.models import UsageRecord as UsageRow
from tests.factories import make_key
from tests.integration.test_usage_task import record, run

pytestmark = pytest.mark.django_db

SUMS = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd", "latency_ms_total")
BEFORE_MIDNIGHT = datetime(2026, 11, 29, 23, 59, 59, 500000, tzinfo=UTC).timestamp()


def raw_totals(bucket) -> dict[tuple, dict]:
    """The roll-up grain summed from the stored records themselves (messages, with a tenant)."""
    totals: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    rows = UsageRow.objects.filter(endpoint="messages", tenant__isnull=False)
    for row in rows:
        group = (
            bucket(row.started_at),
            row.tenant_id,
            row.api_key_id or 0,
            row.model,
            row.provider,
        )
        sums = totals[group]
        sums["requests"] += 1
        sums["errors"] += row.status == "error"
        sums["input_tokens"] += row.input_tokens
        sums["output_tokens"] += row.output_tokens
        sums["cost_usd"] += row.cost_usd
        sums["latency_ms_total"] += row.latency_ms
    return dict(totals)


def rolled_up(model, bucket: str) -> dict[tuple, dict]:
    return {
        (getattr(r, bucket), r.tenant_id, r.api_key_id, r.model, r.provider): {
            s: getattr(r, s) for s in SUMS
        }
        for r in model.objects.all()
    }


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def test_a_batch_across_an_hour_and_a_day_boundary_lands_in_each_bucket():
    key, _ = make_key()
    batch = [
        record(key, 0, started_at=BEFORE_MIDNIGHT - 3600, input_tokens=1),  # 22:59:59.5
        record(key, 1, started_at=BEFORE_MIDNIGHT, input_tokens=10),  # 23:59:59.5
        record(key, 2, started_at=BEFORE_MIDNIGHT + 0.5, input_tokens=100),  # 00:00:00.0
        record(key, 3, started_at=BEFORE_MIDNIGHT + 3600, input_tokens=1000),  # 00:59:59.5
    ]
    assert run(batch) == 4

    hourly = {row.hour: row.input_tokens for row in HourlyUsage.objects.filter(tenant=key.tenant)}
    assert hourly == {
        datetime(2026, 11, 29, 22, tzinfo=UTC): 1,
        datetime(2026, 11, 29, 23, tzinfo=UTC): 10,
        datetime(2026, 11, 30, 0, tzinfo=UTC): 1100,
    }
    daily = dict(DailyUsage.objects.filter(tenant=key.tenant).values_list("day", "input_tokens"))
    assert daily == {datetime(2026, 11, 29).date(): 11, datetime(2026, 11, 30).date(): 1100}


def test_a_batch_delivered_again_adds_nothing_to_the_hourly_roll_ups():
    key, _ = make_key()
    batch = [record(key, n, started_at=BEFORE_MIDNIGHT - 1800 + 600 * n) for n in range(5)]
    run(batch)
    before = rolled_up(HourlyUsage, "hour")

    assert run(batch) == 0
    assert run([*batch[1:3], record(key, 9, started_at=BEFORE_MIDNIGHT)]) == 1

    after = rolled_up(HourlyUsage, "hour")
    eleven = (datetime(2026, 11, 29, 23, tzinfo=UTC), key.tenant_id, key.pk, "claude-test", "fake")
    assert after[eleven]["requests"] == before[eleven]["requests"] + 1
    assert sum(v["requests"] for v in after.values()) == 6
    assert after == raw_totals(hour_of)


def test_hourly_and_daily_roll_ups_agree_with_the_raw_records():
    key, _ = make_key()
    other, _ = make_key(tenant=key.tenant)
    stranger, _ = make_key()
    models = ("claude-a", "claude-b")
    batch = [
        record(
            (key, other, stranger)[n % 3],
            n,
            started_at=BEFORE_MIDNIGHT - 40 * 3600 + 1931 * n,
            model=models[n % 2],
            provider=("fake", "backup")[n % 5 == 0],
            input_tokens=n,
            output_tokens=2 * n,
            cost_usd=Decimal("0.000000123") * n,
            latency_ms=float(n),
            status="error" if n % 7 == 0 else "ok",
        )
        for n in range(120)
    ]
    # Neither rolls up: a token count, and a record nobody authenticated.
    batch.append(record(key, 500, endpoint="count_tokens", input_tokens=999))
    batch.append(record(key, 501, tenant_id=None, key_id=None))
    for start in range(0, len(batch), 17):  # batches of every size, some redelivered
        run(batch[start : start + 17])
        run(batch[max(0, start - 5) : start + 3])

    assert rolled_up(HourlyUsage, "hour") == raw_totals(hour_of)
    assert rolled_up(DailyUsage, "day") == raw_totals(lambda when: when.date())
    assert HourlyUsage.objects.filter(input_tokens__gte=999).count() == 0
    per_day: dict = defaultdict(int)
    for row in HourlyUsage.objects.all():
        per_day[row.hour.date()] += row.requests
    daily = DailyUsage.objects.values("day").annotate(total=Sum("requests"))
    assert dict(per_day) == {row["day"]: row["total"] for row in daily}
