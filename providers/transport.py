"""One pooled `httpx2.AsyncClient` per provider, shared by every request of the process.

Clients bind to the event loop that created them, so the pool is keyed by loop as well; a
provider whose settings changed gets a fresh client (the key includes its version).
"""

from __future__ import annotations

import asyncio

import httpx2
from django.conf import settings

from core.target import Target
from providers.wire import WireTransport

# Explicit process cache: (loop id, provider id, provider version) -> client.
_clients: dict[tuple[int, int, str], httpx2.AsyncClient] = {}


def client_for(target: Target) -> httpx2.AsyncClient:
    key = (id(asyncio.get_running_loop()), target.provider_id, target.version)
    client = _clients.get(key)
    if client is None:
        conf = settings.TOLLGATE
        limits = httpx2.Limits(
            max_connections=conf["POOL_MAX_CONNECTIONS"],
            max_keepalive_connections=conf["POOL_MAX_KEEPALIVE"],
            keepalive_expiry=30,
        )
        client = httpx2.AsyncClient(
            transport=WireTransport(limits=limits),  # see providers/wire.py
            timeout=httpx2.Timeout(conf["READ_TIMEOUT"], connect=conf["CONNECT_TIMEOUT"]),
            follow_redirects=False,
            trust_env=False,
        )
        _clients[key] = client
    return client


async def close_all() -> None:
    for client in list(_clients.values()):
        await client.aclose()
    _clients.clear()
