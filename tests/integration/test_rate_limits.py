"""Rate limits in Redis (admit.lua / settle.lua): exact under concurrency, shared by replicas."""

import asyncio
from datetime import UTC, datetime

import pytest

from accounts.keys import Limits
from core import state, tokens
from core.errors import RateLimited
from gateway import limits
from gateway.usage.record import UsageRecord
from protocols.anthropic.surface import SURFACE as ANTHROPIC
from tests.integration.limited_calls import call_for, fresh_redis_clients, key_info
from tests.prompts import crafted_prompt


@pytest.fixture(autouse=True)
def _clients():
    fresh_redis_clients()
    yield
    fresh_redis_clients()


def headers_of(admission_or_refusal) -> dict[str, str]:
    """The limits as an Anthropic client reads them (after an admission, or in a refusal)."""
    limits = getattr(admission_or_refusal, "limits", None)
    limits = limits() if callable(limits) else limits
    return {k.decode(): v.decode() for k, v in ANTHROPIC.limit_headers(limits)}


async def admit_all(calls):
    results = await asyncio.gather(*(limits.admit(c) for c in calls), return_exceptions=True)
    admitted = [r for r in results if isinstance(r, limits.Admission)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(admitted) + len(refused) == len(calls), results
    return admitted, refused


async def test_50_concurrent_admissions_with_rpm_20_admit_exactly_20():
    info = key_info(key=Limits(rpm=20))

    admitted, refused = await admit_all([call_for(info) for _ in range(50)])

    assert len(admitted) == 20 and len(refused) == 30
    headers = {**refused[0].headers, **headers_of(refused[0])}
    assert headers["anthropic-ratelimit-requests-limit"] == "20"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert 1 <= int(headers["retry-after"]) <= 3  # one request refills every 3 s
    assert "API key's limit is 20 requests per minute" in refused[0].message


async def test_replicas_share_the_limit_through_redis():
    """Two clients (as two processes would have) draw on the same bucket."""
    info = key_info(key=Limits(rpm=10))
    calls = [call_for(info) for _ in range(16)]
    first, _ = await admit_all(calls[:8])
    state._async_clients.clear()  # the other "replica" connects anew

    second, refused = await admit_all(calls[8:])

    assert len(first) + len(second) == 10 and len(refused) == 6


async def test_a_tenant_limit_is_shared_by_its_keys():
    tenant = Limits(rpm=5)
    one = key_info(tenant=tenant, tenant_id=424242)
    two = key_info(tenant=tenant, tenant_id=424242)

    admitted, _ = await admit_all([call_for(k) for k in (one, two) * 6])

    assert len(admitted) == 5


async def test_the_stricter_of_key_and_tenant_limits_is_reported():
    info = key_info(key=Limits(rpm=100), tenant=Limits(rpm=3))

    admission = await limits.admit(call_for(info))

    headers = headers_of(admission)
    assert headers["anthropic-ratelimit-requests-limit"] == "3"
    assert headers["anthropic-ratelimit-requests-remaining"] == "2"
    reset = datetime.strptime(headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ")
    seconds = reset.replace(tzinfo=UTC).timestamp() - datetime.now(UTC).timestamp()
    assert 0 <= seconds <= 21  # one request of 3 per minute takes 20 s to refill


def usage(call, *, input_tokens: int, output_tokens: int) -> UsageRecord:
    return UsageRecord(
        request_id=call.request_id,
        started_at=call.started_at,
        finished_at=call.started_at,
        status="ok",
        http_status=200,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


async def test_tokens_reserve_the_prompts_bound_and_max_tokens_then_settle_to_the_real_usage():
    info = key_info(key=Limits(tpm=10_000))
    call = call_for(info, prompt="word " * 200, max_tokens=500)

    admission = await limits.admit(call)

    reserved = tokens.input_bound(call.request) + 500
    assert call.estimate() < 1_000 < reserved < 1_600  # 1,000 bytes of prompt + 500
    assert admission.buckets[0].cost == reserved
    assert headers_of(admission)["anthropic-ratelimit-tokens-remaining"] == str(10_000 - reserved)
    await limits.settle(admission, usage(call, input_tokens=1000, output_tokens=2000))

    after = await limits.admit(call_for(info, prompt="hi", max_tokens=10))
    remaining = int(headers_of(after)["anthropic-ratelimit-tokens-remaining"])
    assert 10_000 - 3000 - after.buckets[0].cost - 2 <= remaining <= 10_000 - 3000


async def test_a_request_whose_worst_case_exceeds_the_limit_waits_for_a_full_bucket():
    """An honest request: its prompt fits the limit, its max_tokens alone does not. It is
    admitted, reserving the whole limit, and the next one waits until the tokens come back."""
    info = key_info(key=Limits(tpm=2_000))
    first = call_for(info, prompt="hello " * 100, max_tokens=8_000)

    admission = await limits.admit(first)
    with pytest.raises(RateLimited) as refused:
        await limits.admit(call_for(info, prompt="hi", max_tokens=10))

    assert admission.buckets[0].cost == 2_000
    assert "the API key's limit is 2000 tokens per minute" in refused.value.message
    await limits.settle(admission, usage(first, input_tokens=110, output_tokens=40))
    assert await limits.admit(call_for(info, prompt="hi", max_tokens=10)) is not None


async def test_crafted_prompts_in_flight_together_pass_a_tpm_limit_by_one_reservation_at_most():
    """100 concurrent requests, each a prompt crafted so the sampled estimate sees a thirtieth
    of it; each settles to its exact count once all were admitted (a slow upstream)."""
    info = key_info(key=Limits(tpm=200_000))
    prompt = crafted_prompt()
    calls = [call_for(info, prompt=prompt, max_tokens=1_000) for _ in range(100)]
    exact = tokens.estimate_input_tokens(calls[0].request, exact=True)
    assert calls[0].estimate() * 10 < exact  # the estimate alone is fooled

    admitted, _ = await admit_all(calls)
    used = len(admitted) * (exact + 1_000)

    assert used <= 200_000 + admitted[0].buckets[0].cost, f"{used} tokens used of 200,000"


async def test_a_prompt_larger_than_the_token_limit_is_refused_with_its_size():
    info = key_info(tenant=Limits(tpm=50))

    with pytest.raises(RateLimited) as refused:
        await limits.admit(call_for(info, prompt="word " * 200))

    assert "exceed the tenant's limit of 50 tokens per minute" in refused.value.message
    assert headers_of(refused.value)["anthropic-ratelimit-tokens-limit"] == "50"


async def test_without_limits_redis_is_not_touched(monkeypatch):
    def no_redis():
        raise AssertionError("a request without limits reached Redis")

    monkeypatch.setattr(state, "async_store", no_redis)

    assert await limits.admit(call_for(key_info())) is None


async def test_requests_are_admitted_when_redis_is_down(monkeypatch):
    import redis.asyncio as aioredis

    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    monkeypatch.setattr(state, "async_store", lambda: dead)

    assert await limits.admit(call_for(key_info(key=Limits(rpm=1)))) is None
