"""The answer: the planned routes tried in order (gateway/pipeline/attempts.py), giving back
an IR response or an IR event stream, with what the gateway adds on translated routes (stop
sequences it matches, context edits it applied, provider state it keeps for the next turn).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from core import ir
from core.errors import GatewayError, InvalidAnswer, stream_error
from core.target import Target
from gateway import stops, tool_state
from gateway.pipeline import attempts
from gateway.pipeline.call import Call
from providers.adapters.base import Exchange
from providers.registry import adapter_for
from providers.transport import client_for

T = TypeVar("T")


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
