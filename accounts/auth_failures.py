"""Failed authentications: counted in /metrics, and limited per client address across replicas.

A key nobody knows costs a database query (the caches cannot vouch for it), so one address
sending random keys must not be able to turn that into load on the database. Every failed
authentication with a key (unknown, revoked, expired, rotated out, of a disabled tenant) counts
against its client address for the current minute, in Redis so that replicas share the count.
Past TOLLGATE_AUTH_FAILURES_PER_MINUTE, the address gets 429 `rate_limit_error` with
`retry-after` (the end of the minute) instead of 401, and a key neither cache knows is refused
without a database query. A key in use (in this process's cache, or in the shared key cache
any replica filled within the last minute) still works from that address: a tenant behind the
same NAT as a noisy client keeps working. A request without any key costs nothing and is only
counted in /metrics.

The client address is the connection's peer; behind proxies, TOLLGATE_TRUSTED_PROXIES = N takes
the N-th X-Forwarded-For entry from the right (the address the outermost proxy saw). IPv6
addresses count per /64, the block one host usually holds. While Redis is unreachable (or not
configured) each process counts alone, for at most LOCAL_ADDRESSES addresses.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict

from django.conf import settings

from core import metrics, state
from core.errors import RateLimited

log = logging.getLogger("tollgate.auth")
WINDOW_SECONDS = 60
LOCAL_ADDRESSES = 10_000
# Where a request came from, as the server saw it: (peer address, X-Forwarded-For value).
Origin = tuple[str | None, bytes | str | None]


def address_of(origin: Origin | None) -> str | None:
    """The address failures count against; None when the request has no known origin (an
    in-process caller), which is counted in /metrics but never limited."""
    if origin is None:
        return None
    peer, forwarded_for = origin
    hops = settings.TOLLGATE["TRUSTED_PROXIES"]
    if hops and forwarded_for:
        if isinstance(forwarded_for, bytes):
            forwarded_for = forwarded_for.decode("latin-1")
        entries = forwarded_for.split(",")
        if len(entries) >= hops:
            peer = entries[-hops].strip() or peer
    return _grouped(peer) if peer else None


def _grouped(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an address (a proxy's "unknown"): still one bounded bucket
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def observe(reason: str) -> None:
    """Count a failed authentication that no address is charged for (a missing key)."""
    metrics.observe_auth_failure(reason)


async def check(origin: Origin | None) -> None:
    """Before a key costs a database query: RateLimited if its address is over the limit."""
    address = address_of(origin)
    if address is not None and await _count(address, add=0) >= _limit():
        metrics.observe_auth_failure("limited")
        raise _refusal()


async def failed(origin: Origin | None, reason: str) -> None:
    """Count one failed authentication; RateLimited once its address is past the limit (the
    caller raises its 401 otherwise)."""
    address = address_of(origin)
    count = 0 if address is None else await _count(address, add=1)
    if count <= _limit():
        metrics.observe_auth_failure(reason)
        return
    metrics.observe_auth_failure("limited")
    if count == _limit() + 1:  # logged once per address and minute
        log.warning("too many failed authentications from %s, refused this minute", address)
    raise _refusal()


def _limit() -> int:
    return settings.TOLLGATE["AUTH_FAILURES_PER_MINUTE"]


def _refusal() -> RateLimited:
    wait = max(1, math.ceil(WINDOW_SECONDS - time.time() % WINDOW_SECONDS))
    return RateLimited(
        f"too many failed authentications from this address; retry after {wait} seconds",
        headers={"retry-after": str(wait)},
    )


async def _count(address: str, *, add: int) -> int:
    """The address's failures this minute, after adding `add`."""
    window = int(time.time() // WINDOW_SECONDS)
    store = state.async_store()
    if not isinstance(store, state.LocalStore):
        found, count = await state.shared(
            "auth failures", lambda: _redis_count(store, address, window, add)
        )
        if found:
            return count
    return _local.count(address, window, add)


async def _redis_count(store, address: str, window: int, add: int) -> int:
    name = f"tg:authfail:{window}:{address}"
    if not add:
        return int(await store.get(name) or 0)
    pipe = store.pipeline(transaction=False)
    pipe.incrby(name, add)
    pipe.expire(name, 2 * WINDOW_SECONDS)
    count, _ = await pipe.execute()
    return int(count)


class _LocalCounts:
    """Explicit process cache: address -> (minute, failures), the oldest address dropped first
    beyond LOCAL_ADDRESSES."""

    def __init__(self) -> None:
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def count(self, address: str, window: int, add: int) -> int:
        seen_window, count = self._counts.get(address, (window, 0))
        count = (count if seen_window == window else 0) + add
        if add:
            self._counts[address] = (window, count)
            self._counts.move_to_end(address)
            if len(self._counts) > LOCAL_ADDRESSES:
                self._counts.popitem(last=False)
        return count

    def clear(self) -> None:
        self._counts.clear()


_local = _LocalCounts()
