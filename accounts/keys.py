"""Tenant API keys: the secret format, and the one key-checking service every API uses.

A warm key costs no database query: each process keeps what it learned for
KEY_CACHE_SECONDS, backed by a Redis entry shared by all replicas. Revoking a key deletes
the Redis entry, so every replica sees the revocation within KEY_CACHE_SECONDS.

The process cache is bounded (`KeyCache`): at most KEY_CACHE_SIZE known keys and as many
unknown secret hashes, each the oldest dropped first, so random keys cost bounded memory and
cannot push real keys out. An unknown hash is remembered for UNKNOWN_KEY_SECONDS, here and in
Redis, so repeating a wrong key costs no query; guessing new ones is limited per client
address (accounts.auth_failures) before it can cost the database much.

While Redis does not answer, keys are read from the database (every KEY_CACHE_SECONDS per key
and process), so revocations still apply within KEY_CACHE_SECONDS. Entries written before the
outage may describe keys revoked during it (the revocation could not delete them), so a process
that saw Redis fail drops every shared key entry once Redis answers again.

A key's info also carries its own and its tenant's limits (rate limits, budget), so admission
needs no query either. A rotated key answers to two secrets until the grace period ends: the
previous one is loaded with `expires_at` set to the end of the grace.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from collections import OrderedDict
from decimal import Decimal

import msgspec
from channels.db import database_sync_to_async
from django.conf import settings

from accounts import auth_failures
from accounts.auth_failures import Origin
from core import state
from core.errors import AuthenticationFailed

SECRET_PREFIX = "tg_"
SHOWN_PREFIX_LENGTH = 11  # "tg_" + 8 characters: enough to tell keys apart in lists
_ALPHABET = string.ascii_letters + string.digits
# Bounds how long a shared entry can outlive a revocation whose delete failed (Redis away)
# and that no gateway process noticed: one query per key and minute is cheap.
REDIS_TTL_SECONDS = 60
# How long a secret hash no key has is remembered as unknown (a key created later has another).
UNKNOWN_KEY_SECONDS = 10


class Limits(msgspec.Struct, frozen=True):
    """Rate limits and a spend budget of a key or a tenant; None fields are not limited."""

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: Decimal | None = None
    budget_period: str = "monthly"  # "daily" or "monthly", UTC


def limits_of(row) -> Limits | None:
    """A tenant's or key's limits; None when it has none (the hot path then skips Redis)."""
    if row.rpm is None and row.tpm is None and row.budget_usd is None:
        return None
    return Limits(row.rpm, row.tpm, row.budget_usd, row.budget_period or "monthly")


class KeyInfo(msgspec.Struct, frozen=True):
    """What the hot path needs to know about a key; never holds the secret."""

    key_id: int
    tenant_id: int
    tenant_name: str
    prefix: str
    allowed_models: frozenset[str] | None  # None: whatever the tenant may use
    allow_debug: bool
    expires_at: float | None  # epoch seconds
    revoked: bool
    tenant_active: bool
    key_limits: Limits | None = None
    tenant_limits: Limits | None = None
    # True when this is the secret a rotation replaced (valid until expires_at).
    superseded: bool = False
    # The request log's body capture: bytes kept of each body and answer (0: off), and days.
    capture_bytes: int = 0
    capture_days: int = 0


_MISSING = b"-"
_info_decoder = msgspec.msgpack.Decoder(KeyInfo)
_info_encoder = msgspec.msgpack.Encoder()


class KeyCache:
    """Explicit process cache of what this process learned about secret hashes: known keys
    for KEY_CACHE_SECONDS, unknown hashes for UNKNOWN_KEY_SECONDS; at most KEY_CACHE_SIZE of
    each, the least recently learned dropped first."""

    def __init__(self) -> None:
        self._known: OrderedDict[str, tuple[KeyInfo, float]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # hash -> learned at (monotonic)

    def get(self, secret_hash: str, now: float) -> tuple[bool, KeyInfo | None]:
        """(True, info) or (True, None) for a known or unknown hash still trusted; else
        (False, None)."""
        known = self._known.get(secret_hash)
        if known is not None and now - known[1] < settings.TOLLGATE["KEY_CACHE_SECONDS"]:
            return True, known[0]
        learned = self._unknown.get(secret_hash)
        if learned is not None and now - learned < UNKNOWN_KEY_SECONDS:
            return True, None
        return False, None

    def put(self, secret_hash: str, info: KeyInfo | None, now: float) -> None:
        entries: OrderedDict = self._unknown if info is None else self._known
        self.pop(secret_hash)
        entries[secret_hash] = now if info is None else (info, now)
        if len(entries) > settings.TOLLGATE["KEY_CACHE_SIZE"]:
            entries.popitem(last=False)

    def pop(self, secret_hash: str) -> None:
        self._known.pop(secret_hash, None)
        self._unknown.pop(secret_hash, None)

    def clear(self) -> None:
        self._known.clear()
        self._unknown.clear()

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)


_process_cache = KeyCache()


def new_secret(prefix: str = SECRET_PREFIX) -> tuple[str, str, str]:
    """A fresh key: (secret shown once, shown prefix, hash stored). Service tokens use their
    own `prefix` (accounts.service_tokens) with the same randomness and hash."""
    secret = prefix + "".join(secrets.choice(_ALPHABET) for _ in range(40))
    shown = len(prefix) + SHOWN_PREFIX_LENGTH - len(SECRET_PREFIX)  # the prefix and 8 more
    return secret, secret[:shown], hash_secret(secret)


def derived_secret(seed: str) -> tuple[str, str, str]:
    """A key derived from SECRET_KEY and `seed`, as `new_secret` returns it: the quick start's
    demo key, which must be the same after a restart without being stored anywhere."""
    digest = hmac.new(settings.SECRET_KEY.encode(), seed.encode(), hashlib.sha512).digest()
    secret = SECRET_PREFIX + "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:40])
    return secret, secret[:SHOWN_PREFIX_LENGTH], hash_secret(secret)


def hash_secret(secret: str) -> str:
    # Keys carry 238 bits of randomness, so a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(secret.encode()).hexdigest()


def redis_key(secret_hash: str) -> str:
    return f"tg:key:{secret_hash}"


def forget(secret_hash: str) -> None:
    """Drop a key from the shared cache (after revocation or a policy change)."""
    state.forget(redis_key(secret_hash))
    _process_cache.pop(secret_hash)


def secret_from_headers(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"x-api-key")
    if value:
        return value.decode("latin-1").strip()
    auth = headers.get(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        return auth[7:].decode("latin-1").strip()
    return None


async def authenticate(secret: str | None, origin: Origin | None = None) -> KeyInfo:
    """The key-checking service: a valid, active key's info, or AuthenticationFailed (401).

    `origin` is where the request came from (accounts.auth_failures): past its address's limit
    of failed authentications, RateLimited (429) instead.
    """
    if not secret:
        auth_failures.observe("missing")
        raise AuthenticationFailed("missing API key: send `x-api-key` or `Authorization: Bearer`")
    info = await lookup(hash_secret(secret), origin)
    reason, message = _refusal(info)
    if reason is None:
        return info
    await auth_failures.failed(origin, reason)
    raise AuthenticationFailed(message)


def _refusal(info: KeyInfo | None) -> tuple[str | None, str]:
    """(reason for /metrics, message) of a key that must be refused; (None, "") if valid."""
    if info is None:
        return "unknown", "invalid x-api-key"
    if info.revoked:
        return "revoked", "this API key has been revoked"
    if info.expires_at is not None and info.expires_at <= time.time():
        if info.superseded:
            return "rotated", "this API key was rotated; use its new secret"
        return "expired", "this API key has expired"
    if not info.tenant_active:
        return "tenant_disabled", "this API key's tenant is disabled"
    return None, ""


async def lookup(secret_hash: str, origin: Origin | None = None) -> KeyInfo | None:
    """The key with this secret hash, from this process, Redis, or the database; before the
    database, RateLimited if the request's address made too many failed authentications."""
    now = time.monotonic()
    hit, info = _process_cache.get(secret_hash, now)
    if hit:
        return info
    found, info = await state.shared(
        "key cache", lambda: _shared_lookup(state.async_store(), secret_hash, origin)
    )
    if not found:
        await auth_failures.check(origin)
        info = await _load(secret_hash)
    _process_cache.put(secret_hash, info, now)
    return info


class _Flushed:
    """Explicit process state: the outage count when this process last dropped the shared
    key entries (see the module docstring)."""

    outages = 0


async def _shared_lookup(store, secret_hash: str, origin: Origin | None) -> KeyInfo | None:
    if _Flushed.outages != state.outages():
        count = state.outages()
        await _drop_shared_entries(store)
        _Flushed.outages = count
    raw = await store.get(redis_key(secret_hash))
    if raw is not None:
        return None if raw == _MISSING else _info_decoder.decode(raw)
    await auth_failures.check(origin)
    info = await _load(secret_hash)
    if isinstance(store, state.LocalStore):
        # No Redis (quick start): another process (the CLI, the admin) cannot reach this
        # store, so the process cache alone keeps the key, for KEY_CACHE_SECONDS; a revocation
        # made elsewhere then applies within that delay, as with Redis.
        return info
    encoded = _MISSING if info is None else _info_encoder.encode(info)
    # Unknown keys are remembered briefly so repeating one costs no database query either.
    ttl = REDIS_TTL_SECONDS if info else UNKNOWN_KEY_SECONDS
    await store.set(redis_key(secret_hash), encoded, ex=ttl)
    return info


async def _drop_shared_entries(store) -> None:
    if isinstance(store, state.LocalStore):
        return
    batch = []
    async for name in store.scan_iter(match=redis_key("*"), count=1000):
        batch.append(name)
        if len(batch) >= 1000:
            await store.unlink(*batch)
            batch.clear()
    if batch:
        await store.unlink(*batch)


@database_sync_to_async
def _load(secret_hash: str) -> KeyInfo | None:
    from django.db.models import Q

    from accounts.models import ApiKey

    key = (
        ApiKey.objects.select_related("tenant")
        .prefetch_related("allowed_models")
        .filter(Q(secret_hash=secret_hash) | Q(previous_secret_hash=secret_hash))
        .first()
    )
    if key is None:
        return None
    models = frozenset(m.name for m in key.allowed_models.all())
    expires_at = key.expires_at
    superseded = key.secret_hash != secret_hash
    if superseded:
        grace_end = key.previous_expires_at
        expires_at = min(expires_at, grace_end) if expires_at else grace_end
    return KeyInfo(
        key_id=key.pk,
        tenant_id=key.tenant_id,
        tenant_name=key.tenant.name,
        prefix=key.prefix,
        allowed_models=models or None,
        allow_debug=key.allow_debug,
        expires_at=expires_at.timestamp() if expires_at else None,
        revoked=key.revoked_at is not None,
        tenant_active=key.tenant.is_active,
        key_limits=limits_of(key),
        tenant_limits=limits_of(key.tenant),
        superseded=superseded,
        capture_bytes=key.tenant.capture_max_bytes if key.tenant.capture_bodies else 0,
        capture_days=key.tenant.capture_retention_days,
    )
