"""The Lua scripts, registered once per Redis client (EVALSHA, reloaded if Redis forgot them)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript, Script

HERE = Path(__file__).resolve().parent
NAMES = ("admit", "settle", "land", "load")


@cache
def source(name: str) -> str:
    return (HERE / f"{name}.lua").read_text()


# Explicit process cache: client id -> (client, its registered scripts). A client lives as long
# as its event loop (see core.state.async_store), so entries are few.
_registered: dict[int, tuple[object, dict[str, AsyncScript | Script]]] = {}


def _scripts(client) -> dict:
    entry = _registered.get(id(client))
    if entry is None or entry[0] is not client:
        entry = (client, {name: client.register_script(source(name)) for name in NAMES})
        _registered[id(client)] = entry
    return entry[1]


def for_async(client: aioredis.Redis, name: str) -> AsyncScript:
    return _scripts(client)[name]


def for_sync(client: redis.Redis, name: str) -> Script:
    return _scripts(client)[name]
