"""The Celery task: store a batch of usage records, then reconcile the budgets they touch.

Thin on purpose (the work is in services.py and limits/budgets.py). Delivery is at least once
(a resent spool file, a redelivered message); the insert is idempotent on request id, so the
effect is exactly once. While the database or Redis is down the message goes back to the
queue (after a pause) instead of failing, so nothing is dropped.
"""

from __future__ import annotations

import base64
import logging
import time

import msgspec
from celery import shared_task
from celery.exceptions import Reject
from django.db import IntegrityError, InterfaceError, OperationalError
from redis.exceptions import RedisError

from gateway.limits import budgets
from gateway.usage.record import UsageRecord
from gateway.usage.services import usage_records_store

log = logging.getLogger("tollgate.usage")
# IntegrityError: a key or tenant deleted while the batch was written; the next try unlinks it.
TRANSIENT = (OperationalError, InterfaceError, IntegrityError, RedisError)
REQUEUE_PAUSE_SECONDS = 1.0
_batch = msgspec.msgpack.Decoder(list[UsageRecord])


def decode_batch(payload: str) -> list[UsageRecord]:
    return _batch.decode(base64.b64decode(payload))


@shared_task(name="tollgate.usage.record_batch", bind=True, acks_late=True, ignore_result=True)
def record_usage_batch(self, payload: str) -> int:
    """Store one batch (base64 of a msgpack array of records); returns how many were new."""
    records = decode_batch(payload)
    try:
        inserted = usage_records_store(records=records)
        budgets.land(records)  # all of them: a retry must still release what a crash left
    except TRANSIENT as exc:
        if self.request.is_eager:
            raise  # the recorder keeps the spool file and tries again
        log.warning("usage batch of %d records put back in the queue: %r", len(records), exc)
        time.sleep(REQUEUE_PAUSE_SECONDS)
        raise Reject(exc, requeue=True) from exc
    return len(inserted)
