"""Per-route circuit breakers and route health, shared by every replica through Redis.

After BREAKER_FAILURES consecutive failures a route opens for BREAKER_COOLDOWN seconds and is
skipped; when the cool-down ends, exactly one request (across all replicas) is let through as
the probe, and its outcome closes the breaker or opens it again. Alongside, each route keeps an
EWMA of its latency and a decaying error rate, which latency-sorted routing and the admin read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from gateway import state

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

# KEYS[1] breaker hash. ARGV: ok (1/0), now, failures threshold, cooldown, latency ms, alpha.
_RECORD = """
local b = KEYS[1]
local alpha = tonumber(ARGV[6])
local ewma = tonumber(redis.call('HGET', b, 'latency_ms') or ARGV[5])
redis.call('HSET', b, 'latency_ms', ewma + alpha * (tonumber(ARGV[5]) - ewma))
local rate = tonumber(redis.call('HGET', b, 'error_rate') or '0')
local failed = ARGV[1] == '0' and 1 or 0
redis.call('HSET', b, 'error_rate', rate + alpha * (failed - rate))
if failed == 0 then
  redis.call('HSET', b, 'failures', 0, 'open_until', 0)
  redis.call('HDEL', b, 'probing')
else
  local n = redis.call('HINCRBY', b, 'failures', 1)
  if n >= tonumber(ARGV[3]) or redis.call('HEXISTS', b, 'probing') == 1 then
    redis.call('HSET', b, 'open_until', tonumber(ARGV[2]) + tonumber(ARGV[4]))
    redis.call('HDEL', b, 'probing')
  end
end
redis.call('EXPIRE', b, 86400)
return 1
"""

EWMA_ALPHA = 0.2


def breaker_key(route_id: int) -> str:
    return f"tg:breaker:{route_id}"


async def allow(route_id: int) -> bool:
    store = state.async_store()
    if isinstance(store, state.LocalStore):
        return await _local_allow(store, route_id)
    cooldown = settings.TOLLGATE["BREAKER_COOLDOWN"]
    return bool(await store.eval(_ALLOW, 1, breaker_key(route_id), time.time(), cooldown))


async def record(route_id: int, *, ok: bool, latency_ms: float) -> None:
    store = state.async_store()
    conf = settings.TOLLGATE
    if isinstance(store, state.LocalStore):
        await _local_record(store, route_id, ok=ok, latency_ms=latency_ms)
        return
    await store.eval(
        _RECORD,
        1,
        breaker_key(route_id),
        int(ok),
        time.time(),
        conf["BREAKER_FAILURES"],
        conf["BREAKER_COOLDOWN"],
        latency_ms,
        EWMA_ALPHA,
    )


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
    open_until = float(data.get("open_until", 0) or 0)
    status = "closed" if not open_until else "open" if time.time() < open_until else "half-open"
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
    values = await pipe.execute()
    return {r: float(v) for r, v in zip(route_ids, values, strict=True) if v is not None}


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
