"""Shared state between requests and replicas: Redis, or process memory for the quick start.

Everything that N gateway replicas must agree on (key cache entries, the routing table version,
rate limits, budgets, breakers) goes through here. With REDIS_URL unset the same calls hit
a dict in this process, which is right only for a single-process quick start.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

CONFIG_VERSION_KEY = "tg:config:version"


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
    if not settings.REDIS_URL:
        return local_store()
    import asyncio

    loop_id = id(asyncio.get_running_loop())
    client = _async_clients.get(loop_id)
    if client is None:
        # A blocking pool: a burst (say 1,000 cold requests at once) waits for a connection
        # instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=settings.TOLLGATE["REDIS_MAX_CONNECTIONS"],
            timeout=10,
            health_check_interval=30,
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop_id] = client
    return client


@cache
def sync_redis() -> redis.Redis | None:
    return redis.Redis.from_url(settings.REDIS_URL) if settings.REDIS_URL else None


def config_changed() -> None:
    """Tell every replica that providers, models, routes or tenants changed."""
    client = sync_redis()
    if client is None:
        store = local_store()
        store._data[CONFIG_VERSION_KEY] = (str(time.time_ns()).encode(), None)
    else:
        client.incr(CONFIG_VERSION_KEY)


def forget(*keys: str) -> None:
    """Delete shared cache entries from synchronous code (admin, services)."""
    client = sync_redis()
    if client is None:
        for key in keys:
            local_store()._data.pop(key, None)
    elif keys:
        client.delete(*keys)
