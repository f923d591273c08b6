"""Calls ready for `gateway.limits.admit`, as `pipeline.admit` leaves them, without a server."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
from django.db import connections

from accounts.keys import KeyInfo, Limits
from core import ids, state
from gateway.limits import Demand
from gateway.pipeline import Call
from protocols.anthropic.surface import SURFACE as ANTHROPIC
from providers.routing import ModelEntry, Prices

PRICES = Prices(Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"))
MODEL = ModelEntry(1, "claude-test", "", datetime.now(UTC), None, PRICES, ())
_ids = itertools.count(10_000)


def key_info(
    *, key: Limits | None = None, tenant: Limits | None = None, key_id=None, tenant_id=None
) -> KeyInfo:
    """A key with these limits; fresh ids unless given, so tests never share Redis state."""
    return KeyInfo(
        key_id=key_id or next(_ids),
        tenant_id=tenant_id or next(_ids),
        tenant_name="acme",
        prefix="tg_TestTest",
        allowed_models=None,
        allow_debug=False,
        expires_at=None,
        revoked=False,
        tenant_active=True,
        key_limits=key,
        tenant_limits=tenant,
    )


def call_for(info: KeyInfo, *, prompt: str = "Hello there", max_tokens: int = 100) -> Demand:
    body = {"model": "claude-test", "max_tokens": max_tokens}
    body["messages"] = [{"role": "user", "content": prompt}]
    call = Call(request_id=ids.request_id())
    call.key = info
    raw = msgspec.json.encode(body)
    call.decoded = ANTHROPIC.decode(raw, msgspec.json.decode(raw), {})
    call.request = call.decoded.request  # its raw body bounds the reservations
    call.model = MODEL
    return call.demand()


def fresh_redis_clients() -> None:
    """Each test has its own event loop: a client cached for a dead loop must not be reused."""
    state._async_clients.clear()


@contextmanager
def short_lived_connections():
    """Async tests reach the database from asgiref's threads; with persistent connections
    those would outlive the test and keep the test database from being dropped."""
    db = connections.settings["default"]
    before = db.get("CONN_MAX_AGE", 0)
    db["CONN_MAX_AGE"] = 0
    try:
        yield
    finally:
        db["CONN_MAX_AGE"] = before
