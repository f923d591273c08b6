"""What raises alerts: budgets (the usage worker, after each batch lands), keys about to
expire, breaker openings and the usage backlog (Celery beat). Each check is idempotent: it
may run any number of times, `alert_raise` sends each (kind, subject, threshold, period) once.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from accounts.models import ApiKey, Tenant
from core import state
from gateway.alerts.models import AlertKind, AlertPolicy
from gateway.alerts.services import alert_raise, alerts_raised, dedupe_key
from gateway.limits.budgets import Period, day_at, period_of
from gateway.usage import selectors
from gateway.usage.record import UsageRecord
from providers.breaker import OPENINGS_KEY

log = logging.getLogger("tollgate.alerts")
DRAIN_BATCH = 500


def _policies(tenant_ids) -> dict[int, AlertPolicy]:
    return {p.tenant_id: p for p in AlertPolicy.objects.filter(tenant_id__in=tenant_ids)}


def _thresholds(policy: AlertPolicy | None) -> list[int]:
    if policy is not None and policy.budget_thresholds:
        return sorted({int(t) for t in policy.budget_thresholds})
    return settings.TOLLGATE_ALERTS["BUDGET_THRESHOLDS"]


# --- Budgets ---------------------------------------------------------------------------------
def budget_alerts_check(records: list[UsageRecord]) -> int:
    """After a batch landed: raise the thresholds the touched budgets have now crossed.

    Spend is the database's (the daily roll-ups), as the budgets themselves are reconciled to.
    When one batch crosses several thresholds at once, only the highest is sent; the lower
    ones are stored as already raised (no one needs 50 % and 80 % a second after 100 %)."""
    days: dict[tuple[str, int], set] = defaultdict(set)
    for r in records:
        if r.cost_usd:
            day = day_at(r.started_at)
            if r.tenant_id is not None:
                days["tenant", r.tenant_id].add(day)
            if r.key_id is not None:
                days["key", r.key_id].add(day)
    if not days:
        return 0
    owners = _budget_owners(days)
    if not owners:
        return 0
    policies = _policies({o["tenant_id"] for o in owners.values()})
    crossings = []  # (scope, owner, period, spent, thresholds crossed)
    for scope in ("tenant", "key"):
        wanted = {
            (owner_id, period_of(o["budget_period"] or "monthly", day))
            for (s, owner_id), o in owners.items()
            if s == scope
            for day in days[s, owner_id]
        }
        if not wanted:
            continue
        spent = _spent(scope, wanted)
        for owner_id, period in wanted:
            owner = owners[scope, owner_id]
            used = spent[owner_id, period]
            percent = used * 100 / owner["budget_usd"]
            thresholds = _thresholds(policies.get(owner["tenant_id"]))
            crossed = [t for t in thresholds if percent >= t]
            if crossed:
                crossings.append((scope, owner, period, used, crossed))
    # One query for what was raised already: most batches cross nothing new.
    done = alerts_raised(
        [_budget_key(scope, o, p, t) for scope, o, p, _, crossed in crossings for t in crossed]
    )
    raised = 0
    for scope, owner, period, used, crossed in crossings:
        new = [t for t in crossed if _budget_key(scope, owner, period, t) not in done]
        if new:
            _budget_raise(scope, owner, period, used, new)
            raised += 1
    return raised


def _budget_key(scope: str, owner: dict, period: Period, threshold: int) -> str:
    return dedupe_key(AlertKind.BUDGET, f"{scope}:{owner['pk']}", threshold, period.tag)


def _budget_owners(days) -> dict[tuple[str, int], dict]:
    fields = ("pk", "budget_usd", "budget_period")
    tenants = Tenant.objects.filter(
        pk__in=[o for s, o in days if s == "tenant"], budget_usd__gt=0
    ).values(*fields, "name")
    keys = ApiKey.objects.filter(pk__in=[o for s, o in days if s == "key"], budget_usd__gt=0)
    owners = {("tenant", t["pk"]): {**t, "tenant_id": t["pk"]} for t in tenants}
    for k in keys.values(*fields, "tenant_id", "prefix", "name", "tenant__name"):
        owners["key", k["pk"]] = k
    return owners


def _spent(scope: str, wanted: set[tuple[int, Period]]) -> dict[tuple[int, Period], Decimal]:
    by_day = selectors.spent_by_day(
        scope=scope,
        owner_ids={o for o, _ in wanted},
        start=min(p.start for _, p in wanted),
        end=max(p.end for _, p in wanted),
    )
    per_owner: dict[int, list] = defaultdict(list)
    for (owner, day), value in by_day.items():
        per_owner[owner].append((day, value))
    return {
        (owner, period): sum(
            (v for d, v in per_owner[owner] if period.start <= d < period.end), Decimal(0)
        )
        for owner, period in wanted
    }


def _budget_raise(scope, owner, period: Period, spent: Decimal, new: list[int]) -> None:
    """Store each newly crossed threshold; send only the highest."""
    budget: Decimal = owner["budget_usd"]
    percent = spent * 100 / budget
    if scope == "key":
        name, prefix, tenant = owner["name"] or "unnamed", owner["prefix"], owner["tenant__name"]
        who = f"API key {name} ({prefix}…) of {tenant}"
    else:
        who = f"Tenant {owner['name']}"
    top = max(new)
    for t in new:
        title = (
            f"{who} has used {percent:.0f}% of its {period.name} budget of ${budget:.2f} "
            f"(${spent:.2f}; threshold {t}%)"
        )
        alert_raise(
            kind=AlertKind.BUDGET,
            subject=f"{scope}:{owner['pk']}",
            title=title,
            tenant_id=owner["tenant_id"],
            threshold=t,
            period=period.tag,
            deliver=t == top,
            details={
                "scope": scope,
                "budget_usd": f"{budget:.2f}",
                "spent_usd": f"{spent:.9f}".rstrip("0").rstrip("."),
                "percent": round(float(percent), 1),
                "budget_period": period.name,
                "resets_at": period.resets_at,
                **({"key_prefix": owner["prefix"]} if scope == "key" else {}),
            },
        )


# --- Keys about to expire --------------------------------------------------------------------
def expiring_keys_check(*, now: datetime | None = None) -> int:
    """Warn about each active key expiring within its tenant's window, once per expiry date."""
    now = now or timezone.now()
    default = settings.TOLLGATE_ALERTS["KEY_EXPIRY_DAYS"]
    windows = {
        p.tenant_id: p.key_expiry_days
        for p in AlertPolicy.objects.filter(key_expiry_days__isnull=False)
    }
    horizon = now + timedelta(days=max([default, *windows.values()]))
    keys = ApiKey.objects.filter(
        revoked_at__isnull=True, expires_at__gt=now, expires_at__lte=horizon
    ).select_related("tenant")
    raised = 0
    for key in keys:
        days = windows.get(key.tenant_id, default)
        if key.expires_at > now + timedelta(days=days):
            continue
        left = key.expires_at - now
        when = key.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        raised += (
            alert_raise(
                kind=AlertKind.KEY_EXPIRING,
                subject=f"key:{key.pk}",
                tenant_id=key.tenant_id,
                threshold=days,
                period=when,
                title=f"API key {key.name or 'unnamed'} ({key.prefix}…) of {key.tenant.name} "
                f"expires in {_duration(left)}",
                details={"key_prefix": key.prefix, "key_name": key.name, "expires_at": when},
            )
            is not None
        )
    return raised


def _duration(left: timedelta) -> str:
    hours = left.total_seconds() / 3600
    return f"{hours / 24:.0f} days" if hours >= 48 else f"{max(hours, 0):.0f} hours"


# --- Breakers --------------------------------------------------------------------------------
def breaker_openings_drain() -> int:
    """Raise an alert for each breaker opening the gateway pushed (once per opening: the
    breaker's Lua script pushes only on the closed -> open transition)."""
    client = state.sync_redis()
    if client is None:
        return 0
    raw = client.lpop(OPENINGS_KEY, DRAIN_BATCH) or []
    events = []
    for item in raw:
        try:
            event = json.loads(item)
            events.append((int(event["route"]), float(event["at"]), int(event["failures"])))
        except (ValueError, KeyError, TypeError):
            log.error("unreadable breaker event dropped: %r", item[:200])
    try:
        return sum(_breaker_raise(*event) for event in events)
    except Exception:
        client.rpush(OPENINGS_KEY, *raw)  # tried again at the next drain
        raise


def _breaker_raise(route_id: int, at: float, failures: int) -> int:
    from providers.models import Route

    route = Route.objects.select_related("model", "provider").filter(pk=route_id).first()
    name = f"{route.model.name} via {route.provider.name}" if route else f"route {route_id}"
    opened = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    cooldown = settings.TOLLGATE["BREAKER_COOLDOWN"]
    alert = alert_raise(
        kind=AlertKind.BREAKER_OPEN,
        subject=f"route:{route_id}",
        period=opened,
        title=f"Breaker opened on {name} after {failures} consecutive failures",
        details={
            "route_id": route_id,
            "model": route.model.name if route else None,
            "provider": route.provider.name if route else None,
            "upstream_model": route.upstream_model if route else None,
            "opened_at": opened,
            "failures": failures,
            "cooldown_seconds": cooldown,
        },
    )
    return alert is not None


# --- The usage pipeline ----------------------------------------------------------------------
def usage_backlog_check(*, now: float | None = None) -> int:
    """Behind: the Celery queue holds more than BACKLOG_BATCHES messages, or the oldest spool
    file this process can see (same host or volume as a gateway) is older than
    BACKLOG_SPOOL_SECONDS. Raised at most once an hour while it lasts."""
    now = time.time() if now is None else now
    conf = settings.TOLLGATE_ALERTS
    queued = _queue_length()
    oldest = _oldest_spool_seconds(settings.TOLLGATE["SPOOL_DIR"], now)
    behind = []
    if queued is not None and queued > conf["BACKLOG_BATCHES"]:
        behind.append(f"{queued} messages queued for the worker")
    if oldest is not None and oldest > conf["BACKLOG_SPOOL_SECONDS"]:
        behind.append(f"usage records waiting in the spool for {oldest:.0f} s")
    if not behind:
        return 0
    hour = datetime.fromtimestamp(now, UTC).strftime("h%Y-%m-%dT%H")
    alert = alert_raise(
        kind=AlertKind.USAGE_BACKLOG,
        subject="usage",
        period=hour,
        title="Usage pipeline behind: " + "; ".join(behind),
        details={"queued_messages": queued, "oldest_spool_seconds": oldest},
    )
    return alert is not None


def _queue_length() -> int | None:
    """Messages waiting in the Celery queue (Redis broker only; None otherwise)."""
    from gateway.celery import app

    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    try:
        return int(client.llen(app.conf.task_default_queue))
    finally:
        client.close()


def _oldest_spool_seconds(directory: Path, now: float) -> float | None:
    """Age of the oldest usage spool file waiting to be sent or to land (from its name: the
    time it was written, in ns)."""
    oldest = None
    for folder in (directory, directory / "sent"):
        try:
            names = [n for n in folder.iterdir() if n.name.endswith(".usage")]
        except FileNotFoundError:
            continue
        for path in names:
            try:
                written = int(path.name.split("-", 1)[0]) / 1e9
            except ValueError:
                continue
            oldest = written if oldest is None else min(oldest, written)
    return None if oldest is None else max(0.0, now - oldest)
