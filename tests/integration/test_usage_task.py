"""The usage task: each record stored once, roll-ups counted once, keys' last use moved on, and
a record the database refuses parked alone while the rest of its batch lands."""

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from django.db import OperationalError
from django.urls import reverse

from accounts.models import ApiKey
from gateway.models import DailyUsage, UsageDeadLetter
from gateway.models import UsageRecord as UsageRow
from gateway.usage import services
from gateway.usage.record import UsageRecord
from gateway.usage.recorder import landed_id
from gateway.usage.selectors import landed_request_ids
from gateway.usage.spool import pack
from gateway.usage.tasks import record_usage_batch
from tests.factories import make_key

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()
NOON_DAY = datetime.fromtimestamp(NOON, UTC).date()


def record(key: ApiKey, n: int, **fields) -> UsageRecord:
    values = {
        "request_id": f"req_task_{key.pk}_{n}",
        "started_at": NOON + n,
        "finished_at": NOON + n + 0.25,
        "status": "ok",
        "http_status": 200,
        "tenant_id": key.tenant_id,
        "key_id": key.pk,
        "key_prefix": key.prefix,
        "model": "claude-test",
        "provider": "fake",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": Decimal("0.000600001"),
        "billed": True,
        "latency_ms": 250.0,
        **fields,
    }
    return UsageRecord(**values)


def payload(records: list[UsageRecord]) -> str:
    """What the recorder queues: base64 of a msgpack array of msgpack-encoded records."""
    return base64.b64encode(pack([msgspec.msgpack.encode(r) for r in records])).decode()


def run(records: list[UsageRecord]) -> int:
    return record_usage_batch.apply(args=[payload(records)]).get()


def test_the_same_batch_twice_stores_each_record_once_and_rolls_up_once():
    key, _ = make_key()
    batch = [record(key, n) for n in range(5)]
    batch.append(record(key, 5, status="error", http_status=529, error_type="overloaded_error"))

    assert run(batch) == 6
    assert run(batch) == 0
    assert run([*batch[:2], record(key, 6)]) == 1

    assert UsageRow.objects.filter(api_key=key).count() == 7
    daily = DailyUsage.objects.get(tenant_id=key.tenant_id)
    assert (daily.requests, daily.errors) == (7, 1)
    assert (daily.input_tokens, daily.output_tokens) == (700, 140)
    assert daily.cost_usd == Decimal("0.004200007")
    assert daily.latency_ms_total == 7 * 250.0
    assert (daily.api_key_id, daily.api_key_prefix, daily.day) == (key.pk, key.prefix, NOON_DAY)


def test_stored_rows_carry_every_field_of_the_record():
    key, _ = make_key()
    sent = record(
        key,
        1,
        cache_read_tokens=30,
        cache_write_tokens=40,
        reasoning_tokens=5,
        estimated=True,
        ttfb_ms=12.5,
        overhead_ms=1.25,
        streamed=True,
        upstream_model="gpt-up",
    )
    run([sent])

    row = UsageRow.objects.get(request_id=sent.request_id)
    assert (row.tenant_id, row.api_key_id, row.model, row.provider, row.upstream_model) == (
        key.tenant_id,
        key.pk,
        "claude-test",
        "fake",
        "gpt-up",
    )
    assert (row.cache_read_tokens, row.cache_write_tokens, row.reasoning_tokens) == (30, 40, 5)
    assert row.estimated and row.streamed and row.billed
    assert (row.ttfb_ms, row.overhead_ms, row.latency_ms) == (12.5, 1.25, 250.0)
    assert row.cost_usd == Decimal("0.000600001")
    assert row.started_at == datetime.fromtimestamp(NOON + 1, UTC)
    assert row.finished_at - row.started_at == timedelta(milliseconds=250)


def test_roll_ups_are_per_day_key_model_and_provider():
    key, _ = make_key()
    other, _ = make_key(tenant=key.tenant)
    run(
        [
            record(key, 1),
            record(key, 2, model="claude-other"),
            record(other, 3),
            record(key, 4, started_at=NOON + 86_400),
        ]
    )

    rows = DailyUsage.objects.filter(tenant_id=key.tenant_id)
    assert sorted((r.day.day, r.api_key_id, r.model, r.requests) for r in rows) == sorted(
        [
            (29, key.pk, "claude-test", 1),
            (29, key.pk, "claude-other", 1),
            (29, other.pk, "claude-test", 1),
            (30, key.pk, "claude-test", 1),
        ]
    )


def test_last_used_at_is_the_latest_start_and_never_moves_back():
    key, _ = make_key()
    run([record(key, 3), record(key, 9), record(key, 1)])
    key.refresh_from_db()
    assert key.last_used_at == datetime.fromtimestamp(NOON + 9, UTC)

    run([record(key, 5)])

    key.refresh_from_db()
    assert key.last_used_at == datetime.fromtimestamp(NOON + 9, UTC)


def test_unauthenticated_requests_are_stored_but_not_rolled_up():
    anonymous = UsageRecord(
        request_id="req_anonymous",
        started_at=NOON,
        finished_at=NOON,
        status="error",
        http_status=401,
        error_type="authentication_error",
    )

    assert run([anonymous]) == 1

    row = UsageRow.objects.get(request_id="req_anonymous")
    assert row.tenant_id is None and row.api_key_id is None and not row.billed
    assert not DailyUsage.objects.exists()


def test_a_record_of_a_deleted_key_is_kept_without_it():
    key, _ = make_key()
    late = record(key, 1)
    key.delete()

    assert run([late]) == 1

    row = UsageRow.objects.get(request_id=late.request_id)
    assert row.api_key_id is None and row.tenant_id == late.tenant_id
    assert DailyUsage.objects.get(tenant_id=late.tenant_id).api_key_id == 0


# --- One bad record never sinks a batch ---------------------------------------------------------


def other_tenant_batch(hostile: UsageRecord, n: int = 40) -> tuple[ApiKey, list[UsageRecord]]:
    """40 records of another tenant with the hostile one in the middle of the same batch."""
    key, _ = make_key()
    batch = [record(key, i) for i in range(n)]
    return key, [*batch[: n // 2], hostile, *batch[n // 2 :]]


def test_a_record_with_a_nul_parks_alone_and_the_other_tenants_40_land():
    """A record built before strings were cleaned (an old spool file): the database refuses it."""
    hostile_key, _ = make_key()
    hostile = record(hostile_key, 99, model="oa-echo\x00", status="error", http_status=404)
    key, batch = other_tenant_batch(hostile)

    assert run(batch) == 40

    assert UsageRow.objects.filter(api_key=key).count() == 40
    assert DailyUsage.objects.get(api_key_id=key.pk).requests == 40
    assert not UsageRow.objects.filter(request_id=hostile.request_id).exists()
    parked = UsageDeadLetter.objects.get()
    assert parked.request_id == hostile.request_id
    assert parked.tenant_id == hostile_key.tenant_id
    assert parked.reason.startswith("DataError: ") and "NUL" in parked.reason
    assert json.loads(parked.record)["model"] == "oa-echo\x00"  # kept as it came, escaped
    assert "\x00" not in parked.record


def test_a_number_the_database_cannot_hold_parks_only_its_record():
    key, batch = other_tenant_batch(record(make_key()[0], 99, input_tokens=2**64 - 1), n=6)

    assert run(batch) == 6

    assert UsageRow.objects.filter(api_key=key).count() == 6
    assert "out of range" in UsageDeadLetter.objects.get().reason


def test_a_batch_delivered_again_parks_its_bad_record_once():
    key, batch = other_tenant_batch(record(make_key()[0], 99, model="bad\x00"), n=4)

    assert run(batch) == 4
    assert run(batch) == 0

    assert UsageRow.objects.filter(api_key=key).count() == 4
    assert UsageDeadLetter.objects.count() == 1


def test_a_frame_that_is_not_a_record_parks_alone():
    key, _ = make_key()
    good = [msgspec.msgpack.encode(record(key, n)) for n in range(3)]
    garbage = msgspec.msgpack.encode({"request_id": 7})
    payload = base64.b64encode(pack([good[0], garbage, *good[1:]])).decode()

    assert record_usage_batch.apply(args=[payload]).get() == 3

    assert UsageRow.objects.filter(api_key=key).count() == 3
    parked = UsageDeadLetter.objects.get()
    assert parked.request_id.startswith("frame_") and parked.tenant_id is None
    assert parked.reason.startswith("not a usage record: ")
    assert base64.b64decode(json.loads(parked.record)["frame_base64"]) == garbage


def test_a_payload_that_is_not_a_batch_is_parked_not_dropped():
    assert record_usage_batch.apply(args=["not base64 at all!"]).get() == 0

    assert UsageDeadLetter.objects.get().reason.startswith("not a usage record: batch: ")


def test_the_database_being_unreachable_parks_nothing(monkeypatch):
    """An outage is no record's fault: the batch is raised for a retry, whole."""
    key, _ = make_key()

    def unreachable(**_):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "usage_records_store", unreachable)

    with pytest.raises(OperationalError):
        record_usage_batch.apply(args=[payload([record(key, 1)])], throw=True)
    assert not UsageDeadLetter.objects.exists()


def test_records_stored_or_parked_are_what_the_spool_sees_as_landed():
    key, _ = make_key()
    good = record(key, 1)
    refused = record(key, 2, model="bad\x00")
    garbage = msgspec.msgpack.encode({"request_id": 7})
    frames = [msgspec.msgpack.encode(good), msgspec.msgpack.encode(refused), garbage]
    record_usage_batch.apply(args=[base64.b64encode(pack(frames)).decode()]).get()

    ids = [landed_id(frame) for frame in frames]

    assert ids[:2] == [good.request_id, refused.request_id]
    assert landed_request_ids([*ids, "req_never_sent"]) == set(ids)


def test_the_admin_shows_a_parked_record_with_its_reason_and_changes_nothing(admin_client):
    run([record(make_key()[0], 1, model="oa-echo\x00")])
    parked = UsageDeadLetter.objects.get()

    listing = admin_client.get(reverse("admin:gateway_usagedeadletter_changelist"))
    detail = admin_client.get(reverse("admin:gateway_usagedeadletter_change", args=[parked.pk]))
    add = admin_client.get(reverse("admin:gateway_usagedeadletter_add"))
    delete = admin_client.post(
        reverse("admin:gateway_usagedeadletter_delete", args=[parked.pk]), {"post": "yes"}
    )

    assert listing.status_code == 200 and parked.request_id in listing.content.decode()
    page = detail.content.decode()
    assert detail.status_code == 200
    assert "DataError" in page and "NUL" in page  # the reason
    assert "oa-echo\\u0000" in page  # the record, as it came
    assert add.status_code == 403 and delete.status_code == 403
    assert UsageDeadLetter.objects.filter(pk=parked.pk).exists()
