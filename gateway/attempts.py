"""Trying routes in order: circuit breakers, same-route retries with backoff, fallback.

One runner for every kind of attempt (a JSON completion, the opening of a stream): a route
whose breaker is open is skipped; a transient failure (connection, timeout, 408, 409, 429, 5xx,
529) is retried on the same route after its `retry-after` or an exponential backoff with
jitter, within a bounded budget, then the next route is tried; a failure that is the client's
fault is returned at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings

from gateway.errors import GatewayError, Overloaded
from providers import breaker
from providers.adapters.base import Exchange, Target

T = TypeVar("T")
BACKOFF_BASE = 0.25


@dataclass(slots=True)
class Attempt:
    provider: str
    upstream_model: str
    status: int | None
    latency_ms: float
    error_type: str | None = None
    route_id: int | None = None


def backoff(err: GatewayError, tries: int, remaining: float) -> float | None:
    """Seconds to wait before retrying the same route, or None to move on."""
    retry_after = getattr(err, "retry_after", None)
    delay = retry_after if retry_after is not None else random.uniform(0, BACKOFF_BASE * 2**tries)
    return delay if delay <= remaining else None


async def run(
    call, targets: list[Target], attempt: Callable[[Target, Exchange], Awaitable[T]]
) -> T:
    """The first successful attempt's result; `call` collects every attempt made."""
    conf = settings.TOLLGATE
    budget_end = time.monotonic() + conf["RETRY_BUDGET_SECONDS"]
    last: GatewayError | None = None
    for target in targets:
        if not await breaker.allow(target.route_id):
            call.attempts.append(
                Attempt(
                    target.provider_name,
                    target.upstream_model,
                    None,
                    0.0,
                    "circuit_open",
                    target.route_id,
                )
            )
            last = last or Overloaded(
                f"every route is unavailable (circuit open for {target.provider_name})"
            )
            continue
        tries = 0
        while True:
            exchange = Exchange()
            began = time.perf_counter()
            try:
                result = await attempt(target, exchange)
            except GatewayError as err:
                elapsed = time.perf_counter() - began
                _note(call, target, exchange, elapsed, err)
                await breaker.record(
                    target.route_id, ok=not err.fallback, latency_ms=elapsed * 1000
                )
                if not err.fallback:
                    raise
                last = err
                delay = backoff(err, tries, budget_end - time.monotonic())
                if tries < conf["ROUTE_RETRIES"] and delay is not None:
                    tries += 1
                    await asyncio.sleep(delay)
                    continue
                break
            elapsed = time.perf_counter() - began
            _note(call, target, exchange, elapsed, None)
            await breaker.record(target.route_id, ok=True, latency_ms=elapsed * 1000)
            call.target, call.exchange = target, exchange
            return result
    raise last or Overloaded("no route could serve the request")


def _note(
    call, target: Target, exchange: Exchange, elapsed: float, err: GatewayError | None
) -> None:
    call.upstream_seconds += elapsed
    call.attempts.append(
        Attempt(
            provider=target.provider_name,
            upstream_model=target.upstream_model,
            status=exchange.status or (None if err else 200),
            latency_ms=elapsed * 1000,
            error_type=err.type if err else None,
            route_id=target.route_id,
        )
    )
