"""One pooled `httpx.AsyncClient` per provider, shared by every request of the process.

Clients bind to the event loop that created them, so the pool is keyed by loop as well; a
provider whose settings changed gets a fresh client (the key includes its version).
"""

from __future__ import annotations

import asyncio

import httpx
from django.conf import settings

from providers.adapters.base import Target

# Explicit process cache: (loop id, provider id, provider version) -> client.
_clients: dict[tuple[int, int, str], httpx.AsyncClient] = {}


def client_for(target: Target) -> httpx.AsyncClient:
    key = (id(asyncio.get_running_loop()), target.provider_id, target.version)
    client = _clients.get(key)
    if client is None:
        conf = settings.TOLLGATE
        client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=conf["POOL_MAX_CONNECTIONS"],
                max_keepalive_connections=conf["POOL_MAX_KEEPALIVE"],
                keepalive_expiry=30,
            ),
            timeout=httpx.Timeout(conf["READ_TIMEOUT"], connect=conf["CONNECT_TIMEOUT"]),
            follow_redirects=False,
            trust_env=False,
        )
        _clients[key] = client
    return client


async def close_all() -> None:
    for client in list(_clients.values()):
        await client.aclose()
    _clients.clear()
