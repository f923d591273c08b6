"""Retention of usage: raw records past TOLLGATE_USAGE_RETENTION_DAYS and hourly roll-ups past
TOLLGATE_HOURLY_USAGE_RETENTION_DAYS are deleted; daily roll-ups are kept for good.

Deletes go oldest first in batches of BATCH_SIZE rows, each batch its own short transaction
(never one huge DELETE holding locks and bloating the WAL while the worker writes), and at most
MAX_BATCHES a run: a backlog is worked off over the following runs. 0 days keeps everything.
The roll-ups were written from the records as they landed, so deleting records changes no
total; only latency percentiles, which need the records, are gone for those days.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from gateway.models import HourlyUsage, UsageRecord

log = logging.getLogger("tollgate.usage")
BATCH_SIZE = 5_000
MAX_BATCHES = 200  # a million rows a run


@dataclass(frozen=True)
class Pruned:
    records: int = 0
    hourly: int = 0


def usage_prune(
    *,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> Pruned:
    """Delete what the retention settings no longer keep; returns how many rows went."""
    now = now or timezone.now()
    records_days = settings.TOLLGATE["USAGE_RETENTION_DAYS"]
    hourly_days = settings.TOLLGATE["HOURLY_USAGE_RETENTION_DAYS"]
    pruned = Pruned(
        records=_delete_before(
            UsageRecord, "started_at", now, records_days, batch_size, max_batches
        ),
        hourly=_delete_before(HourlyUsage, "hour", now, hourly_days, batch_size, max_batches),
    )
    if pruned.records or pruned.hourly:
        log.info(
            "usage retention deleted %d records, %d hourly rows", pruned.records, pruned.hourly
        )
    return pruned


def _delete_before(
    model: type[models.Model],
    column: str,
    now: datetime,
    days: int,
    batch_size: int,
    max_batches: int,
) -> int:
    """Rows whose `column` is more than `days` before `now`, oldest first, batch by batch."""
    if days <= 0:
        return 0
    old = model.objects.filter(**{f"{column}__lt": now - timedelta(days=days)})
    deleted = 0
    for _ in range(max_batches):
        with transaction.atomic():
            batch = list(old.order_by(column).values_list("pk", flat=True)[:batch_size])
            if batch:
                deleted += model.objects.filter(pk__in=batch).delete()[0]
        if len(batch) < batch_size:
            break
    return deleted
