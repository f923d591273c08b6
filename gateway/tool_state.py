"""Provider state owed back with a tool call on the next turn, kept per (tenant, tool_use id).

Gemini 3 puts a `thoughtSignature` on function calls (thinking asked for or not) and rejects a
next turn whose call lacks it; the Responses API's reasoning item (`encrypted_content`) precedes
a function call and should be replayed with it. An Anthropic `tool_use` block has no field to
carry either, and a client (Claude Code) may drop the thinking block whose envelope would
(reference 5.12.3-5.12.4). So the adapter that parsed the call puts the state on
`ir.ToolUse.state`; `remember` keeps it in Redis for TTL_SECONDS, and `recall` fetches what a
request's current turn lacks, in one MGET, into `ir.Request.tool_state` for the adapter that
rebuilds the history.

Keys hold the tenant id: another tenant sending the same tool_use id reads its own key, never
this one. Redis down: nothing is stored or found (the adapter falls back to Gemini's documented
placeholder), and the request is served.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from core import ir, state

TTL_SECONDS = 24 * 3600
# At most this many tool calls of a request's current turn are looked up (one MGET).
MAX_LOOKUPS = 128
# Provider state larger than this is not kept (Gemini signatures are a few KB, encrypted
# reasoning some tens of KB).
MAX_STATE_BYTES = 256 * 1024
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


def key(tenant_id: int, tool_use_id: str) -> str:
    """Redis key of one call's state; an id of unusual shape is hashed, never trusted as is."""
    if not _SAFE_ID.fullmatch(tool_use_id):
        tool_use_id = "h" + hashlib.sha256(tool_use_id.encode()).hexdigest()[:40]
    return f"tg:tool:{tenant_id}:{tool_use_id}"


def current_turn_calls(request: ir.Request) -> list[str]:
    """Ids of the tool calls of the current turn (the assistant messages since the last user
    message with more than tool results, which is what Gemini 3 validates) that no thinking
    block of ours accompanies (its envelope carries the state already)."""
    ids: list[str] = []
    for message in reversed(request.messages):
        if message.role == "user":
            if any(not isinstance(p, ir.ToolResult) for p in message.content):
                break
            continue
        if any(
            isinstance(p, ir.Thinking) and p.signature.startswith("tg1.") for p in message.content
        ):
            continue
        ids += [p.id for p in message.content if isinstance(p, ir.ToolUse)]
    return ids[:MAX_LOOKUPS]


async def recall(tenant_id: int, request: ir.Request) -> dict[str, dict[str, Any]]:
    """The stored state of the current turn's calls that lack one: tool_use id -> state."""
    ids = current_turn_calls(request)
    if not ids:
        return {}
    store = state.async_store()
    keys = [key(tenant_id, i) for i in ids]
    if isinstance(store, state.LocalStore):
        values = [await store.get(k) for k in keys]
    else:
        ok, values = await state.shared("tool state lookup", lambda: store.mget(keys))
        if not ok:
            return {}
    found: dict[str, dict[str, Any]] = {}
    for tool_use_id, value in zip(ids, values, strict=True):
        if value is None:
            continue
        try:
            data = _decode.decode(value)
        except msgspec.DecodeError:
            continue
        if isinstance(data, dict):
            found[tool_use_id] = data
    return found


def owed(content: list[ir.Part]) -> list[tuple[str, bytes]]:
    """(tool_use id, encoded state) of the calls in an answer that carry provider state."""
    out = []
    for part in content:
        if isinstance(part, ir.ToolUse) and part.state:
            value = _encode.encode(part.state)
            if len(value) <= MAX_STATE_BYTES:
                out.append((part.id, value))
    return out


async def remember(tenant_id: int, calls: list[tuple[str, bytes]]) -> None:
    """Keep the calls' state for TTL_SECONDS, in one round trip; a Redis failure is noted and
    the answer goes on (the next turn falls back to the placeholder)."""
    if not calls:
        return
    store = state.async_store()
    if isinstance(store, state.LocalStore):
        for tool_use_id, value in calls:
            await store.set(key(tenant_id, tool_use_id), value, ex=TTL_SECONDS)
        return

    async def write() -> None:
        pipe = store.pipeline(transaction=False)
        for tool_use_id, value in calls:
            pipe.set(key(tenant_id, tool_use_id), value, ex=TTL_SECONDS)
        await pipe.execute()

    await state.shared("tool state write", write)


class Collector:
    """Watches a stream's events for calls carrying state, to remember them before the end."""

    def __init__(self) -> None:
        self.calls: list[ir.ToolUse] = []

    def see(self, event: ir.StreamEvent) -> None:
        part = event.part if isinstance(event, ir.BlockStart) else None
        if isinstance(part, ir.ToolUse) and part.state:
            self.calls.append(part)
