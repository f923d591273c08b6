"""Two tenants on the same routes: while A sends the hostile mix, B's ordinary traffic is served,
recorded and counted exactly, and no route's breaker opens."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import httpx
import redis
from django.conf import settings

from accounts.models import ApiKey
from gateway.limits import budgets
from gateway.models import UsageRecord as UsageRow
from providers import breaker
from providers.models import Route
from tests.e2e.usage import records_for

B_REQUESTS = 40
B_USAGE = {"input_tokens": 120, "output_tokens": 30}  # $0.00036 + $0.00045 = $0.00081 each
B_COST = Decimal("0.000810000")
ASK = {"max_tokens": 64, "messages": [{"role": "user", "content": "What is the weather?"}]}
TINY_PNG_URL = "https://example.com/cat.png"


def hostile_mix(model: str) -> list[tuple[bytes | dict, dict[str, bytes]]]:
    """(body, extra headers): what tenant A tries, each a known way to hurt others."""
    ask = {"model": model, **ASK}
    unknown_block = {**ask, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}
    by_url = {
        **ask,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "url", "url": TINY_PNG_URL}}],
            }
        ],
    }
    return [
        ({**ask, "model": model + "\x00"}, {}),
        ({**ask, "model": "\ud800" + model}, {}),
        (
            {
                **ask,
                "provider_options": {
                    "openai": {"model": "gpt-expensive", "max_tokens": 999_999, "n": 8}
                },
            },
            {},
        ),
        (
            {
                **ask,
                "provider_options": {
                    "google": {"contents": [], "generationConfig": {"candidateCount": 8}}
                },
            },
            {},
        ),
        (unknown_block, {}),
        (by_url, {}),
        ({**ask, "max_tokens": 0}, {}),
        ({**ask, "max_tokens": 10**12}, {}),
        (
            b'{"model": "'
            + model.encode()
            + b'", "max_tokens": 5, "messages": [{"role": "user", "content": "\xff"}]}',
            {},
        ),
        (
            b'{"model": "'
            + model.encode()
            + b'", "max_tokens": 5, "x": 1e400, "messages": [{"role": "user", "content": "hi"}]}',
            {},
        ),
        (b'{"model": "' + model.encode() + b'", "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}),
        (ask, {"anthropic-beta": "ünïcode".encode()}),
        (
            {
                **ask,
                "stream": True,
                "messages": [{"role": "user", "content": [{"type": "hologram"}]}],
            },
            {},
        ),
    ]


async def tenant_a(url: str, key: str, model: str, rounds: int) -> list[int]:
    statuses = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(rounds):
            for body, extra in hostile_mix(model):
                headers = {"x-api-key": key.encode(), "content-type": b"application/json", **extra}
                if isinstance(body, dict):
                    body = json.dumps(body).encode()  # NUL and lone surrogates as \u escapes
                answer = await client.post("/v1/messages", content=body, headers=headers)
                statuses.append(answer.status_code)
            # and anyone's random keys
            answer = await client.post("/v1/messages", json=ASK, headers={"x-api-key": "tg_guess"})
            statuses.append(answer.status_code)
    return statuses


async def tenant_b(url: str, key: str, model: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"x-api-key": key}) as client:

        async def one(i: int) -> httpx.Response:
            await asyncio.sleep(i * 0.02)
            body = {"model": model, **ASK, "stream": i % 2 == 1}
            answer = await client.post("/v1/messages", json=body)
            await answer.aread()
            return answer

        return await asyncio.gather(*(one(i) for i in range(B_REQUESTS)))


def test_tenant_b_is_served_recorded_and_counted_exactly_while_tenant_a_attacks(hostile):
    stage = hostile
    stage.apply(
        providers=[stage.provider("openai"), stage.provider("gemini")],
        models=[
            stage.model(
                "shared",
                [
                    {"provider": "gemini-fake", "upstream_model": "gemini-shared", "priority": 1},
                    {"provider": "openai-fake", "upstream_model": "gpt-shared", "priority": 2},
                ],
            )
        ],
        tenants=[{"name": "attacker"}, {"name": "bystander"}],
    )
    for upstream in ("gemini-shared", "gpt-shared"):
        stage.upstream.script(upstream, *[{"usage": B_USAGE}] * (B_REQUESTS * 2))
    a_key = stage.tenant_key("attacker")
    b_key = stage.tenant_key("bystander", rpm=B_REQUESTS + 10, budget_usd=Decimal("1.00"))

    async def both():
        return await asyncio.gather(
            tenant_a(stage.gateway.url, a_key, "shared", rounds=8),
            tenant_b(stage.gateway.url, b_key, "shared"),
        )

    began = time.monotonic()
    a_statuses, b_answers = asyncio.run(both())

    assert all(status < 500 for status in a_statuses), sorted(set(a_statuses))
    assert [a.status_code for a in b_answers] == [200] * B_REQUESTS, [a.text for a in b_answers]
    # Every B request landed once, at its price, on the first route (gemini) of the model.
    broker = redis.Redis.from_url(settings.REDIS_URL)
    ids = [a.headers["request-id"] for a in b_answers]
    rows = records_for(broker, ids, within=30)
    assert {(r.status, r.cost_usd, r.provider) for r in rows.values()} == {
        ("ok", B_COST, "gemini-fake")
    }
    # B's budget in Redis is the database's sum, nothing left reserved or pending.
    key = ApiKey.objects.get(prefix=b_key[:11])
    spent = sum(r.cost_usd for r in UsageRow.objects.filter(api_key=key))
    assert spent == B_COST * B_REQUESTS
    period = budgets.period_of("monthly", budgets.day_at(rows[ids[0]].started_at.timestamp()))
    held = broker.hgetall(budgets.budget_key("key", key.pk, period))
    assert Decimal(int(held[b"spent"])) / 10**9 == spent
    assert (int(held[b"reserved"]), int(held[b"pending"])) == (0, 0)
    # B's rate limit counted B's requests only: the next one leaves 9 of 50, plus what the
    # bucket refilled meanwhile (50 a minute).
    last = httpx.post(
        stage.gateway.url + "/v1/messages",
        json={"model": "shared", **ASK},
        headers={"x-api-key": b_key},
    )
    refilled = int((time.monotonic() - began) * (B_REQUESTS + 10) / 60) + 1
    remaining = int(last.headers["anthropic-ratelimit-requests-remaining"])
    assert 9 <= remaining <= 9 + refilled
    # No route of the model was opened by A's requests.
    for route in Route.objects.filter(model__name="shared"):
        assert breaker.health(route.pk).state == "closed", route
    broker.close()
