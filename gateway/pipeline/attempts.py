"""Trying routes in order: circuit breakers, same-route retries with backoff, fallback.

One runner for every kind of attempt (a JSON completion, the opening of a stream). Routes are
shared by every tenant, so only what says something about the provider touches a route's
health (the typing lives in core/errors.py):

- a route whose breaker is open is skipped;
- a refusal decided before any network call (content the route cannot carry) is never retried
  and never seen by the breaker: the next route is tried, and when none can carry the request
  the client gets the 400 naming what could not be sent;
- a provider fault (connection, timeout, 5xx, 429/529, an unreadable answer to a request the
  gateway alone shaped) counts as a breaker failure and is retried on the same route after its
  `retry-after` or an exponential backoff with jitter, within a bounded budget, unless the
  breaker opened meanwhile (that failure, or a failed half-open probe, may be what opened it);
  then the next route is tried;
- our credential or account refused (a 401, or the provider's error details saying so) counts
  as a breaker failure too, but the next route is tried at once: the same key would be refused
  again;
- anything else (an upstream 4xx caused by the client's content, an odd answer to fields the
  client chose) is neither a failure nor a success: returned at once, or, when another route
  may do better, tried there without a retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings

from core import redaction
from core.errors import GatewayError, InvalidAnswer, Overloaded, RouteRefusal
from core.target import Target
from providers import breaker
from providers.adapters.base import Exchange

T = TypeVar("T")
BACKOFF_BASE = 0.25
log = logging.getLogger("tollgate.routes")


@dataclass(slots=True)
class Attempt:
    provider: str
    upstream_model: str
    status: int | None
    latency_ms: float
    error_type: str | None = None
    route_id: int | None = None
    error_message: str = ""  # redacted, cut to MAX_ERROR_MESSAGE
    upstream_request_id: str | None = None  # the provider's own id for the call
    started_at: float = 0.0  # wall clock (traces)


MAX_ERROR_MESSAGE = 500  # characters of an attempt's error kept in its usage record


def backoff(err: GatewayError, tries: int, remaining: float) -> float | None:
    """Seconds to wait before retrying the same route, or None to move on."""
    retry_after = getattr(err, "retry_after", None)
    delay = retry_after if retry_after is not None else random.uniform(0, BACKOFF_BASE * 2**tries)
    return delay if delay <= remaining else None


def provider_failed(call, target: Target, err: GatewayError) -> bool:
    """Whether this failed attempt counts against the route (see the module docstring)."""
    if not err.provider_fault:
        return False
    if isinstance(err, InvalidAnswer):
        return not call.client_shaped(target)  # the client's own fields may explain it
    return True


async def run(
    call, targets: list[Target], attempt: Callable[[Target, Exchange], Awaitable[T]]
) -> T:
    """The first successful attempt's result; `call` collects every attempt made."""
    conf = settings.TOLLGATE
    budget_end = time.monotonic() + conf["RETRY_BUDGET_SECONDS"]
    last: GatewayError | None = None
    refusal: RouteRefusal | None = None
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
            except RouteRefusal as err:
                refusal = refusal or err
                call.refused(target, err)
                await breaker.release(target.route_id)  # a probe it held proved nothing
                break
            except GatewayError as err:
                elapsed = time.perf_counter() - began
                _note(call, target, exchange, elapsed, err)
                failed = provider_failed(call, target, err)
                if failed:
                    log.warning(
                        "route %s failed (%s): %s",
                        target.provider_name,
                        exchange.status or err.type,
                        err.message[:300],
                    )
                    await breaker.record(target.route_id, ok=False, latency_ms=elapsed * 1000)
                else:
                    await breaker.release(target.route_id)
                if not err.fallback:
                    raise
                last = err
                if not failed or not err.transient:
                    # The request's doing, or our credential refused: the same route would
                    # answer the same.
                    break
                delay = backoff(err, tries, budget_end - time.monotonic())
                # The breaker is asked again: this failure (or a failed half-open probe) may
                # be what opened it, and then the route gets no second call.
                if (
                    tries < conf["ROUTE_RETRIES"]
                    and delay is not None
                    and await breaker.allow(target.route_id)
                ):
                    tries += 1
                    await asyncio.sleep(delay)
                    continue
                break
            elapsed = time.perf_counter() - began
            _note(call, target, exchange, elapsed, None)
            await breaker.record(target.route_id, ok=True, latency_ms=elapsed * 1000)
            call.target, call.exchange = target, exchange
            return result
    # A provider's failure says more than a refusal: another try may find that route back.
    raise last or refusal or Overloaded("no route could serve the request")


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
            error_message=redaction.scrub(err.message)[:MAX_ERROR_MESSAGE] if err else "",
            upstream_request_id=exchange.upstream_request_id,
            started_at=time.time() - elapsed,
        )
    )
