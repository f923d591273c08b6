"""`/healthz` (the process answers) and `/readyz` (its database, Redis and broker answer too).

In the quick start there is no Redis and no broker: `/readyz` says what is used instead
(`not used: ...`) rather than reporting checks that were never made.
"""

from __future__ import annotations

import asyncio

import msgspec
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from core import state
from gateway.api.http import GatewayConsumer

_json = msgspec.json.Encoder()


class HealthConsumer(GatewayConsumer):
    methods = ("GET", "HEAD")

    async def handle(self, body: bytes) -> None:
        await self.send_json(200, b'{"status":"ok"}')


@database_sync_to_async
def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


NO_REDIS = "not used: limits, breakers and caches live in this process (quick start)"
NO_BROKER = "not used: usage records are written by this process (quick start)"


async def _redis() -> str | None:
    if not settings.REDIS_URL:
        return NO_REDIS
    await state.async_store().get(state.CONFIG_VERSION_KEY)
    return None


def _broker_check() -> str | None:
    from gateway.celery import app

    if app.conf.task_always_eager:
        return NO_BROKER
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
    return None


async def _broker() -> str | None:
    # kombu is synchronous; readiness probes are rare, so a worker thread is fine here.
    return await asyncio.to_thread(_broker_check)


class ReadyConsumer(GatewayConsumer):
    methods = ("GET", "HEAD")
    checks = {"database": _database, "redis": _redis, "broker": _broker}

    async def handle(self, body: bytes) -> None:
        results = {}
        for name, check in self.checks.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=3) or "ok"
            except Exception as exc:  # any failure means not ready; say which
                results[name] = f"error: {type(exc).__name__}"
        ready = not any(v.startswith("error") for v in results.values())
        payload = {"status": "ok" if ready else "unavailable", "checks": results}
        await self.send_json(200 if ready else 503, _json.encode(payload))
