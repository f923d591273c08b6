"""Shared state between requests and replicas: Redis, or process memory for the quick start.

Everything that N gateway replicas must agree on (key cache entries, the routing table version,
rate limits, budgets, breakers) goes through here. With REDIS_URL unset the same calls hit
a dict in this process, which is right only for a single-process quick start.

When Redis stops answering (refused, or silent past TOLLGATE_REDIS_TIMEOUT), requests are still
served: callers make their Redis calls through `shared()` and fall back to what one process can
know alone (keys and routes from the database, breakers counted locally, limits not enforced);
for OUTAGE_BACKOFF_SECONDS after each failure Redis is not asked again.

That outage mode is for a Redis that is really unreachable. A Redis that restarted leaves every
pooled connection dead (closed by the old server); a call that fails with a connection error is
therefore retried once, at once, on a fresh connection (`RECONNECT_ONCE`), and only a second
failure counts as an outage. A timeout is not retried: a hung Redis costs one timeout, no more.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

import msgspec
import redis
import redis.asyncio as aioredis
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

from core import metrics

log = logging.getLogger("tollgate.state")


class Settings(msgspec.Struct, frozen=True):
    """Where shared state lives: REDIS_URL (empty: process memory), pool size, timeout."""

    url: str = ""
    max_connections: int = 200
    timeout: float = 0.5


def _from_environment() -> Settings:
    return Settings(url=os.environ.get("REDIS_URL", ""))


# The one configuration hook of the core: the application installs a function returning the
# current settings (gateway/apps.py reads Django's, which tests may change at run time); code
# run without Django reads the environment.
_source: list[Callable[[], Settings]] = [_from_environment]


def configure(source: Callable[[], Settings]) -> None:
    _source[0] = source


def settings() -> Settings:
    return _source[0]()


CONFIG_VERSION_KEY = "tg:config:version"
# What a failed Redis call raises: redis-py wraps socket errors and timeouts in RedisError.
SHARED_ERRORS = (redis.RedisError, OSError)
OUTAGE_BACKOFF_SECONDS = 1.0
# One retry, without delay, of a call that failed with a connection error: redis-py drops the
# failed connection first, so the retry connects anew (see the module docstring).
RECONNECT_ONCE = {"retries": 1, "supported_errors": (redis.ConnectionError,)}
_OUTAGE_LOG_SECONDS = 10.0
T = TypeVar("T")


class _Outage:
    """Explicit process state of the last Redis failures this process saw."""

    until = 0.0  # monotonic time before which Redis is not tried again
    count = 0  # failures seen so far; a caller that must act once an outage ends compares it
    logged: dict[str, float] = {}  # operation -> when a failure of it was last logged


def outage(operation: str, exc: BaseException) -> None:
    """Note a failed Redis call: back off, count it, and log it (at most every 10 s per
    operation, so an outage does not flood the log)."""
    now = time.monotonic()
    _Outage.until = now + OUTAGE_BACKOFF_SECONDS
    _Outage.count += 1
    metrics.observe_shared_state_error(operation)
    if now - _Outage.logged.get(operation, float("-inf")) >= _OUTAGE_LOG_SECONDS:
        _Outage.logged[operation] = now
        log.warning(
            "Redis unreachable (%s: %s); %s falls back to this process and the database",
            type(exc).__name__,
            exc,
            operation,
        )


def redis_down() -> bool:
    """True while this process backs off after a Redis failure."""
    return time.monotonic() < _Outage.until


async def shared(operation: str, call: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
    """Make one Redis call the outage-aware way: (True, its result), or (False, None) when this
    process is backing off or the call failed (noted with `outage`); the caller falls back."""
    if redis_down():
        return False, None
    try:
        return True, await call()
    except SHARED_ERRORS as exc:
        outage(operation, exc)
        return False, None


def outages() -> int:
    return _Outage.count


class LocalStore:
    """In-process stand-in for the few Redis calls the quick start needs."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}

    def _live(self, key: str) -> Any:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires < time.monotonic():
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> Any:
        return self._live(key)

    async def set(self, key: str, value: Any, ex: float | None = None) -> None:
        self._data[key] = (value, time.monotonic() + ex if ex else None)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def incr(self, key: str) -> int:
        value = int(self._live(key) or 0) + 1
        self._data[key] = (value, self._data.get(key, (0, None))[1])
        return value


# Explicit process caches: one client per process (redis-py pools connections itself), and the
# local store must be one object to be shared at all.
@cache
def local_store() -> LocalStore:
    return LocalStore()


_async_clients: dict[int, aioredis.Redis] = {}


def async_store() -> aioredis.Redis | LocalStore:
    """The store for async code; one Redis client per event loop (clients bind to a loop)."""
    config = settings()
    if not config.url:
        return local_store()
    import asyncio

    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.get(loop_id)
    if client is None:
        # A blocking pool: a burst (say 1,000 cold requests at once) waits for a connection
        # instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            config.url,
            max_connections=config.max_connections,
            timeout=10,
            health_check_interval=30,
            socket_connect_timeout=config.timeout,
            socket_timeout=config.timeout,
            retry=redis.asyncio.retry.Retry(NoBackoff(), **RECONNECT_ONCE),
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop_id] = client
    return client


@cache
def sync_redis() -> redis.Redis | None:
    config = settings()
    if not config.url:
        return None
    timeout = config.timeout
    return redis.Redis.from_url(
        config.url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=redis.retry.Retry(NoBackoff(), **RECONNECT_ONCE),
    )


def forget(*keys: str) -> None:
    """Delete shared cache entries from synchronous code (admin, services).

    A failure is logged, not raised (the change it follows is committed): gateway processes
    that saw Redis fail drop every shared key entry when it answers again (accounts.keys), and
    any entry left expires after accounts.keys.REDIS_TTL_SECONDS.
    """
    client = sync_redis()
    if client is None:
        for key in keys:
            local_store()._data.pop(key, None)
    elif keys:
        try:
            client.delete(*keys)
        except SHARED_ERRORS as exc:
            log.error(
                "shared cache entries not dropped, Redis unreachable (%s)", type(exc).__name__
            )
