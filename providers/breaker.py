"""Per-route circuit breakers and route health, shared by every replica through Redis.

After BREAKER_FAILURES consecutive failures a route opens for BREAKER_COOLDOWN seconds and is
skipped; when the cool-down ends, exactly one request (across all replicas) is let through as
the probe, and its outcome closes the breaker or opens it again. A probe whose attempt proved
nothing about the provider (refused before the network, the client's own error) gives the
probe back (`release`), so one tenant's bad request cannot hold a route shut for everyone.
Only provider faults are recorded as failures (gateway/pipeline/attempts.py decides which).
Alongside, each route keeps an EWMA of its latency and a decaying error rate, which
latency-sorted routing and the admin read.

Failures are written to Redis as they happen, and the writer learns the new state at once;
other processes see it within VIEW_SECONDS. Successes on a healthy route are only counted
locally and folded into the shared EWMAs once a second, so the breaker costs the hot path no
Redis round trip per request. (A success seen by a process whose view is up to a second old
may not reset a failure streak counted elsewhere: the streak then resets on its next sync.)

While Redis does not answer, each process keeps its breakers by itself, with the same rules
(core.state): a failing route still opens, only per process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from core import state

# KEYS[1] breaker hash. ARGV: now, cooldown. Returns 1 when the route may be tried.
_ALLOW = """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 1 end
if tonumber(ARGV[1]) < open_until then return 0 end
-- Cool-down over: one probe at a time, for at most one cool-down.
if redis.call('HSETNX', KEYS[1], 'probing', ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 4) + 60)
  return 1
end
local probing = tonumber(redis.call('HGET', KEYS[1], 'probing'))
if tonumber(ARGV[1]) - probing > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'probing', ARGV[1])
  return 1
end
return 0
"""

# KEYS[1] breaker hash, KEYS[2] the openings list. ARGV: ok (1/0), now, failures threshold,
# cooldown, route id. Returns {failures, open_until}. The one call that moves a closed breaker
# to open (across every replica: the script is atomic) pushes that opening for the alerts
# (gateway/alerts/checks.py drains the list); a failed probe re-opening it pushes nothing.
_RECORD = """
local b = KEYS[1]
if ARGV[1] == '1' then
  redis.call('HSET', b, 'failures', 0, 'open_until', 0)
  redis.call('HDEL', b, 'probing')
else
  local n = redis.call('HINCRBY', b, 'failures', 1)
  if n >= tonumber(ARGV[3]) or redis.call('HEXISTS', b, 'probing') == 1 then
    local was_open = tonumber(redis.call('HGET', b, 'open_until') or '0') ~= 0
    redis.call('HSET', b, 'open_until', tonumber(ARGV[2]) + tonumber(ARGV[4]))
    redis.call('HDEL', b, 'probing')
    if not was_open then
      redis.call('RPUSH', KEYS[2], cjson.encode(
        {route = tonumber(ARGV[5]), at = tonumber(ARGV[2]), failures = n}))
      redis.call('LTRIM', KEYS[2], -10000, -1)
    end
  end
end
redis.call('EXPIRE', b, 86400)
return {tonumber(redis.call('HGET', b, 'failures') or '0'),
        redis.call('HGET', b, 'open_until') or '0'}
"""

# KEYS[1] breaker hash. ARGV: samples, mean latency ms, error fraction, alpha.
# Folds this process's recent figures into the shared EWMAs; returns {failures, open_until}.
_SYNC = """
local b = KEYS[1]
if tonumber(ARGV[1]) > 0 then
  local alpha = tonumber(ARGV[4])
  local ewma = tonumber(redis.call('HGET', b, 'latency_ms') or ARGV[2])
  redis.call('HSET', b, 'latency_ms', ewma + alpha * (tonumber(ARGV[2]) - ewma))
  local rate = tonumber(redis.call('HGET', b, 'error_rate') or '0')
  redis.call('HSET', b, 'error_rate', rate + alpha * (tonumber(ARGV[3]) - rate))
  redis.call('EXPIRE', b, 86400)
end
return {tonumber(redis.call('HGET', b, 'failures') or '0'),
        redis.call('HGET', b, 'open_until') or '0'}
"""

# Breaker openings waiting for the alerts' drain; at most the newest 10,000 are kept.
OPENINGS_KEY = "tg:alerts:breaker_openings"
EWMA_ALPHA = 0.2
# How long a process trusts its view of a route's breaker before asking Redis again.
VIEW_SECONDS = 1.0


@dataclass(slots=True)
class _View:
    """This process's view of one route: the shared state as last read, and local samples."""

    failures: int = 0
    open_until: float = 0.0
    fetched: float = float("-inf")
    samples: int = 0
    latency_total: float = 0.0
    errors: int = 0

    def learn(self, result: list) -> None:
        self.failures, self.open_until = int(result[0]), float(result[1])
        self.fetched = time.monotonic()


# Explicit process cache: route id -> view. A healthy route costs Redis one round trip a second
# per process (the sync), not one per request.
_views: dict[int, _View] = {}


def breaker_key(route_id: int) -> str:
    return f"tg:breaker:{route_id}"


async def _sync(store, route_id: int, view: _View) -> None:
    mean = view.latency_total / view.samples if view.samples else 0.0
    errors = view.errors / view.samples if view.samples else 0.0
    result = await store.eval(
        _SYNC, 1, breaker_key(route_id), view.samples, mean, errors, EWMA_ALPHA
    )
    view.samples, view.latency_total, view.errors = 0, 0.0, 0
    view.learn(result)


async def allow(route_id: int) -> bool:
    store = state.async_store()
    if isinstance(store, state.LocalStore):
        return await _local_allow(store, route_id)
    view = _views.setdefault(route_id, _View())
    if time.monotonic() - view.fetched >= VIEW_SECONDS:
        await state.shared("breakers", lambda: _sync(store, route_id, view))
    if not view.open_until:
        return True
    now = time.time()
    if now < view.open_until:
        return False
    cooldown = settings.TOLLGATE["BREAKER_COOLDOWN"]
    asked, allowed = await state.shared(
        "breakers", lambda: store.eval(_ALLOW, 1, breaker_key(route_id), now, cooldown)
    )
    # Without Redis there is no replica to share the probe with: this request is the probe.
    return bool(allowed) if asked else True


async def record(route_id: int, *, ok: bool, latency_ms: float) -> None:
    store = state.async_store()
    if isinstance(store, state.LocalStore):
        await _local_record(store, route_id, ok=ok, latency_ms=latency_ms)
        return
    view = _views.setdefault(route_id, _View())
    view.samples += 1
    view.latency_total += latency_ms
    view.errors += not ok
    if ok and not view.failures and not view.open_until:
        return  # the common case: a healthy route stays healthy, nothing to tell Redis now
    conf = settings.TOLLGATE
    told, result = await state.shared(
        "breakers",
        lambda: store.eval(
            _RECORD,
            2,
            breaker_key(route_id),
            OPENINGS_KEY,
            int(ok),
            time.time(),
            conf["BREAKER_FAILURES"],
            conf["BREAKER_COOLDOWN"],
            route_id,
        ),
    )
    if told:
        view.learn(result)
        return
    # Redis away: the same rules on this process's view alone.
    if ok:
        view.failures, view.open_until = 0, 0.0
    else:
        view.failures += 1
        if view.failures >= conf["BREAKER_FAILURES"] or view.open_until:
            view.open_until = time.time() + conf["BREAKER_COOLDOWN"]
    view.fetched = time.monotonic()  # trusted as the state until the next sync


async def release(route_id: int) -> None:
    """An attempt that says nothing about the route ended: free the probe slot it may hold.

    A route this process sees closed has no probe to free, so the common case costs nothing.
    """
    view = _views.get(route_id)
    if view is None or not view.open_until:
        return
    store = state.async_store()
    if isinstance(store, state.LocalStore):
        return  # the in-process breaker has no probe slot
    await state.shared("breakers", lambda: store.hdel(breaker_key(route_id), "probing"))


@dataclass(frozen=True)
class RouteHealth:
    state: str  # closed, open, half-open
    failures: int
    error_rate: float
    latency_ms: float | None


def health(route_id: int) -> RouteHealth:
    """For the admin (synchronous)."""
    client = state.sync_redis()
    raw = client.hgetall(breaker_key(route_id)) if client else {}
    data = {k.decode(): v.decode() for k, v in raw.items()}
    status = _state_of(float(data.get("open_until", 0) or 0), time.time())
    latency = data.get("latency_ms")
    return RouteHealth(
        status,
        int(data.get("failures", 0) or 0),
        float(data.get("error_rate", 0) or 0),
        float(latency) if latency else None,
    )


async def latencies(route_ids: list[int]) -> dict[int, float]:
    """EWMA latency per route, for `sort: latency`; routes never measured are absent."""
    store = state.async_store()
    if isinstance(store, state.LocalStore) or not route_ids:
        return {}
    pipe = store.pipeline(transaction=False)
    for route_id in route_ids:
        pipe.hget(breaker_key(route_id), "latency_ms")
    answered, values = await state.shared("route latencies", pipe.execute)
    if not answered:
        return {}
    return {r: float(v) for r, v in zip(route_ids, values, strict=True) if v is not None}


def _state_of(open_until: float, now: float) -> str:
    return "closed" if not open_until else "open" if now < open_until else "half-open"


async def states(route_ids: list[int]) -> dict[int, str] | None:
    """closed, open or half-open per route, for /metrics; None when Redis does not answer."""
    store, now = state.async_store(), time.time()
    if isinstance(store, state.LocalStore):
        items = [await store.get(breaker_key(r)) or {} for r in route_ids]
        return {
            r: _state_of(i.get("open_until", 0), now) for r, i in zip(route_ids, items, strict=True)
        }
    if not route_ids:
        return {}
    pipe = store.pipeline(transaction=False)
    for route_id in route_ids:
        pipe.hget(breaker_key(route_id), "open_until")
    answered, values = await state.shared("breaker states", pipe.execute)
    if not answered:
        return None
    return {r: _state_of(float(v or 0), now) for r, v in zip(route_ids, values, strict=True)}


# --- Quick start (no Redis): the same rules in process memory ---------------------------------
async def _local_allow(store: state.LocalStore, route_id: int) -> bool:
    item = await store.get(breaker_key(route_id)) or {}
    return time.time() >= item.get("open_until", 0)


async def _local_record(
    store: state.LocalStore, route_id: int, *, ok: bool, latency_ms: float
) -> None:
    item = dict(await store.get(breaker_key(route_id)) or {})
    failures = 0 if ok else item.get("failures", 0) + 1
    item["failures"] = failures
    if failures >= settings.TOLLGATE["BREAKER_FAILURES"]:
        item["open_until"] = time.time() + settings.TOLLGATE["BREAKER_COOLDOWN"]
    elif ok:
        item["open_until"] = 0
    await store.set(breaker_key(route_id), item)
