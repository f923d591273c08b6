"""`/metrics`: the Prometheus exposition of `core.metrics` (every worker in multiprocess mode).

It holds no tenant names. With TOLLGATE_METRICS_TOKEN set it answers only a scraper that
sends `Authorization: Bearer <token>`; without, restrict it to the scraper at the network edge.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import replace

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError

from core import metrics, state
from core.errors import AuthenticationFailed
from gateway.api.http import GatewayConsumer
from gateway.usage import selectors, spool
from providers import breaker, routing

USAGE_QUEUE = "celery"  # Celery's default queue, where the gateway publishes usage batches

log = logging.getLogger("tollgate.metrics")


class MetricsConsumer(GatewayConsumer):
    methods = ("GET", "HEAD")

    async def handle(self, body: bytes) -> None:
        token = settings.TOLLGATE["METRICS_TOKEN"]
        if token:
            scheme, _, sent = self.headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(sent.strip(), token.encode()):
                raise AuthenticationFailed(
                    "/metrics needs `Authorization: Bearer <TOLLGATE_METRICS_TOKEN>`",
                    headers={"www-authenticate": "Bearer"},
                )
        scraped = metrics.Scraped(
            usage_dead_letters=await _dead_letters(),
            usage_queue=await _usage_queue(),
            breakers=await _breakers(),
        )
        # In multiprocess mode this reads every worker's files: keep it off the event loop.
        payload, content_type = await asyncio.to_thread(lambda: _render(scraped))
        await self.send_headers(200, self.base_headers(content_type.encode()))
        await self.send_body(b"" if self.scope["method"] == "HEAD" else payload)


async def _dead_letters() -> int | None:
    """The worker parks dead letters in the database, so that is where /metrics reads them."""
    try:
        return await database_sync_to_async(selectors.dead_letters_count)()
    except DatabaseError as exc:
        log.warning("/metrics: the database did not answer for dead letters (%s)", exc)
        return None


def _render(scraped: metrics.Scraped) -> tuple[bytes, str]:
    unsent, sent = _spool_files()
    return metrics.render(replace(scraped, spool_unsent=unsent, spool_sent=sent))


def _spool_files() -> tuple[int | None, int | None]:
    """Usage spool files of this host: (waiting to be sent, sent and waiting to land)."""
    directory = settings.TOLLGATE["SPOOL_DIR"]
    try:
        unsent = sum(1 for _ in directory.glob("*" + spool.SUFFIX))
        sent_dir = directory / spool.SENT
        sent = sum(1 for _ in sent_dir.glob("*" + spool.SUFFIX)) if sent_dir.is_dir() else 0
    except OSError:
        return None, None
    return unsent, sent


async def _usage_queue() -> int | None:
    """Batches in the broker's queue (Celery's default queue, a Redis list); None without Redis."""
    store = state.async_store()
    if isinstance(store, state.LocalStore) or settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    answered, length = await state.shared("usage queue", lambda: store.llen(USAGE_QUEUE))
    return length if answered else None


async def _breakers() -> list[tuple[str, str, str, str]]:
    snapshot = await routing.current()
    routes = [(m.name, r.target) for m in snapshot.models.values() for r in m.routes]
    found = await breaker.states([t.route_id for _, t in routes])
    if not found:
        return []
    return [
        (model, t.provider_name, t.upstream_model, found[t.route_id])
        for model, t in routes
        if t.route_id in found
    ]
