"""`/metrics`: the Prometheus exposition of `gateway.metrics` (every worker in multiprocess mode).

It holds no tenant names. With TOLLGATE_METRICS_TOKEN set it answers only a scraper that
sends `Authorization: Bearer <token>`; without, restrict it to the scraper at the network edge.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError

from gateway import metrics
from gateway.api.http import GatewayConsumer
from gateway.errors import AuthenticationFailed
from gateway.usage import selectors

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
        dead_letters = await _dead_letters()
        # In multiprocess mode this reads every worker's files: keep it off the event loop.
        payload, content_type = await asyncio.to_thread(
            lambda: metrics.render(usage_dead_letters=dead_letters)
        )
        await self.send_headers(200, self.base_headers(content_type.encode()))
        await self.send_body(b"" if self.scope["method"] == "HEAD" else payload)


async def _dead_letters() -> int | None:
    """The worker parks dead letters in the database, so that is where /metrics reads them."""
    try:
        return await database_sync_to_async(selectors.dead_letters_count)()
    except DatabaseError as exc:
        log.warning("/metrics: the database did not answer for dead letters (%s)", exc)
        return None
