"""The adapter contract: what every provider surface implements, and the shared HTTP plumbing.

An adapter is stateless and pure where it can be: `build_request` (IR -> upstream HTTP request),
`parse_response` (upstream JSON -> IR), `stream_parser` (a `StreamParser` per stream: upstream
SSE events -> IR events) and `parse_error` (upstream error -> `UpstreamError`); each delegates
to its protocol's codec (protocols/<name>/upstream_*.py, errors.py). The HTTP exchange itself,
timeouts, the permanent/transient split and the stream loop live here once, in
`HttpAdapter.complete`, `HttpAdapter.stream` and `HttpAdapter.parse_stream`.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx2
import msgspec

from core import ir
from core.errors import (
    ApiError,
    GatewayError,
    InvalidAnswer,
    TimeoutError_,
    UpstreamError,
)
from core.target import Target
from core.tokens import estimate_input_tokens
from protocols import upstream_errors
from protocols.options import OptionTable
from protocols.stream import UNREADABLE, SseFrames, StreamParser
from providers.adapters import counting
from providers.kinds import protocol_of

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


# Where providers put their own id for a call: Anthropic `request-id`, OpenAI and most
# OpenAI-compatible servers `x-request-id`, Azure `apim-request-id`.
UPSTREAM_ID_HEADERS = ("request-id", "x-request-id", "apim-request-id")
_UPSTREAM_ID = re.compile(r"[\x21-\x7e]{1,128}")


def upstream_request_id(headers) -> str | None:
    """The provider's id for the call, when it sends a sane one (it ends up in the database)."""
    for name in UPSTREAM_ID_HEADERS:
        value = headers.get(name)
        if value and _UPSTREAM_ID.fullmatch(value):
            return value
    return None


@dataclass(slots=True)
class UpstreamRequest:
    url: str
    body: dict[str, Any]
    headers: dict[str, str]

    def content(self) -> bytes:
        return _json.encode(self.body)

    def parsed_url(self) -> httpx2.URL:
        return parsed_url(self.url)


# Explicit process cache: parsing a URL is 40 % of building an httpx2 request, and a gateway
# calls a few dozen distinct upstream URLs (provider x endpoint x model) over and over.
_urls: dict[str, httpx2.URL] = {}
_URLS_KEPT = 4096


def parsed_url(url: str) -> httpx2.URL:
    parsed = _urls.get(url)
    if parsed is None:
        if len(_urls) >= _URLS_KEPT:
            _urls.clear()
        parsed = _urls[url] = httpx2.URL(url)
    return parsed


@dataclass(slots=True)
class Exchange:
    """What happened on the wire for one attempt; feeds debug output and metrics."""

    request: UpstreamRequest | None = None
    status: int | None = None
    upstream_request_id: str | None = None  # the provider's own id for the call, if it says
    response_body: Any = None
    first_byte_at: float | None = None


class Adapter:
    """Base for every provider surface."""

    kind: ClassVar[str]
    # Whether a client body in this adapter's protocol is forwarded as sent (pass-through, an
    # optimisation) instead of rebuilt from the IR.
    passthrough: ClassVar[bool] = False
    # The `provider_options` a client may send this provider (protocols/options.py).
    options: ClassVar[OptionTable | None] = None
    # Whether this provider wants state back with a tool call that the client cannot carry
    # (`ir.ToolUse.state`, gateway/tool_state.py): the gateway looks it up only for these.
    replays_tool_state: ClassVar[bool] = False
    # Whether this provider takes a prompt cache key (`ir.Request.cache_key`).
    takes_cache_key: ClassVar[bool] = False

    @property
    def protocol(self) -> str | None:
        """The protocol this provider speaks natively (providers/kinds.py): a client speaking
        it too has its request passed through unchanged."""
        return protocol_of(self.kind)

    async def complete(
        self,
        request: ir.Request,
        target: Target,
        client: httpx2.AsyncClient | None,
        exchange: Exchange,
    ) -> ir.Response:
        raise NotImplementedError

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        """Request fields this route would drop or cannot honour, named for the client.

        Strictness (`X-Tollgate-Strictness`) decides what happens to them: refuse the route,
        warn, or drop silently. Harmless hints (cache_control) are not listed; beta names are
        judged for every route by gateway/strictness.py (`dropped_betas`).
        """
        return []

    async def count_tokens(
        self, request: ir.Request, target: Target, client: httpx2.AsyncClient | None
    ) -> tuple[int, bool]:
        """Input tokens of a would-be request, and whether the figure is exact.

        The default is the gateway's own estimate (a real tokenizer, see core/tokens.py);
        adapters whose provider has a counting endpoint override `count_request`.
        """
        return estimate_input_tokens(request, exact=True), False

    def stream(
        self,
        request: ir.Request,
        target: Target,
        client: httpx2.AsyncClient | None,
        exchange: Exchange,
    ) -> AsyncIterator[ir.StreamEvent]:
        raise NotImplementedError


def _retry_after(headers: httpx2.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


async def sse_data(response: httpx2.Response) -> AsyncIterator[tuple[str | None, bytes]]:
    """Yield (event name, data) pairs from an SSE body as it arrives (protocols/stream.py
    frames them)."""
    frames = SseFrames()
    async for chunk in response.aiter_bytes():
        for event in frames.feed(chunk):
            yield event
    for event in frames.close():
        yield event


class HttpAdapter(Adapter):
    """A provider reached over HTTP with JSON bodies and SSE streams."""

    # The provider's error codes that say who is to blame, each with its kind (a key of
    # core.errors.VERDICTS): our credential, our account, ... A code not listed leaves it to
    # the status.
    error_kinds: ClassVar[dict[str, str]] = {}

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        raise NotImplementedError

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        raise NotImplementedError

    def stream_parser(self, request: ir.Request, target: Target) -> StreamParser:
        """A fresh parser for one stream (it holds that stream's state)."""
        raise NotImplementedError

    async def parse_stream(
        self,
        events: AsyncIterator[tuple[str | None, bytes]],
        request: ir.Request,
        target: Target,
    ) -> AsyncIterator[ir.StreamEvent]:
        """The one stream loop: every SSE event through the adapter's parser, until the reply
        is over or the body ends; an event the parser cannot read ends the stream."""
        parser = self.stream_parser(request, target)
        async for name, data in events:
            try:
                out = parser.feed(name, data)
            except UNREADABLE as exc:
                out, parser.done = parser.failure(exc), True
            for event in out:
                yield event
            if parser.done:
                return
        try:
            out = parser.end()
        except UNREADABLE as exc:
            out = parser.failure(exc)
        for event in out:
            yield event

    def error_message(self, body: Any) -> str:
        """The human message inside an upstream error body; subclasses know their shape."""
        return upstream_errors.error_message(body)

    def error_codes(self, body: Any) -> list[Any]:
        """The provider's own names for an error (codes, reasons), the most specific first."""
        return []

    def error_retry_after(self, body: Any) -> float | None:
        """A wait the error body asks for, for providers that put it there."""
        return None

    def parse_error(self, status: int, body: bytes, headers: httpx2.Headers) -> UpstreamError:
        try:
            data = _decode.decode(body) if body else None
        except msgspec.DecodeError:
            data = None
        return self.error_from(status, data, retry_after=_retry_after(headers))

    def error_from(
        self, status: int, data: Any, *, retry_after: float | None = None
    ) -> UpstreamError:
        """The error an upstream answered (its status and decoded body), blamed on the right
        party: the provider's error details first (`error_kinds`), its status otherwise."""
        return upstream_errors.error_from(
            status,
            data,
            message_of=self.error_message,
            codes_of=self.error_codes,
            retry_after_of=self.error_retry_after,
            kinds=self.error_kinds,
            retry_after=retry_after,
        )

    def count_request(self, request: ir.Request, target: Target) -> UpstreamRequest | None:
        """The provider's own token-counting call, when it has one."""
        return None

    def count_result(self, body: Any) -> int:
        raise NotImplementedError

    async def count_tokens(self, request, target, client):
        """The provider's count when its counter answers, else the gateway's estimate
        (providers/adapters/counting.py)."""
        return await counting.count_tokens(self, request, target, client)

    def timeout(self, target: Target) -> httpx2.Timeout:
        return httpx2.Timeout(
            connect=target.connect_timeout,
            read=target.first_byte_timeout,
            write=target.first_byte_timeout,
            pool=target.connect_timeout,
        )

    async def complete(self, request, target, client, exchange):
        upstream = self.build_request(request, target)
        upstream.headers.update(request.forward_headers)
        exchange.request = upstream
        try:
            response = await client.post(
                upstream.parsed_url(),
                content=upstream.content(),
                headers=upstream.headers,
                timeout=self.timeout(target),
            )
        except httpx2.TimeoutException as exc:
            raise _timeout(exc) from None
        except httpx2.HTTPError as exc:
            raise _connection(exc) from None
        exchange.status = response.status_code
        exchange.first_byte_at = time.perf_counter()
        exchange.upstream_request_id = upstream_request_id(response.headers)
        if response.status_code >= 400:
            raise self.parse_error(response.status_code, response.content, response.headers)
        try:
            body = _decode.decode(response.content)
        except msgspec.DecodeError:
            raise InvalidAnswer("upstream answered with invalid JSON") from None
        exchange.response_body = body
        try:
            return self.parse_response(body, request, target)
        except UNREADABLE:
            raise InvalidAnswer("upstream answered with an unreadable message") from None

    async def stream(self, request, target, client, exchange):
        upstream = self.build_request(request, target)
        upstream.headers.update(request.forward_headers)
        exchange.request = upstream
        http_request = client.build_request(
            "POST",
            upstream.parsed_url(),
            content=upstream.content(),
            headers=upstream.headers,
            timeout=self.timeout(target),
        )
        try:
            response = await client.send(http_request, stream=True)
        except httpx2.TimeoutException as exc:
            raise _timeout(exc) from None
        except httpx2.HTTPError as exc:
            raise _connection(exc) from None
        last: ir.StreamEvent | None = None
        try:
            exchange.status = response.status_code
            exchange.first_byte_at = time.perf_counter()
            exchange.upstream_request_id = upstream_request_id(response.headers)
            if response.status_code >= 400:
                await response.aread()
                raise self.parse_error(response.status_code, response.content, response.headers)
            # After the first byte the per-read timeout becomes the idle timeout between chunks.
            # The transport reads this dict at every read, so the change takes effect.
            http_request.extensions["timeout"]["read"] = target.idle_timeout
            async for event in self.parse_stream(sse_data(response), request, target):
                last = event
                yield event
        except httpx2.TimeoutException:
            raise StreamInterrupted("timeout_error", "upstream stream stalled") from None
        except httpx2.HTTPError:
            raise StreamInterrupted("api_error", "upstream stream ended unexpectedly") from None
        except UNREADABLE:
            yield ir.StreamError("api_error", "upstream sent an unreadable event", unreadable=True)
        finally:
            abort = response.extensions.get("abort")
            if abort and not response.is_stream_consumed and not _ended(last):
                abort()  # given up mid-reply: the provider should stop generating now
            await response.aclose()


def _ended(event: ir.StreamEvent | None) -> bool:
    """Whether the provider's reply was over with this event (its end, or its error); an event
    the gateway could not read is not the reply's end, so the provider is told to stop."""
    if isinstance(event, ir.Passthrough):
        return event.event in ("message_stop", "error")
    if isinstance(event, ir.StreamError):
        return not event.unreadable
    return isinstance(event, ir.StreamEnd)


class StreamInterrupted(GatewayError):
    """The upstream stream broke after it had started (before its first event, another route
    may still serve the request)."""

    fallback = True
    provider_fault = True

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.type = error_type


def _timeout(exc: httpx2.TimeoutException) -> GatewayError:
    err = TimeoutError_(f"upstream timed out ({type(exc).__name__})")
    err.fallback = err.provider_fault = True
    return err


def _connection(exc: httpx2.HTTPError) -> GatewayError:
    err = ApiError(f"could not reach upstream ({type(exc).__name__})")
    err.fallback = err.provider_fault = True
    return err
