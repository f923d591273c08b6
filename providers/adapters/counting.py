"""A provider's own token count (`count_tokens`), or the gateway's estimate when its counter is
missing, broken or slow; `HttpAdapter.count_tokens` delegates here, each adapter giving only its
`count_request` and `count_result`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import httpx2
import msgspec

from core import ir
from core.errors import GatewayError
from core.target import Target
from core.tokens import estimate_input_tokens
from protocols.stream import UNREADABLE

if TYPE_CHECKING:
    from providers.adapters.base import HttpAdapter

_decode = msgspec.json.Decoder()
log = logging.getLogger("tollgate.routes")

# Counting endpoints: how long a count may take before the estimate answers instead, and the
# statuses that say a server has no counter at all.
COUNT_TIMEOUT_SECONDS = 5.0
COUNTER_MISSING = frozenset({404, 405, 501})
MISSING_COUNTER_SECONDS = 600.0


class _MissingCounters:
    """Explicit process cache: routes whose server has no counting endpoint (an
    Anthropic-compatible server without count_tokens answers 404), skipped for
    MISSING_COUNTER_SECONDS so a client that counts before every request (Claude Code) does not
    pay a round trip each time to learn it again. Bounded: forgotten whole past 4096 routes."""

    KEPT = 4096

    def __init__(self) -> None:
        self.until: dict[int, float] = {}

    def remember(self, route_id: int) -> None:
        if len(self.until) >= self.KEPT:
            self.until.clear()
        self.until[route_id] = time.monotonic() + MISSING_COUNTER_SECONDS

    def __contains__(self, route_id: int) -> bool:
        until = self.until.get(route_id)
        return until is not None and until > time.monotonic()

    def clear(self) -> None:
        self.until.clear()


_missing_counters = _MissingCounters()


def _estimate_only(request: ir.Request) -> tuple[int, bool]:
    """The gateway's own estimate (a real tokenizer, see core/tokens.py): `Adapter.count_tokens`."""
    return estimate_input_tokens(request, exact=True), False


async def count_tokens(
    adapter: HttpAdapter, request: ir.Request, target: Target, client: httpx2.AsyncClient | None
) -> tuple[int, bool]:
    """The provider's count when its counter answers, else the gateway's estimate: a
    counter that is missing (404), broken (5xx, a timeout, garbage), refuses our key or
    rejects what it was sent never fails the count (the request was validated before)."""
    if client is None or target.route_id in _missing_counters:
        return _estimate_only(request)
    try:
        upstream = adapter.count_request(request, target)
    except (GatewayError, *UNREADABLE):  # content this route cannot carry
        upstream = None
    if upstream is None:
        return _estimate_only(request)
    try:
        response = await client.post(
            upstream.parsed_url(),
            content=upstream.content(),
            headers=upstream.headers,
            timeout=count_timeout(target),
        )
    except httpx2.HTTPError as exc:
        return _estimate(request, target, type(exc).__name__)
    if response.status_code >= 400:
        if response.status_code in COUNTER_MISSING:
            _missing_counters.remember(target.route_id)
        err = adapter.parse_error(response.status_code, response.content, response.headers)
        why = f"{response.status_code}: {err.message[:300]}"
        return _estimate(request, target, why)
    try:
        tokens = adapter.count_result(_decode.decode(response.content))
    except UNREADABLE:
        tokens = None
    if type(tokens) is not int or tokens < 0:
        return _estimate(request, target, "an unreadable count")
    return tokens, True


def _estimate(request: ir.Request, target: Target, why: str) -> tuple[int, bool]:
    log.info("token counter of %s failed (%s): the estimate answers", target.provider_name, why)
    return _estimate_only(request)


def count_timeout(target: Target) -> httpx2.Timeout:
    """Counting is quick or not worth waiting for: the estimate answers sooner."""
    wait = min(target.first_byte_timeout, COUNT_TIMEOUT_SECONDS)
    return httpx2.Timeout(
        connect=target.connect_timeout, read=wait, write=wait, pool=target.connect_timeout
    )
