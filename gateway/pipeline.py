"""The `/v1/messages` pipeline, in the order a request lives it.

admit (authenticate, decode, resolve the model, check policy and limits) -> attempt each
planned route (adapter call, falling back on errors another route may not have) -> hand back an
IR response or an IR event stream. The consumer in `gateway/api/messages.py` only moves bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from accounts.auth_failures import Origin
from accounts.keys import KeyInfo, authenticate, secret_from_headers
from core import client_json, ids, ir
from core.errors import (
    ApiError,
    GatewayError,
    InvalidAnswer,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RouteRefusal,
    stream_error,
)
from core.target import Target
from core.tokens import estimate_input_tokens
from gateway import (
    attempts,
    context_edits,
    limits,
    prompt_cache,
    stops,
    strictness,
    tool_state,
    tracing,
)
from protocols import options
from protocols.anthropic import betas, server_tools
from protocols.anthropic.decode import (
    long_cache_ttls,
    messages_body,
    to_ir,
    unknown_fields,
    withheld_fields,
)
from protocols.anthropic.schema import MessagesBody
from providers import breaker, preferences, routing
from providers.adapters.base import Exchange
from providers.aliases import DEFAULT_PREFIX, SuffixError, split_context
from providers.registry import adapter_for
from providers.transport import client_for

T = TypeVar("T")


@dataclass(slots=True)
class Call:
    """Everything known about one request while it is served."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)  # wall clock, for records and budgets
    message_id: str = field(default_factory=ids.message_id)
    key: KeyInfo | None = None
    body: MessagesBody | None = None
    request: ir.Request | None = None
    model: routing.ModelEntry | None = None
    targets: list[Target] = field(default_factory=list)
    attempts: list[attempts.Attempt] = field(default_factory=list)
    target: Target | None = None
    exchange: Exchange | None = None
    upstream_seconds: float = 0.0
    admission: limits.Admission | None = None  # what admission reserved, settled at the end
    estimated_input: int | None = None
    strictness: str = "warn"
    # Stop sequences the gateway matches itself on translated routes (gateway/stops.py).
    stop_sequences: list[str] = field(default_factory=list)
    review: strictness.Review | None = None  # fields each planned route drops
    trace: tracing.Trace | None = None  # the client's x-request-id and traceparent
    # True from an upstream call's start until it failed (a failure generated nothing): a
    # client leaving meanwhile leaves a prompt the upstream may have read.
    upstream_busy: bool = False
    # The context edits the gateway applied to the history translated routes get (None: the
    # request asked for none); an Anthropic route applies them itself and says so.
    applied_edits: list[ir.AppliedEdit] | None = None

    def warnings(self) -> list[str]:
        """What the route that answered dropped, when strictness asks to say so."""
        if self.review is None or self.strictness != "warn":
            return []
        return self.review.warnings(self.target)

    def refused(self, target: Target, err: RouteRefusal) -> None:
        """A route that could not carry the request (no upstream call was made)."""
        if self.review is not None:
            self.review.skipped.append(
                {"provider": target.provider_name, "unsupported": [err.feature]}
            )

    def client_shaped(self, target: Target) -> bool:
        """Whether the request sent to `target` carried fields the client chose (its provider
        options; on a route speaking the client's surface, unknown fields and blocks passed
        through): an odd answer to it is then not the provider's fault. Error path only."""
        request = self.request
        adapter = adapter_for(target.kind)
        if options.addressed(adapter.options, request.provider_options):
            return True
        if adapter.protocol != request.surface:
            return False
        return bool(request.unportable or unknown_fields(request.raw_json or request.raw))

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_seconds) * 1000)

    def input_estimate(self) -> int:
        """Our count of the prompt's tokens, computed once per request."""
        if self.estimated_input is None:
            self.estimated_input = estimate_input_tokens(self.request)
        return self.estimated_input


def beta_flags(headers: dict[bytes, bytes], body: list[str] | None = None) -> list[str]:
    """`anthropic-beta` and the body's `betas`, merged (gateway/betas.py)."""
    return betas.merge(headers.get(b"anthropic-beta"), body)


async def admit(
    call: Call, raw: bytes, headers: dict[bytes, bytes], origin: Origin | None = None
) -> None:
    """Authenticate, validate and resolve the request; raise the client's error otherwise."""
    call.key = await authenticate(secret_from_headers(headers), origin)
    call.trace = tracing.read(headers)
    call.strictness = strictness.level(headers)
    wire = client_json.decode_object(raw)
    call.body = messages_body(wire)
    call.request = to_ir(call.body, beta=beta_flags(headers, call.body.betas))
    call.request.surface, call.request.raw, call.request.raw_json = "anthropic", raw, wire
    call.request.forward_headers = call.trace.upstream_headers(call.request_id)
    # Options of an emulated server tool that no translation reads: reported off Anthropic.
    call.request.context_dropped += server_tools.unread_options(wire, call.request.server_tools)
    snapshot = await routing.current()
    call.model, window = resolve(snapshot, call.key, call.body.model)
    window = window or betas.long_context(call.request.beta)  # `context-1m-*` asks it too
    check_output_limit(call.model, call.request.max_tokens)
    if not call.model.routes:
        raise ApiError(f"model `{call.model.name}` has no enabled route")
    defaults = snapshot.tenant_preferences.get(call.key.tenant_id)
    targets = await plan(snapshot, call.model, call.body.provider, defaults)
    short: list[Target] = []
    if window is not None:
        targets, short = long_context(snapshot, call, targets, window)
    translated = any(adapter_for(t.kind).protocol != "anthropic" for t in targets)
    unknown = unknown_fields(wire) + long_cache_ttls(wire) if translated else []
    # Translated routes get no native stops: the gateway matches them and says which matched.
    call.stop_sequences, call.request.stop_sequences = call.request.stop_sequences, []
    withheld = withheld_fields(wire, headers)
    call.review = strictness.review(targets, call.request, unknown, call.strictness, withheld)
    if short:
        review_long_context(call.review, short, window, call.strictness)
    call.targets = call.review.targets
    if any(adapter_for(t.kind).takes_cache_key for t in call.targets):
        call.request.cache_key = prompt_cache.key_for(call.key.tenant_id, call.request)
    if any(adapter_for(t.kind).replays_tool_state for t in call.targets):
        call.request.tool_state = await tool_state.recall(call.key.tenant_id, call.request)
    debug = call.body.debug
    if debug is not None and debug.enabled and not call.key.allow_debug:
        raise PermissionDenied("debug output is not enabled for this API key")
    call.admission = await limits.admit(call)
    if translated:
        # Only the IR is edited: a route speaking the client's surface forwards its body.
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
    """Whether a route speaking the client's surface gets the window from the beta that asks
    for it (Anthropic's `context-1m-*`), which its provider's policy lets through."""
    if adapter_for(target.kind).protocol != call.request.surface:
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


def _client(target: Target):
    return client_for(target) if target.base_url else None


async def complete(call: Call) -> ir.Response:
    """Non-streaming: the first route that answers (see gateway/attempts.py)."""

    async def attempt(target: Target, exchange: Exchange) -> ir.Response:
        return await adapter_for(target.kind).complete(
            call.request, target, _client(target), exchange
        )

    response = await attempts.run(call, call.targets, _busy(call, attempt))
    if response.passthrough is None:
        response.applied_edits = call.applied_edits
    await tool_state.remember(call.key.tenant_id, tool_state.owed(response.content))
    if response.usage.estimated and not response.usage.input_tokens:
        response.usage.input_tokens = call.input_estimate()
    if call.stop_sequences and response.passthrough is None:
        stops.cut_response(response, call.stop_sequences)
    return response


async def open_stream(call: Call) -> tuple[AsyncIterator[ir.StreamEvent], ir.StreamEvent]:
    """Streaming: the first route whose stream produced a first event, and that event.

    Nothing has reached the client yet, so any failure up to here can still fall back.
    """

    async def attempt(target: Target, exchange: Exchange):
        events = adapter_for(target.kind).stream(call.request, target, _client(target), exchange)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise InvalidAnswer("upstream stream ended before any event") from None
        except GatewayError:
            await events.aclose()
            raise
        if isinstance(first, ir.StreamError):
            await events.aclose()
            raise _stream_error(first)
        return events, first

    events, first = await attempts.run(call, call.targets, _busy(call, attempt))
    if call.applied_edits is not None and not isinstance(first, ir.Passthrough):
        events = _with_edits(events, call.applied_edits)
    if adapter_for(call.target.kind).replays_tool_state:
        events = _remembering(call.key.tenant_id, first, events)
    if not call.stop_sequences or isinstance(first, ir.Passthrough):
        return events, first
    matched = stops.cut_stream(_prepend(first, events), call.stop_sequences, call.input_estimate())
    return matched, await anext(matched)


def _busy(call: Call, attempt: Callable[[Target, Exchange], Awaitable[T]]):
    """`attempt`, keeping `call.upstream_busy` from its start until it fails."""

    async def watched(target: Target, exchange: Exchange) -> T:
        call.upstream_busy = True
        try:
            return await attempt(target, exchange)
        except GatewayError:
            call.upstream_busy = False  # a failed attempt generated nothing
            raise

    return watched


async def _with_edits(events, applied: list[ir.AppliedEdit]):
    """The stream, its end saying which context edits the gateway applied."""
    try:
        async for event in events:
            if isinstance(event, ir.StreamEnd):
                event.applied_edits = applied
            yield event
    finally:
        await events.aclose()


async def _remembering(tenant_id: int, first: ir.StreamEvent, events):
    """`events`, keeping the state its tool calls owe the next turn before the stream's end
    reaches the client (a client may send the next turn the moment it sees it)."""
    calls = tool_state.Collector()
    calls.see(first)
    try:
        async for event in events:
            if isinstance(event, ir.StreamEnd):
                await tool_state.remember(tenant_id, tool_state.owed(calls.calls))
            else:
                calls.see(event)
            yield event
    finally:
        await events.aclose()


async def _prepend(first: ir.StreamEvent, events):
    try:
        yield first
        async for event in events:
            yield event
    finally:
        await events.aclose()


# Errors a provider reports in its first stream event: the provider failed, or the request is
# at fault (returned at once, like an upstream 4xx); anything else may fare better elsewhere
# (the table is core/errors.py STREAM_ERROR_KINDS).
def _stream_error(event: ir.StreamError) -> GatewayError:
    if event.unreadable:
        return InvalidAnswer(event.message)
    return stream_error(event.error_type, event.message)
