"""The Celery task: store a batch of usage records, then reconcile the budgets they touch.

Thin on purpose (the work is in services.py and limits/budgets.py). Delivery is at least once
(a resent spool file, a redelivered message); the insert is idempotent on request id, so the
effect is exactly once. While the database or Redis is down the message goes back to the
queue (after a pause) instead of failing, so nothing is dropped. Anything else that goes wrong
with a record (the database refuses it, it cannot even be decoded) parks that record alone as
a dead letter: the rest of the batch lands, and every record's budget hold is released.
Then the budgets the new records touched are checked against their alert thresholds.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time

import msgspec
from celery import shared_task
from celery.exceptions import Reject
from redis.exceptions import RedisError

from gateway.alerts.checks import budget_alerts_check
from gateway.limits import budgets
from gateway.usage.record import UsageRecord
from gateway.usage.retention import usage_prune
from gateway.usage.services import DATABASE_OUTAGE, usage_batch_store

log = logging.getLogger("tollgate.usage")
TRANSIENT = (*DATABASE_OUTAGE, RedisError)
REQUEUE_PAUSE_SECONDS = 1.0
_frames = msgspec.msgpack.Decoder(list[msgspec.Raw])
_record = msgspec.msgpack.Decoder(UsageRecord)


def decode_batch(payload: str) -> tuple[list[UsageRecord], list[tuple[bytes, str]]]:
    """(records, unreadable frames with the reason): one bad frame does not hide the others."""
    try:
        data = base64.b64decode(payload)
        frames = [bytes(raw) for raw in _frames.decode(data)]
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        return [], [(payload.encode("utf-8", "replace"), f"batch: {exc}")]
    records, unreadable = [], []
    for frame in frames:
        try:
            records.append(_record.decode(frame))
        except msgspec.DecodeError as exc:
            unreadable.append((frame, str(exc)))
    return records, unreadable


@shared_task(name="tollgate.usage.record_batch", bind=True, acks_late=True, ignore_result=True)
def record_usage_batch(self, payload: str) -> int:
    """Store one batch (base64 of a msgpack array of records); returns how many were new."""
    records, unreadable = decode_batch(payload)
    try:
        inserted = usage_batch_store(records=records, unreadable=unreadable)
        budgets.land(records)  # all of them, parked or not: a retry must still release holds
    except TRANSIENT as exc:
        if self.request.is_eager:
            raise  # the recorder keeps the spool file and tries again
        log.warning("usage batch of %d records put back in the queue: %r", len(records), exc)
        time.sleep(REQUEUE_PAUSE_SECONDS)
        raise Reject(exc, requeue=True) from exc
    try:
        budget_alerts_check(inserted)  # the batch is stored: an alert's trouble must not undo it
    except Exception:
        log.exception("budget alerts not checked for a batch of %d records", len(inserted))
    return len(inserted)


@shared_task(name="tollgate.usage.captured_bodies_expire", ignore_result=True)
def expire_captured_bodies() -> int:
    """Delete captured request bodies past their tenant's retention (Celery beat, hourly)."""
    from django.utils import timezone

    from gateway.usage.services import captured_bodies_expire

    return captured_bodies_expire(now=timezone.now())


@shared_task(name="tollgate.usage.prune", ignore_result=True)
def prune_usage() -> dict[str, int]:
    """Delete raw records and hourly roll-ups past their retention (Celery beat, every hour)."""
    pruned = usage_prune()
    return {"records": pruned.records, "hourly": pruned.hourly}
