"""Spend budgets: UTC periods, their Redis keys, the 402 message, and the database's word.

A budget key (`tg:budget:<key|tenant>:<id>:<d2026-11-29|m2026-11>`) holds, in integer
nano-dollars, `spent` (billed cost already in the database), `reserved` (worst-case cost of
requests in flight) and `pending` (real cost of finished requests whose records have not
landed yet). A request is admitted if spent + reserved + pending + its worst case fits.

Each request moves through exactly one of those at a time: admit.lua reserves, settle.lua
turns its reservation into pending, and `land` (the worker, after the records are committed)
drops both for the records it wrote and raises `spent` to the database's sum. Settle and land
commute (settle ignores a reservation land already released), so once every record has
landed and every request settled the budget equals the database's sum, to the nano-dollar.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from channels.db import database_sync_to_async

from core import state
from core.errors import BillingError
from gateway.limits import scripts
from gateway.usage import selectors
from gateway.usage.billing import NANO, nano
from gateway.usage.record import UsageRecord

KEEP_AFTER_PERIOD = timedelta(days=2)  # late records still land on their period's budget
SCOPE_WORDS = {"key": "API key", "tenant": "tenant"}


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # "daily" or "monthly"
    start: date
    end: date  # exclusive

    @property
    def tag(self) -> str:
        return f"d{self.start:%Y-%m-%d}" if self.name == "daily" else f"m{self.start:%Y-%m}"

    @property
    def resets_at(self) -> str:
        return f"{self.end.isoformat()}T00:00:00Z"

    def ttl_ms(self, now: float) -> int:
        end = datetime.combine(self.end, datetime.min.time(), UTC) + KEEP_AFTER_PERIOD
        return max(1000, int((end.timestamp() - now) * 1000))


def period_of(name: str, day: date) -> Period:
    if name == "daily":
        return Period(name, day, day + timedelta(days=1))
    start = day.replace(day=1)
    return Period(name, start, start + timedelta(days=calendar.monthrange(day.year, day.month)[1]))


def day_at(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


def budget_key(scope: str, owner_id: int, period: Period) -> str:
    return f"tg:budget:{scope}:{owner_id}:{period.tag}"


@dataclass(frozen=True, slots=True)
class Hold:
    """One budget a request reserves against."""

    key: str
    scope: str  # "key" or "tenant"
    owner_id: int
    amount: Decimal
    period: Period
    worst: Decimal

    def refusal(self, used_nano: int) -> BillingError:
        who = SCOPE_WORDS[self.scope]
        left = max(Decimal(0), self.amount - Decimal(used_nano) / NANO)
        return BillingError(
            f"{who} budget exceeded: the {who}'s {self.period.name} budget of "
            f"{_usd(self.amount)} has {_usd(left)} left ({_usd(Decimal(used_nano) / NANO)} "
            f"spent or reserved) and this request could cost up to {_usd(self.worst)}. "
            f"The budget resets at {self.period.resets_at}."
        )


def _usd(amount: Decimal) -> str:
    if amount == 0 or abs(amount) >= Decimal("0.01"):
        return f"${amount:.2f}"
    return f"${amount.normalize():f}"


async def load(client, hold: Hold, now: float) -> None:
    """Start a budget not in Redis from the database (new period, or Redis lost it)."""
    spent = await database_sync_to_async(selectors.spent_usd)(
        scope=hold.scope, owner_id=hold.owner_id, start=hold.period.start, end=hold.period.end
    )
    await scripts.for_async(client, "load")(
        keys=[hold.key], args=[nano(spent), hold.period.ttl_ms(now)]
    )


def land(records: list[UsageRecord]) -> None:
    """Worker, after commit: reconcile every loaded budget these records belong to."""
    client = state.sync_redis()
    if client is None:
        return
    groups = _budgets_touched(records)
    pipe = client.pipeline(transaction=False)
    for key in groups:
        pipe.exists(key)
    live = {k: g for (k, g), found in zip(groups.items(), pipe.execute(), strict=True) if found}
    if not live:
        return
    spent = _spent(live.values())
    script = scripts.for_sync(client, "land")
    pipe = client.pipeline(transaction=False)
    for key, (scope, owner, period, request_ids) in live.items():
        script(keys=[key], args=[nano(spent[scope, owner, period]), *request_ids], client=pipe)
    pipe.execute()


def _budgets_touched(records: list[UsageRecord]) -> dict[str, tuple]:
    """budget key -> (scope, owner, period, request ids), for both periods of each record."""
    groups: dict[str, tuple] = {}
    for r in records:
        day = day_at(r.started_at)
        for scope, owner in (("tenant", r.tenant_id), ("key", r.key_id)):
            if owner is None:
                continue
            for name in ("daily", "monthly"):
                period = period_of(name, day)
                key = budget_key(scope, owner, period)
                groups.setdefault(key, (scope, owner, period, []))[3].append(r.request_id)
    return groups


def _spent(groups) -> dict[tuple, Decimal]:
    """(scope, owner, period) -> the database's billed cost, two queries in all."""
    by_scope: dict[str, list] = defaultdict(list)
    for scope, owner, period, _ in groups:
        by_scope[scope].append((owner, period))
    out: dict[tuple, Decimal] = {}
    for scope, wanted in by_scope.items():
        start = min(p.start for _, p in wanted)
        end = max(p.end for _, p in wanted)
        days = selectors.spent_by_day(
            scope=scope, owner_ids={o for o, _ in wanted}, start=start, end=end
        )
        for owner, period in wanted:
            out[scope, owner, period] = sum(
                (v for (o, d), v in days.items() if o == owner and period.start <= d < period.end),
                Decimal(0),
            )
    return out
