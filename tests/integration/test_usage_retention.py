"""Usage retention: raw records and hourly roll-ups past their days are deleted, oldest first,
in bounded batches; newer rows and every daily roll-up stay; 0 days keeps everything."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway.models import DailyUsage, HourlyUsage
from gateway.models import UsageRecord as UsageRow
from gateway.usage.retention import usage_prune
from gateway.usage.tasks import prune_usage
from tests.factories import make_key
from tests.integration.test_usage_task import record, run

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def retention(settings):
    def set_days(records: int, hourly: int) -> None:
        settings.TOLLGATE = {
            **settings.TOLLGATE,
            "USAGE_RETENTION_DAYS": records,
            "HOURLY_USAGE_RETENTION_DAYS": hourly,
        }

    set_days(90, 35)
    return set_days


def days_ago(days: float) -> float:
    return (NOW - timedelta(days=days)).timestamp()


@pytest.fixture
def history():
    """Records 1, 20, 40, 89.9, 91 and 200 days old, of two tenants, rolled up as they landed."""
    key, _ = make_key()
    other, _ = make_key()
    ages = (1, 20, 40, 89.9, 91, 200)
    run([record((key, other)[n % 2], n, started_at=days_ago(age)) for n, age in enumerate(ages)])
    return ages


def daily_totals() -> dict:
    return {
        (row.day, row.tenant_id): (row.requests, row.input_tokens, row.cost_usd)
        for row in DailyUsage.objects.all()
    }


def test_old_records_go_and_every_roll_up_total_stays(retention, history):
    daily_before = daily_totals()

    pruned = usage_prune(now=NOW)

    left = sorted(
        round((NOW - started).total_seconds() / 86400, 1)
        for started in UsageRow.objects.values_list("started_at", flat=True)
    )
    assert left == [1, 20, 40, 89.9]
    assert pruned.records == 2
    assert daily_totals() == daily_before
    assert len(daily_before) == 6
    hours_left = sorted(
        round((NOW - hour).total_seconds() / 86400)
        for hour in HourlyUsage.objects.values_list("hour", flat=True)
    )
    assert hours_left == [1, 20]  # hourly kept 35 days
    assert pruned.hourly == 4


def test_zero_days_keeps_everything(retention, history):
    retention(0, 0)

    assert usage_prune(now=NOW).records == 0
    assert UsageRow.objects.count() == len(history)
    assert HourlyUsage.objects.count() == len(history)


def test_deletes_go_in_bounded_batches_oldest_first(retention):
    key, _ = make_key()
    run([record(key, n, started_at=days_ago(100 + n / 100)) for n in range(7)])
    run([record(key, 50, started_at=days_ago(1))])

    with CaptureQueriesContext(connection) as queries:
        pruned = usage_prune(now=NOW, batch_size=3, max_batches=2)

    table = UsageRow._meta.db_table
    deletes = [q["sql"] for q in queries if q["sql"].startswith(f'DELETE FROM "{table}"')]
    assert len(deletes) == 2  # max_batches of batch_size: the rest waits for the next run
    assert pruned.records == 6
    left = sorted(UsageRow.objects.values_list("request_id", flat=True))
    # The next run takes the youngest of the old ones; the recent record was never at risk.
    assert left == [f"req_task_{key.pk}_0", f"req_task_{key.pk}_50"]
    assert usage_prune(now=NOW, batch_size=3, max_batches=2).records == 1
    assert UsageRow.objects.count() == 1


def test_the_beat_task_prunes_and_reports_counts(retention, history, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    assert prune_usage.apply().get() == {"records": 2, "hourly": 4}
    assert prune_usage.apply().get() == {"records": 0, "hourly": 0}


def test_the_command_prunes_without_beat(retention, history, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    out = io.StringIO()

    call_command("usage_prune", stdout=out)

    assert out.getvalue().strip() == "Deleted 2 usage records and 4 hourly roll-ups."
    assert UsageRow.objects.count() == len(history) - 2
