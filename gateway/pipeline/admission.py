"""Admission: who asks (key), what (the surface's decoding), of which model, by which routes,
within which limits. Raises the client's error, or leaves the `Call` ready for its attempts.
"""

from __future__ import annotations

from accounts.auth_failures import Origin
from accounts.keys import KeyInfo, authenticate, secret_from_headers
from core import client_json
from core.errors import ApiError, InvalidRequest, NotFound, PermissionDenied
from core.target import Target
from gateway import context_edits, limits, prompt_cache, strictness, tool_state, tracing
from gateway.pipeline.call import Call
from protocols.anthropic import betas
from providers import breaker, preferences, routing
from providers.aliases import DEFAULT_PREFIX, SuffixError, split_context
from providers.registry import adapter_for, passes_through


async def admit(
    call: Call, raw: bytes, headers: dict[bytes, bytes], origin: Origin | None = None
) -> None:
    """Authenticate, decode (in the call's surface), resolve and admit the request; raise the
    client's error otherwise."""
    call.key = await authenticate(secret_from_headers(headers), origin)
    call.trace = tracing.read(headers)
    call.strictness = strictness.level(headers)
    call.response_id = call.surface.new_id()
    decoded = call.decoded = call.surface.decode(raw, client_json.decode_object(raw), headers)
    call.request = decoded.request
    call.request.forward_headers = call.trace.upstream_headers(call.request_id)
    snapshot = await routing.current()
    call.model, window = resolve(snapshot, call.key, decoded.ask.model)
    window = window or betas.long_context(call.request.beta)  # `context-1m-*` asks it too
    check_output_limit(call.model, call.request.max_tokens)
    if not call.model.routes:
        raise ApiError(f"model `{call.model.name}` has no enabled route")
    defaults = snapshot.tenant_preferences.get(call.key.tenant_id)
    targets = await plan(snapshot, call.model, decoded.ask.provider, defaults)
    short: list[Target] = []
    if window is not None:
        targets, short = long_context(snapshot, call, targets, window)
    translated = any(not passes_through(t.kind, call.request.surface) for t in targets)
    unknown = call.surface.dropped(decoded) if translated else []
    # Translated routes get no native stops: the gateway matches them and says which matched.
    call.stop_sequences, call.request.stop_sequences = call.request.stop_sequences, []
    call.review = strictness.review(
        targets, call.request, unknown, call.strictness, decoded.withheld
    )
    if short:
        review_long_context(call.review, short, window, call.strictness)
    call.targets = call.review.targets
    if any(adapter_for(t.kind).takes_cache_key for t in call.targets):
        call.request.cache_key = prompt_cache.key_for(call.key.tenant_id, call.request)
    if any(adapter_for(t.kind).replays_tool_state for t in call.targets):
        call.request.tool_state = await tool_state.recall(call.key.tenant_id, call.request)
    debug = decoded.ask.debug
    if debug is not None and debug.enabled and not call.key.allow_debug:
        raise PermissionDenied("debug output is not enabled for this API key")
    call.admission = await limits.admit(call.demand())
    if translated:
        # Only the IR is edited: a route taking the client's body as sent forwards it.
        call.applied_edits = context_edits.apply(call.request)


def resolve_model(snapshot: routing.Snapshot, key: KeyInfo, name: str) -> routing.ModelEntry:
    """The model an id means for this key (see `resolve`), without its context window."""
    return resolve(snapshot, key, name)[0]


def resolve(
    snapshot: routing.Snapshot, key: KeyInfo, name: str
) -> tuple[routing.ModelEntry, int | None]:
    """The model an id means for this key, and the context window its `[1m]`-style suffix asks
    for (None: none); the order is providers/aliases.py's. A model the key or its tenant may not
    use does not exist for it, with its aliases and patterns (the same 404, word for word), so no
    key can probe other tenants' models."""
    try:
        base, window = split_context(name)
    except SuffixError as err:
        raise InvalidRequest(str(err)) from None
    tenant_models = snapshot.tenant_models.get(key.tenant_id)
    allowed = key.allowed_models

    def usable(model: str) -> bool:
        return (tenant_models is None or model in tenant_models) and (
            allowed is None or model in allowed
        )

    if base in snapshot.models and usable(base):
        return snapshot.models[base], window
    for candidate in snapshot.aliases.candidates(base):
        if usable(candidate):
            return snapshot.models[candidate], window
    default = snapshot.tenant_default.get(key.tenant_id)
    if default is not None and base.startswith(DEFAULT_PREFIX) and usable(default):
        return snapshot.models[default], window
    raise NotFound(f"model: unknown model `{name}`")


def long_label(window: int) -> str:
    return f"model: long context [{window // 1_000_000}m]"


def long_context(
    snapshot: routing.Snapshot, call: Call, targets: list[Target], window: int
) -> tuple[list[Target], list[Target]]:
    """Routes declaring the long-context variant first, as that variant; under strictness
    `error` the others are set aside (a 400 when none is left), else they follow in their
    order. Returns the plan and the routes that serve the ordinary context only."""
    targets, short_ids = snapshot.long_context(call.model, targets, window)
    short = [t for t in targets if t.route_id in short_ids and not _window_by_beta(call, t, window)]
    if short and call.strictness == "error":
        set_aside = {t.route_id for t in short}
        targets = [t for t in targets if t.route_id not in set_aside]
        if not targets:
            raise InvalidRequest(
                f"{long_label(window)}: no route of model `{call.model.name}` serves it "
                "(strictness: error)"
            )
    return targets, short


def _window_by_beta(call: Call, target: Target, window: int) -> bool:
    """Whether a route taking the client's body as sent gets the window from the beta that
    asks for it (Anthropic's `context-1m-*`), which its provider's policy lets through."""
    if not passes_through(target.kind, call.request.surface):
        return False
    kept = betas.forwarded(call.request.beta, target.betas_mode, target.betas)[0]
    return (betas.long_context(kept) or 0) >= window


def review_long_context(
    review: strictness.Review, short: list[Target], window: int, level: str
) -> None:
    """Routes serving only the ordinary context, reported like a field they drop (`warn`) or
    like a route set aside (`error`)."""
    label = long_label(window)
    for target in short:
        if level == "error":
            review.skipped.append({"provider": target.provider_name, "unsupported": [label]})
        elif target.route_id in review.dropped:
            review.dropped[target.route_id] = [*review.dropped[target.route_id], label]


def check_output_limit(model: routing.ModelEntry, max_tokens: int) -> None:
    """`max_tokens` within the model's configured output limit (none configured: no limit)."""
    if model.max_tokens is not None and max_tokens > model.max_tokens:
        raise InvalidRequest(
            f"max_tokens: {max_tokens} > {model.max_tokens}, which is the maximum allowed "
            f"number of output tokens for {model.name}"
        )


async def plan(
    snapshot: routing.Snapshot, model: routing.ModelEntry, requested, tenant_defaults: dict | None
) -> list[Target]:
    """The routes to try, in order, after the model's routing rule and the `provider` object."""
    prefs = preferences.merge(requested, tenant_defaults)
    preferences.check_names(prefs, snapshot.provider_names)
    if model.routing == "latency":
        targets = snapshot.plan(
            model, await breaker.latencies([r.target.route_id for r in model.routes])
        )
    elif model.routing == "price":
        targets = snapshot.plan(model, model.route_prices)
    else:
        targets = snapshot.plan(model)
    if prefs.sort == "latency":
        targets = preferences.sort_by(
            targets, await breaker.latencies([t.route_id for t in targets])
        )
    elif prefs.sort == "price":
        targets = preferences.sort_by(targets, model.route_prices)
    return preferences.apply(targets, model.alpha_routes, prefs, model=model.name)
