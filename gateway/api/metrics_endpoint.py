"""`/metrics`: the Prometheus exposition of `gateway.metrics` (every worker in multiprocess mode).

Not authenticated and holding no tenant names: restrict it to the scraper at the network edge.
"""

from __future__ import annotations

import asyncio

from gateway import metrics
from gateway.api.http import GatewayConsumer


class MetricsConsumer(GatewayConsumer):
    methods = ("GET", "HEAD")

    async def handle(self, body: bytes) -> None:
        # In multiprocess mode this reads every worker's files: keep it off the event loop.
        payload, content_type = await asyncio.to_thread(metrics.render)
        await self.send_headers(200, self.base_headers(content_type.encode()))
        await self.send_body(b"" if self.scope["method"] == "HEAD" else payload)
