"""The attempt loop and the shared breakers (real Redis): only provider faults touch a route's
health; a refusal before the network or the client's own error never retries and never counts;
a same-route retry asks the breaker first."""

from __future__ import annotations

import asyncio
import itertools

import msgspec
import pytest

from core import ids
from core.errors import (
    GatewayError,
    InvalidAnswer,
    RouteRefusal,
    UpstreamError,
    upstream_error,
)
from core.target import Target
from gateway.pipeline import Call, attempts
from gateway.strictness import Review
from protocols.anthropic.surface import SURFACE as ANTHROPIC
from providers import breaker
from providers.adapters.base import Exchange
from tests.integration.limited_calls import fresh_redis_clients

_route_ids = itertools.count(880_000)


@pytest.fixture(autouse=True)
def production_breakers(settings):
    settings.TOLLGATE = {
        **settings.TOLLGATE,
        "BREAKER_FAILURES": 5,
        "BREAKER_COOLDOWN": 30.0,
        "ROUTE_RETRIES": 1,
    }
    fresh_redis_clients()
    yield
    fresh_redis_clients()


def route(kind: str = "openai") -> Target:
    route_id = next(_route_ids)
    return Target(
        route_id=route_id,
        provider_id=route_id,
        provider_name=f"{kind}-{route_id}",
        kind=kind,
        base_url="http://upstream.test",
        api_key="k",
        upstream_model="up",
    )


def call(**body) -> Call:
    data = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    raw = msgspec.json.encode({**data, **body})
    made = Call(request_id=ids.request_id())
    made.decoded = ANTHROPIC.decode(raw, msgspec.json.decode(raw), {})
    made.request = made.decoded.request
    return made


class Upstream:
    """Stands in for the adapters: each route fails with its scripted error, or answers."""

    def __init__(self, **errors: GatewayError | None):
        self.errors = errors
        self.calls: list[str] = []

    async def __call__(self, target: Target, exchange: Exchange) -> str:
        self.calls.append(target.provider_name)
        err = self.errors.get(target.provider_name)
        if err is not None:
            exchange.status = getattr(err, "upstream_status", None)
            raise err
        return "answer"


def failures(target: Target) -> int:
    """The route's failure streak as every replica sees it."""
    return breaker.health(target.route_id).failures


async def test_a_refusal_moves_on_at_once_and_the_route_never_hears_of_it():
    refusing, serving = route("gemini"), route()
    upstream = Upstream(**{refusing.provider_name: RouteRefusal("an image given by URL", "g")})
    for _ in range(100):
        made = call()
        assert await attempts.run(made, [refusing, serving], upstream) == "answer"
        assert [a.provider for a in made.attempts] == [serving.provider_name]  # no attempt
    assert upstream.calls.count(refusing.provider_name) == 100  # once each, never retried
    assert failures(refusing) == 0
    assert await breaker.allow(refusing.route_id)


async def test_when_no_route_can_carry_the_request_the_client_gets_the_400_naming_it():
    only = route("gemini")
    made = call()
    made.review = Review(targets=[])
    upstream = Upstream(**{only.provider_name: RouteRefusal("an image given by URL", "gemini")})
    with pytest.raises(RouteRefusal) as refused:
        await attempts.run(made, [only], upstream)
    assert refused.value.status == 400
    assert refused.value.message == "an image given by URL is not supported by provider `gemini`"
    assert made.review.skipped == [
        {"provider": only.provider_name, "unsupported": ["an image given by URL"]}
    ]


async def test_a_client_4xx_is_returned_at_once_and_counted_neither_way():
    target = route()
    upstream = Upstream(**{target.provider_name: upstream_error(400, "bad block")})
    for _ in range(20):
        with pytest.raises(UpstreamError) as caught:
            await attempts.run(call(), [target, route()], upstream)
        assert caught.value.status == 400
    assert len(upstream.calls) == 20  # never retried, never sent to the next route
    assert failures(target) == 0


@pytest.mark.parametrize("status", [403, 404, 409])
async def test_a_refusal_a_client_can_earn_falls_back_without_retry_or_count(status):
    refusing, serving = route(), route()
    upstream = Upstream(**{refusing.provider_name: upstream_error(status, "no such cache")})
    for _ in range(10):
        assert await attempts.run(call(), [refusing, serving], upstream) == "answer"
    assert upstream.calls.count(refusing.provider_name) == 10
    assert failures(refusing) == 0


async def test_provider_failures_are_retried_counted_and_open_the_breaker():
    flaky, steady = route(), route()
    upstream = Upstream(**{flaky.provider_name: upstream_error(500, "boom")})
    for _ in range(3):
        assert await attempts.run(call(), [flaky, steady], upstream) == "answer"
    # 2 + 2 + 1: the fifth failure opened the breaker, so that request made no second call.
    assert upstream.calls.count(flaky.provider_name) == 5
    assert not await breaker.allow(flaky.route_id)
    made = call()
    assert await attempts.run(made, [flaky, steady], upstream) == "answer"
    assert made.attempts[0].error_type == "circuit_open"
    assert upstream.calls.count(flaky.provider_name) == 5


async def test_a_failed_half_open_probe_makes_one_upstream_call(settings):
    settings.TOLLGATE = {**settings.TOLLGATE, "BREAKER_COOLDOWN": 0.3}
    flaky = route()
    for _ in range(5):
        await breaker.record(flaky.route_id, ok=False, latency_ms=1.0)
    await asyncio.sleep(0.35)
    upstream = Upstream(**{flaky.provider_name: upstream_error(503, "still down")})

    with pytest.raises(UpstreamError):
        await attempts.run(call(), [flaky], upstream)

    assert upstream.calls == [flaky.provider_name]  # the probe failed: no retry behind it
    assert not await breaker.allow(flaky.route_id)  # open again for a whole cool-down


async def test_an_unreadable_answer_counts_only_when_the_gateway_alone_shaped_the_request():
    shaped, forwarded = route("anthropic"), route("anthropic")
    unreadable = InvalidAnswer("upstream answered with an unreadable message")
    upstream = Upstream(**{shaped.provider_name: unreadable, forwarded.provider_name: unreadable})

    for _ in range(10):
        with pytest.raises(InvalidAnswer):
            await attempts.run(call(mystery_field=1), [forwarded], upstream)
    with pytest.raises(InvalidAnswer):
        await attempts.run(call(), [shaped], upstream)

    assert upstream.calls.count(forwarded.provider_name) == 10  # never retried
    assert failures(forwarded) == 0
    assert upstream.calls.count(shaped.provider_name) == 2  # a provider fault: retried
    assert failures(shaped) == 2


async def test_provider_options_make_an_odd_answer_the_requests_doing():
    target = route("openai")
    upstream = Upstream(**{target.provider_name: InvalidAnswer("unreadable")})
    made = call(provider_options={"openai": {"verbosity": "low"}})
    with pytest.raises(InvalidAnswer):
        await attempts.run(made, [target], upstream)
    assert failures(target) == 0
    assert len(upstream.calls) == 1


@pytest.mark.parametrize("kind", ["credential", "account"])
async def test_our_refused_credential_moves_on_at_once_and_counts_against_the_route(kind):
    refused, serving = route(), route()
    upstream = Upstream(**{refused.provider_name: upstream_error(401, "bad key", kind=kind)})
    for _ in range(4):
        made = call()
        assert await attempts.run(made, [refused, serving], upstream) == "answer"
        assert [a.provider for a in made.attempts] == [refused.provider_name, serving.provider_name]
    assert upstream.calls.count(refused.provider_name) == 4  # never retried on the same key
    assert failures(refused) == 4  # but the route is broken for everyone: it counts
    await attempts.run(call(), [refused, serving], upstream)
    assert not await breaker.allow(refused.route_id)  # the fifth opened its breaker


async def test_when_every_route_refuses_our_credential_the_client_is_told_not_to_retry():
    first, second = route("gemini"), route("anthropic")
    upstream = Upstream(
        **{
            first.provider_name: upstream_error(400, "API key not valid", kind="credential"),
            second.provider_name: upstream_error(401, "invalid x-api-key"),
        }
    )
    with pytest.raises(UpstreamError) as caught:
        await attempts.run(call(), [first, second], upstream)
    assert (caught.value.status, caught.value.type) == (500, "api_error")
    assert caught.value.retryable is False  # x-should-retry: false
    assert upstream.calls == [first.provider_name, second.provider_name]
