"""Reads over usage: what a key or tenant has spent (from the daily roll-ups), which records
have landed, and how many were parked as dead letters."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from gateway.models import DailyUsage, UsageDeadLetter, UsageRecord

CHUNK = 1000  # request ids per query

OWNER_FIELD = {"key": "api_key_id", "tenant": "tenant_id"}


def spent_usd(*, scope: str, owner_id: int, start: date, end: date) -> Decimal:
    """Billed cost of a key or tenant over [start, end) (UTC days)."""
    rows = DailyUsage.objects.filter(
        **{OWNER_FIELD[scope]: owner_id}, day__gte=start, day__lt=end
    ).aggregate(total=Sum("cost_usd"))
    return rows["total"] or Decimal(0)


def spent_by_day(
    *, scope: str, owner_ids: Iterable[int], start: date, end: date
) -> dict[tuple[int, date], Decimal]:
    """Billed cost per (owner, day) over [start, end), for many keys or tenants at once."""
    field = OWNER_FIELD[scope]
    rows = (
        DailyUsage.objects.filter(**{f"{field}__in": list(owner_ids)}, day__gte=start, day__lt=end)
        .values(field, "day")
        .annotate(total=Sum("cost_usd"))
    )
    return {(row[field], row["day"]): row["total"] for row in rows}


def landed_request_ids(request_ids: list[str]) -> set[str]:
    """The ids among `request_ids` whose record is in the database, stored or parked."""
    found: set[str] = set()
    for start in range(0, len(request_ids), CHUNK):
        chunk = request_ids[start : start + CHUNK]
        found.update(
            UsageRecord.objects.filter(request_id__in=chunk).values_list("request_id", flat=True)
        )
        rest = [i for i in chunk if i not in found]
        if rest:
            found.update(
                UsageDeadLetter.objects.filter(request_id__in=rest).values_list(
                    "request_id", flat=True
                )
            )
    return found


def dead_letters_count() -> int:
    return UsageDeadLetter.objects.count()
