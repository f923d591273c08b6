"""The worker's writes: usage records, exactly once, with their daily and hourly roll-ups.

`usage_records_store` inserts a batch with ON CONFLICT (request_id) DO NOTHING RETURNING
request_id and rolls up only the rows that came back, in the same transaction, so a batch
delivered twice (a resent spool file, a redelivered Celery message) changes nothing the
second time. Keys' `last_used_at` is moved forward here too, never on the request path.

One bad row never sinks a batch: `usage_batch_store` tries the batch whole, and if the database
refuses it for anything but an outage, again record by record, each in its own savepoint; a
record refused on its own is parked in `UsageDeadLetter` with the reason, and the rest land.
"""

from __future__ import annotations

import json
import logging
from base64 import b64encode
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import msgspec
from django.db import (
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    connection,
    transaction,
)
from django.db.models import Q
from django.utils import timezone

from accounts.models import MAX_CAPTURE_BYTES, MAX_CAPTURE_DAYS, ApiKey, Tenant
from gateway.models import CapturedBody, DailyUsage, HourlyUsage, UsageDeadLetter
from gateway.models import UsageRecord as UsageRow
from gateway.usage.record import UsageRecord, clean
from gateway.usage.spool import frame_id

log = logging.getLogger("tollgate.usage")
# The database is unreachable or not the schema this code expects (a worker started before
# `migrate`): no record is at fault, so the whole batch must wait and be tried again.
DATABASE_OUTAGE = (OperationalError, InterfaceError, InternalError, ProgrammingError)
BIGINT = 2**63

RECORD_COLUMNS = (
    "request_id",
    "endpoint",
    "tenant_id",
    "api_key_id",
    "model",
    "provider",
    "upstream_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "estimated",
    "cost_usd",
    "billed",
    "latency_ms",
    "ttfb_ms",
    "overhead_ms",
    "status",
    "http_status",
    "error_type",
    "streamed",
    "started_at",
    "finished_at",
    "recorded_at",
    "error_message",
    "client_request_id",
    "trace_id",
    "upstream_request_id",
    "attempts",
    "warnings",
    "cost_parts",
)
SUMMED = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "latency_ms_total",
)
ROLLUP_DIMENSIONS = ("tenant_id", "api_key_id", "model", "provider")
CHUNK = 500


def day_of(record: UsageRecord) -> date:
    return datetime.fromtimestamp(record.started_at, UTC).date()


def hour_of(record: UsageRecord) -> datetime:
    return datetime.fromtimestamp(record.started_at, UTC).replace(minute=0, second=0, microsecond=0)


def usage_batch_store(
    *, records: list[UsageRecord], unreadable: Iterable[tuple[bytes, str]] = ()
) -> list[UsageRecord]:
    """Store a batch; records the database refuses one by one, and frames that were not even
    records (`unreadable`: raw bytes and why), are parked. Returns the records inserted.

    Raises DATABASE_OUTAGE errors (nothing is parked then: the batch is to be tried again)."""
    try:
        inserted = usage_records_store(records=records)
    except DATABASE_OUTAGE:
        raise
    except Exception as exc:
        log.warning(
            "usage batch of %d records refused (%s); storing them one by one", len(records), exc
        )
        inserted = usage_records_store_each(records=records)
    if unreadable:
        usage_dead_letters_park(letters=[_unreadable_letter(f, why) for f, why in unreadable])
    return inserted


def usage_records_store_each(*, records: list[UsageRecord]) -> list[UsageRecord]:
    """Record by record, each in a savepoint; those refused are parked, in one transaction."""
    inserted: list[UsageRecord] = []
    refused: list[UsageDeadLetter] = []
    with transaction.atomic():
        for record in records:
            try:
                inserted += usage_records_store(records=[record])  # nested: a savepoint
            except DATABASE_OUTAGE:
                raise
            except Exception as exc:
                refused.append(_dead_letter(record, f"{type(exc).__name__}: {exc}"))
        usage_dead_letters_park(letters=refused)
    return inserted


def usage_dead_letters_park(*, letters: list[UsageDeadLetter]) -> None:
    """Keep what could not be stored; a record parked before (a batch redelivered) stays once."""
    for letter in letters:
        log.error("usage record %s parked as a dead letter: %s", letter.request_id, letter.reason)
    UsageDeadLetter.objects.bulk_create(letters, ignore_conflicts=True)


def _dead_letter(record: UsageRecord, reason: str) -> UsageDeadLetter:
    # ensure_ascii: a NUL or a lone surrogate becomes a \u escape, which a text column takes.
    text = json.dumps(msgspec.to_builtins(record), ensure_ascii=True, sort_keys=True)
    tenant = record.tenant_id
    return UsageDeadLetter(
        request_id=clean(record.request_id, 64),
        tenant_id=tenant if tenant is not None and -BIGINT <= tenant < BIGINT else None,
        record=text,
        reason=clean(reason, 2000),
    )


def _unreadable_letter(frame: bytes, reason: str) -> UsageDeadLetter:
    return UsageDeadLetter(
        request_id=frame_id(frame),
        record=json.dumps({"frame_base64": b64encode(frame).decode("ascii")}),
        reason=clean(f"not a usage record: {reason}", 2000),
    )


def usage_records_store(*, records: list[UsageRecord]) -> list[UsageRecord]:
    """Insert what is new, roll it up, touch keys; returns the records actually inserted."""
    records = list({r.request_id: r for r in records}.values())
    with transaction.atomic():
        _unlink_deleted_owners(records)
        inserted = [r for chunk in _chunks(records) for r in _insert(chunk)]
        _roll_up(inserted)
        _touch_keys(inserted)
        _keep_bodies(inserted)
    return inserted


def _keep_bodies(records: list[UsageRecord]) -> None:
    """The bodies captured with new records (only a tenant that asked has any)."""
    rows = [
        CapturedBody(
            request_id=r.request_id,
            tenant_id=r.tenant_id,
            request=clean(r.captured.request, 10 * MAX_CAPTURE_BYTES),
            response=clean(r.captured.response, 10 * MAX_CAPTURE_BYTES),
            truncated=r.captured.truncated,
            captured_at=datetime.fromtimestamp(r.started_at, UTC),
            expires_at=datetime.fromtimestamp(r.started_at, UTC)
            + timedelta(days=min(max(r.captured.days, 1), MAX_CAPTURE_DAYS)),
        )
        for r in records
        if r.captured is not None and r.tenant_id is not None
    ]
    if rows:
        CapturedBody.objects.bulk_create(rows, ignore_conflicts=True)


def captured_bodies_expire(*, now: datetime, batch: int = 1000) -> int:
    """Delete captured bodies past their retention, `batch` rows at a time; returns how many."""
    deleted = 0
    while True:
        ids = list(
            CapturedBody.objects.filter(expires_at__lt=now).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += CapturedBody.objects.filter(pk__in=ids).delete()[0]


def _chunks(records: list[UsageRecord]) -> Iterable[list[UsageRecord]]:
    for start in range(0, len(records), CHUNK):
        yield records[start : start + CHUNK]


def _unlink_deleted_owners(records: list[UsageRecord]) -> None:
    """A record may outlive its key or tenant: keep it, without the dangling reference."""
    tenants = set(
        Tenant.objects.filter(pk__in={r.tenant_id for r in records if r.tenant_id}).values_list(
            "pk", flat=True
        )
    )
    keys = set(
        ApiKey.objects.filter(pk__in={r.key_id for r in records if r.key_id}).values_list(
            "pk", flat=True
        )
    )
    for r in records:
        if r.tenant_id is not None and r.tenant_id not in tenants:
            r.tenant_id = None
        if r.key_id is not None and r.key_id not in keys:
            r.key_id = None


def _when(epoch: float):
    return connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(epoch, UTC))


def _row(r: UsageRecord, now) -> tuple:
    ops = connection.ops
    return (
        r.request_id[:40],
        r.endpoint,
        r.tenant_id,
        r.key_id,
        r.model,
        r.provider,
        r.upstream_model,
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.cache_write_1h_tokens,
        r.reasoning_tokens,
        r.estimated,
        ops.adapt_decimalfield_value(r.cost_usd, 18, 9),
        r.billed,
        r.latency_ms,
        r.ttfb_ms,
        r.overhead_ms,
        r.status,
        r.http_status,
        r.error_type,
        r.streamed,
        _when(r.started_at),
        _when(r.finished_at),
        now,
        r.error_message,
        r.client_request_id,
        r.trace_id,
        r.upstream_request_id,
        ops.adapt_json_value(r.attempts, None),
        ops.adapt_json_value(r.warnings, None),
        ops.adapt_json_value(r.cost_parts, None),
    )


def _insert(records: list[UsageRecord]) -> list[UsageRecord]:
    table = connection.ops.quote_name(UsageRow._meta.db_table)
    placeholders = "(" + ", ".join(["%s"] * len(RECORD_COLUMNS)) + ")"
    sql = (
        f"INSERT INTO {table} ({', '.join(RECORD_COLUMNS)}) "
        f"VALUES {', '.join([placeholders] * len(records))} "
        "ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [value for r in records for value in _row(r, now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        new = {row[0] for row in cursor.fetchall()}
    return [r for r in records if r.request_id in new]


def _roll_up(records: list[UsageRecord]) -> None:
    """Add the records to their DailyUsage and HourlyUsage rows (one upsert each per batch)."""
    rolled = [
        r
        for r in records
        if r.tenant_id is not None and r.endpoint != UsageRow.Endpoint.COUNT_TOKENS
    ]
    # No tenant: nobody to roll up to (unauthenticated); count_tokens: not a request.
    ops = connection.ops
    _upsert(DailyUsage, "day", rolled, lambda r: ops.adapt_datefield_value(day_of(r)))
    _upsert(HourlyUsage, "hour", rolled, lambda r: ops.adapt_datetimefield_value(hour_of(r)))


def _upsert(table_model, bucket: str, records: list[UsageRecord], bucket_of) -> None:
    """Sum the records per (bucket, tenant, key, model, provider) and add the sums in one upsert."""
    totals: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(SUMMED, 0))
    prefixes: dict[tuple, str] = {}
    for r in records:
        key = (bucket_of(r), r.tenant_id, r.key_id or 0, r.model, r.provider)
        prefixes[key] = r.key_prefix[:16]
        row = totals[key]
        row["requests"] += 1
        row["errors"] += r.status == UsageRow.Status.ERROR  # a client leaving is not one
        row["input_tokens"] += r.input_tokens
        row["output_tokens"] += r.output_tokens
        row["cache_read_tokens"] += r.cache_read_tokens
        row["cache_write_tokens"] += r.cache_write_tokens
        row["cost_usd"] += r.cost_usd
        row["latency_ms_total"] += r.latency_ms
    if not totals:
        return
    ops = connection.ops
    table = ops.quote_name(table_model._meta.db_table)
    conflict = (bucket, *ROLLUP_DIMENSIONS)
    columns = (*conflict, "api_key_prefix", *SUMMED)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in SUMMED)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES {', '.join([placeholders] * len(totals))} "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    )
    params: list = []
    for key, row in totals.items():
        params += [*key, prefixes[key]]
        params += [
            ops.adapt_decimalfield_value(Decimal(v), 20, 9) if c == "cost_usd" else v
            for c, v in row.items()
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _touch_keys(records: list[UsageRecord]) -> None:
    """`last_used_at` = the latest request start per key, only ever moved forward."""
    latest: dict[int, float] = {}
    for r in records:
        if r.key_id is not None:
            latest[r.key_id] = max(latest.get(r.key_id, 0.0), r.started_at)
    for key_id, epoch in latest.items():
        when = datetime.fromtimestamp(epoch, UTC)
        ApiKey.objects.filter(pk=key_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=when)
        ).update(last_used_at=when)
