"""Crafted prompts sent all at once through the real gateway, the upstream reporting their true
usage: what reservations must hold against (issue 12, point 13)."""

from __future__ import annotations

import asyncio

import httpx

from core import tokens
from protocols.anthropic.decode import decode_messages, to_ir
from tests.prompts import crafted_prompt

CRAFTED = {
    "model": "claude-test",
    "max_tokens": 1_000,
    "messages": [{"role": "user", "content": crafted_prompt()}],
}


def crafted_request() -> tuple[bytes, int, int]:
    """The crafted body as sent, its prompt's real size (what the fake upstream reports) and
    its bound (what one request reserves)."""
    raw = httpx.Request("POST", "/", json=CRAFTED).content
    request = to_ir(decode_messages(raw))
    request.raw = raw
    return raw, tokens.estimate_input_tokens(request, exact=True), tokens.input_bound(request)


def crafted_flood(stage, key: str, upstream_model: str, count: int = 100) -> list[dict]:
    """`count` crafted requests at once, the upstream answering each after a second (so all
    are in flight together) with its true usage; returns the usage of each admitted one."""
    raw, exact, _ = crafted_request()
    reply = {"usage": {"input_tokens": exact, "output_tokens": 1_000}, "delay_first_byte": 1.0}
    stage.upstream.script(upstream_model, *[reply] * count)
    headers = {"x-api-key": key, "content-type": "application/json"}

    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stage.gateway.url, timeout=60) as client:
            asks = [client.post("/v1/messages", content=raw, headers=headers) for _ in range(count)]
            return await asyncio.gather(*asks)

    answers = asyncio.run(flood())
    assert {a.status_code for a in answers} <= {200, 402, 429}, [a.text for a in answers][:3]
    return [a.json()["usage"] for a in answers if a.status_code == 200]
