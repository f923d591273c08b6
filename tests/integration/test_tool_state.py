"""gateway/tool_state.py against the real Redis: per-tenant keys, one MGET, TTL, and an
outage that costs nothing but the stored state."""

from __future__ import annotations

import msgspec
import pytest
import redis

from core import ir, state
from gateway import tool_state
from tests.integration.limited_calls import fresh_redis_clients

UNREACHABLE = "redis://127.0.0.1:1/0"
SIGNED = {"p": "gemini", "m": "gemini-3-pro-preview", "ts": "U0lH"}


def turn(*call_ids: str, thinking_signature: str = "") -> ir.Request:
    assistant: list[ir.Part] = []
    if thinking_signature:
        assistant.append(ir.Thinking("hmm", signature=thinking_signature))
    assistant += [ir.ToolUse(id=i, name="get_weather", input={}) for i in call_ids]
    return ir.Request(
        model="m",
        max_tokens=10,
        messages=[
            ir.Message("user", [ir.Text("Weather?")]),
            ir.Message("assistant", assistant),
            ir.Message("user", [ir.ToolResult(tool_use_id=i) for i in call_ids]),
        ],
    )


@pytest.fixture
def sync_client(settings):
    fresh_redis_clients()
    yield redis.Redis.from_url(settings.REDIS_URL)
    fresh_redis_clients()


async def test_a_remembered_call_is_recalled_for_its_tenant_only(sync_client):
    call = ir.ToolUse(id="toolu_it_1", name="get_weather", input={}, state=SIGNED)
    await tool_state.remember(901, tool_state.owed([call]))

    assert await tool_state.recall(901, turn("toolu_it_1")) == {"toolu_it_1": SIGNED}
    assert await tool_state.recall(902, turn("toolu_it_1")) == {}
    ttl = sync_client.ttl(tool_state.key(901, "toolu_it_1"))
    assert tool_state.TTL_SECONDS - 60 < ttl <= tool_state.TTL_SECONDS


async def test_calls_a_thinking_envelope_accompanies_are_not_looked_up():
    call = ir.ToolUse(id="toolu_it_2", name="get_weather", input={}, state=SIGNED)
    await tool_state.remember(903, tool_state.owed([call]))
    assert await tool_state.recall(903, turn("toolu_it_2", thinking_signature="tg1.x.y")) == {}


async def test_a_request_looks_its_calls_up_in_one_round_trip(sync_client, monkeypatch):
    calls = [ir.ToolUse(id=f"toolu_it_3{i}", name="n", input={}, state=SIGNED) for i in range(5)]
    await tool_state.remember(904, tool_state.owed(calls))
    store = state.async_store()
    seen: list[str] = []
    original = store.execute_command

    async def counted(*args, **options):
        seen.append(args[0])
        return await original(*args, **options)

    monkeypatch.setattr(store, "execute_command", counted)
    found = await tool_state.recall(904, turn(*(c.id for c in calls)))
    assert len(found) == 5 and seen == ["MGET"]


async def test_garbage_in_a_stored_entry_is_ignored(sync_client):
    sync_client.set(tool_state.key(905, "toolu_it_4"), b"\xff not json")
    sync_client.set(tool_state.key(905, "toolu_it_5"), msgspec.json.encode(SIGNED))
    assert await tool_state.recall(905, turn("toolu_it_4", "toolu_it_5")) == {"toolu_it_5": SIGNED}


async def test_without_redis_nothing_is_stored_or_found_and_nothing_fails(settings):
    settings.REDIS_URL = UNREACHABLE
    fresh_redis_clients()
    try:
        call = ir.ToolUse(id="toolu_it_6", name="n", input={}, state=SIGNED)
        await tool_state.remember(906, tool_state.owed([call]))
        assert await tool_state.recall(906, turn("toolu_it_6")) == {}
        assert state.redis_down()
    finally:
        fresh_redis_clients()
