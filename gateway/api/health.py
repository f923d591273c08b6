"""`/healthz` (the process answers) and `/readyz` (its database and Redis answer too)."""

from __future__ import annotations

import asyncio

import msgspec
from channels.db import database_sync_to_async
from django.db import connection

from gateway import state
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


async def _redis() -> None:
    await state.async_store().get(state.CONFIG_VERSION_KEY)


def _broker_check() -> None:
    from gateway.celery import app

    if app.conf.task_always_eager:
        return  # quick start: usage records are written in-process, there is no broker
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


async def _broker() -> None:
    # kombu is synchronous; readiness probes are rare, so a worker thread is fine here.
    await asyncio.to_thread(_broker_check)


class ReadyConsumer(GatewayConsumer):
    methods = ("GET", "HEAD")
    checks = {"database": _database, "redis": _redis, "broker": _broker}

    async def handle(self, body: bytes) -> None:
        results = {}
        for name, check in self.checks.items():
            try:
                await asyncio.wait_for(check(), timeout=3)
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; say which
                results[name] = f"error: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        payload = {"status": "ok" if ready else "unavailable", "checks": results}
        await self.send_json(200 if ready else 503, _json.encode(payload))
