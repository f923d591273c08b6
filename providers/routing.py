"""The routing table: public models, their routes and prices, and tenant model lists.

Each process serves it from memory and reloads it when the shared config version (bumped by
every admin or `gateway_apply` change, see `accounts.config_version`) moves; the version
is checked at most every ROUTES_CACHE_SECONDS, so the hot path makes no database query.
Without Redis (the quick start) the version is the database's stamp
(`accounts.models.ConfigVersion`), read at the same pace, so a change made by another process
(`gateway_apply`, the admin under another server) reaches this one too.
Providers' credentials and extra headers are decrypted once per load, which also tells the
redaction rule (core/redaction.py) every configured credential value.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from channels.db import database_sync_to_async
from django.conf import settings

from accounts import config_version
from core import redaction, state
from core.target import Target
from providers.aliases import AliasIndex


@dataclass(frozen=True, slots=True)
class RouteEntry:
    target: Target
    priority: int
    weight: int
    alpha: bool = False
    # Upstream cost per million tokens (input + output), for `sort: price`; None if unknown.
    price: Decimal | None = None
    # The long-context variant: the context it serves and the target to call for it.
    long_context_window: int | None = None
    long_context: Target | None = None


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    web_search: Decimal = Decimal(0)  # per 1,000 searches
    cache_write_1h: Decimal | None = None  # None: gateway.usage.billing.hour_price


@dataclass(frozen=True, slots=True)
class ModelEntry:
    id: int
    name: str
    display_name: str
    created_at: datetime
    max_tokens: int | None
    prices: Prices
    routes: tuple[RouteEntry, ...]
    routing: str = "weighted"
    aliases: tuple[str, ...] = ()  # its aliases and patterns, for /v1/models

    @property
    def alpha_routes(self) -> frozenset[int]:
        return frozenset(r.target.route_id for r in self.routes if r.alpha)

    @property
    def route_prices(self) -> dict[int, float]:
        return {r.target.route_id: float(r.price) for r in self.routes if r.price is not None}


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: bytes | None
    models: dict[str, ModelEntry] = field(default_factory=dict)
    # tenant id -> allowed public model names; absent: every enabled model.
    tenant_models: dict[int, frozenset[str]] = field(default_factory=dict)
    # Every enabled provider's name, to tell a typo in `provider.only` from a real name.
    provider_names: frozenset[str] = frozenset()
    # tenant id -> the tenant's defaults for the request's `provider` object.
    tenant_preferences: dict[int, dict] = field(default_factory=dict)
    # Aliases and patterns of every enabled model, with the per-id resolution cache.
    aliases: AliasIndex = field(default_factory=AliasIndex)
    # tenant id -> the model an unmatched `claude-*` id means for it.
    tenant_default: dict[int, str] = field(default_factory=dict)

    def plan(self, model: ModelEntry, values: dict[int, float] | None = None) -> list[Target]:
        """Routes in the order to try: by priority; within a priority, by `values` (latency or
        price, lowest first) when given, else weighted random."""
        ordered: list[Target] = []
        by_priority: dict[int, list[RouteEntry]] = {}
        for route in model.routes:
            by_priority.setdefault(route.priority, []).append(route)
        for priority in sorted(by_priority):
            group = list(by_priority[priority])
            if values is not None:
                group.sort(key=lambda r: values.get(r.target.route_id, float("inf")))
                ordered.extend(r.target for r in group)
                continue
            while group:
                pick = random.choices(group, weights=[max(r.weight, 1) for r in group])[0]
                group.remove(pick)
                ordered.append(pick.target)
        return ordered

    def long_context(
        self, model: ModelEntry, targets: list[Target], window: int
    ) -> tuple[list[Target], frozenset[int]]:
        """The plan for a long-context request (`[1m]`): routes declaring a window at least
        that large first, each as its long-context variant, then the others in their order;
        and the ids of those others (they serve the ordinary context only)."""
        variants = {
            r.target.route_id: r.long_context
            for r in model.routes
            if r.long_context is not None and (r.long_context_window or 0) >= window
        }
        able = [variants[t.route_id] for t in targets if t.route_id in variants]
        unable = [t for t in targets if t.route_id not in variants]
        return able + unable, frozenset(t.route_id for t in unable)


class _Cache:
    """Explicit process cache of the current snapshot."""

    snapshot: Snapshot | None = None
    checked_at: float = 0.0
    loaded_at: float = float("-inf")  # when the snapshot was read from the database
    # The refresh in flight, shared by every request that needs it (no thundering herd).
    refreshing: asyncio.Future | None = None


async def current() -> Snapshot:
    now = time.monotonic()
    snap = _Cache.snapshot
    if snap is not None and now - _Cache.checked_at < settings.TOLLGATE["ROUTES_CACHE_SECONDS"]:
        return snap
    if _Cache.refreshing is not None and not _Cache.refreshing.done():
        return await asyncio.shield(_Cache.refreshing)
    _Cache.refreshing = asyncio.ensure_future(_refresh(snap))
    return await asyncio.shield(_Cache.refreshing)


# With Redis away no change notice arrives, so the database is reread this often instead.
DEGRADED_RELOAD_SECONDS = 10.0
_OFFLINE = b"loaded-without-redis"


async def _refresh(snap: Snapshot | None) -> Snapshot:
    if not settings.REDIS_URL:  # one process among others (CLI, admin): the database says
        known, version = True, await _stamp()
    else:
        known, version = await state.shared(
            "routing table", lambda: state.async_store().get(state.CONFIG_VERSION_KEY)
        )
    if known:
        stale = snap is None or version != snap.version
    else:
        stale = snap is None or time.monotonic() - _Cache.loaded_at >= DEGRADED_RELOAD_SECONDS
    if stale:
        # Loaded without Redis, a version Redis never holds: its first answer reloads once more.
        snap = await _load(version if known else _OFFLINE)
        _Cache.snapshot, _Cache.loaded_at = snap, time.monotonic()
    _Cache.checked_at = time.monotonic()
    return snap


def reset() -> None:
    """Forget the cached table (tests, and after config changes inside this process)."""
    _Cache.snapshot = None
    _Cache.checked_at = 0.0
    _Cache.loaded_at = float("-inf")
    _Cache.refreshing = None


def _credentials(providers: list) -> dict[int, tuple[str, dict[str, str]]]:
    """provider id -> (API key, extra headers), decrypted once per load, and every value
    registered with the redaction rule (disabled providers' too). A provider whose secrets
    cannot be decrypted any more is left out (a route using it fails the load, saying why)."""
    found: dict[int, tuple[str, dict[str, str]]] = {}
    values: list[str] = []
    for provider in providers:
        try:
            api_key, headers = provider.credential, provider.extra_headers
        except ValueError:
            continue
        found[provider.pk] = (api_key, headers)
        values += [api_key, *headers.values()]
    redaction.remember(values)
    return found


_stamp = database_sync_to_async(config_version.config_stamp)


@database_sync_to_async
def _load(version: bytes | None) -> Snapshot:
    from accounts.models import Tenant
    from providers.models import Model, ModelAlias, Provider, Route

    signing_key = hashlib.sha256(b"tollgate-signature:" + settings.SECRET_KEY.encode()).digest()
    providers = list(Provider.objects.all())
    credentials = _credentials(providers)
    routes: dict[int, list[RouteEntry]] = {}
    query = Route.objects.filter(enabled=True, provider__enabled=True, model__enabled=True)
    for route in query.select_related("provider"):
        provider = route.provider
        api_key, extra_headers = credentials.get(provider.pk) or (
            provider.credential,  # raises: it cannot be decrypted with the configured keys
            provider.extra_headers,
        )
        target = Target(
            route_id=route.pk,
            provider_id=provider.pk,
            provider_name=provider.name,
            kind=provider.kind,
            base_url=provider.base_url,
            api_key=api_key,
            upstream_model=route.upstream_model,
            extra_headers=extra_headers,
            options=dict(provider.options or {}),
            connect_timeout=provider.connect_timeout,
            first_byte_timeout=provider.first_byte_timeout,
            idle_timeout=provider.idle_timeout,
            version=provider.updated_at.isoformat(),
            signing_key=signing_key,
            betas_mode=provider.betas_mode,
            betas=tuple(provider.betas or ()),
        )
        long_context = None
        if route.long_context_window:
            upstream = route.long_context_upstream_model or route.upstream_model
            long_context = dataclasses.replace(target, upstream_model=upstream)
        price = None
        if route.upstream_price_input is not None or route.upstream_price_output is not None:
            price = (route.upstream_price_input or 0) + (route.upstream_price_output or 0)
        routes.setdefault(route.model_id, []).append(
            RouteEntry(
                target=target,
                priority=route.priority,
                weight=route.weight,
                alpha=route.alpha,
                price=price,
                long_context_window=route.long_context_window,
                long_context=long_context,
            )
        )
    enabled = list(Model.objects.filter(enabled=True))
    aliases = AliasIndex.build(
        (m.name for m in enabled),
        dict(ModelAlias.objects.filter(model__enabled=True).values_list("name", "model__name")),
    )
    models = {
        m.name: ModelEntry(
            id=m.pk,
            name=m.name,
            display_name=m.display_name or m.name,
            created_at=m.created_at,
            max_tokens=m.max_tokens,
            prices=Prices(
                m.price_input,
                m.price_output,
                m.price_cache_read,
                m.price_cache_write,
                web_search=m.price_web_search,
                cache_write_1h=m.price_cache_write_1h,
            ),
            routes=tuple(routes.get(m.pk, ())),
            routing=m.routing,
            aliases=aliases.of(m.name),
        )
        for m in enabled
    }
    tenant_models: dict[int, frozenset[str]] = {}
    tenant_preferences: dict[int, dict] = {}
    tenant_default: dict[int, str] = {}
    query = Tenant.objects.prefetch_related("allowed_models").select_related("default_model")
    for tenant in query:
        names = frozenset(m.name for m in tenant.allowed_models.all())
        if names:
            tenant_models[tenant.pk] = names
        if tenant.provider_defaults:
            tenant_preferences[tenant.pk] = dict(tenant.provider_defaults)
        if tenant.default_model is not None and tenant.default_model.name in models:
            tenant_default[tenant.pk] = tenant.default_model.name
    names = frozenset(p.name for p in providers if p.enabled)
    return Snapshot(
        version=version,
        models=models,
        tenant_models=tenant_models,
        provider_names=names,
        tenant_preferences=tenant_preferences,
        aliases=aliases,
        tenant_default=tenant_default,
    )
