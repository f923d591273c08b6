"""The client-surface contract: what a wire protocol implements to serve clients.

A surface is the protocol a client speaks to the gateway (Anthropic Messages, OpenAI Chat
Completions, OpenAI Responses). Its folder under protocols/ decodes the client's body into the
IR plus the gateway's own asks (`Ask`), encodes the IR answer and stream back, and shapes
errors and rate-limit headers; gateway/api serves every surface with one consumer, and
gateway/pipeline.py never knows which surface it serves. Pure: no Django, no network.

Adding a surface: a folder with a `surface.py` whose `SURFACE` implements `Surface`, and a row
in gateway/api/routing.py's table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol

import msgspec
from msgspec import Meta

from core import ir
from core.errors import GatewayError

# --- The gateway's own request fields, the same on every surface ------------------------------
# (reference: seed-gateway-messages-endpoint.txt). OpenAI SDK clients send them in `extra_body`.
GATEWAY_FIELDS = frozenset(
    {"reasoning", "provider_options", "usage", "meta", "echo_upstream_request", "debug", "provider"}
)


class ReasoningIn(msgspec.Struct):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: str | None = None
    enabled: bool | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=2**31 - 1)] | None = None


class ProviderPrefsIn(msgspec.Struct):
    order: list[str] | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    include_alpha: bool | None = None
    allow_fallbacks: bool | None = None
    sort: Literal["price", "latency"] | None = None


class DebugIn(msgspec.Struct):
    enabled: bool = False
    return_upstream_request: bool = False
    return_upstream_response: bool = False
    trace: bool = False
    trace_level: Literal["summary", "full"] = "summary"


class Ask(msgspec.Struct, kw_only=True):
    """What the client asked of the gateway itself, whatever surface it speaks."""

    model: str  # the model id as the client typed it (resolved by the pipeline)
    stream: bool = False
    provider: ProviderPrefsIn | None = None
    usage: bool = False
    meta: bool = False
    echo_upstream_request: bool = False
    debug: DebugIn | None = None
    # A stream's closing usage report, when the surface sends one only on request (OpenAI
    # Chat's `stream_options.include_usage`: a chunk with no choices, which naive clients
    # indexing `choices[0]` would trip on).
    stream_usage: bool = False

    def wants_extras(self) -> bool:
        return (
            self.usage
            or self.meta
            or self.echo_upstream_request
            or (self.debug is not None and self.debug.enabled)
        )


class GatewayFieldsIn(msgspec.Struct, kw_only=True):
    """The gateway's own fields in a client's body, the same on every surface (a surface's
    schema inherits them; `reasoning` is each schema's own, Responses having its own
    `reasoning`). Never sent upstream."""

    provider_options: dict[str, dict[str, Any]] | None = None
    usage: bool = False
    meta: bool = False
    echo_upstream_request: bool = False
    debug: DebugIn | None = None
    provider: ProviderPrefsIn | None = None

    def ask(self, *, model: str, stream: bool, **more: Any) -> Ask:
        """The gateway's asks of this body."""
        return Ask(
            model=model,
            stream=stream,
            provider=self.provider,
            usage=self.usage,
            meta=self.meta,
            echo_upstream_request=self.echo_upstream_request,
            debug=self.debug,
            **more,
        )


class Decoded(msgspec.Struct, kw_only=True):
    """A client's request, decoded: the IR (its `surface`, `raw` and `raw_json` set by the
    surface), the gateway's asks, and what routes speaking another protocol would drop."""

    request: ir.Request
    ask: Ask
    # JSON paths of fields a translated route drops (unknown fields, protocol-only options):
    # reported or refused per strictness (gateway/strictness.py). Computed by the surface.
    dropped: list[str] = msgspec.field(default_factory=list)
    # Fields the gateway never forwards anywhere (they would steer the operator's account).
    withheld: list[str] = msgspec.field(default_factory=list)


# Response extras, given to encoders as a callable: usage -> (fields merged into the answer's
# usage object, top-level fields). None when the client asked for none.
Extras = Callable[[ir.Usage], tuple[dict[str, Any], dict[str, Any]]]


class StreamWriter(Protocol):
    """IR stream events -> the surface's stream bytes. It accumulates what the gateway
    accounts for (usage, stop reason, characters of output) whatever happens to the stream."""

    finished: bool  # the terminal event (end or error) was written
    error_type: str | None  # the type of the error event written, if one was
    usage: ir.Usage
    stop_reason: str | None
    output_chars: int
    input_estimate: int
    extras: Extras | None

    def feed(self, event: ir.StreamEvent) -> bytes: ...

    def error(self, error_type: str, message: str) -> bytes:
        """A failure after the stream started, in the surface's words; ends the stream."""
        ...

    def keepalive(self) -> bytes:
        """Bytes that keep an idle stream open without meaning anything to the client."""
        ...


class Surface(Protocol):
    # The protocol's name; an adapter whose `protocol` is the same may forward the body.
    name: str
    # The endpoint's label in usage records and /metrics ("messages", "chat_completions").
    endpoint: str
    # The header the surface's SDKs read the request id from (`request-id` is always sent).
    request_id_header: bytes

    def new_id(self) -> str:
        """A fresh id for an answer, in the surface's format (`msg_...`, `chatcmpl-...`)."""
        ...

    def decode(self, raw: bytes, wire: dict[str, Any], headers: dict[bytes, bytes]) -> Decoded:
        """The client's body (raw bytes and its JSON object) -> IR; InvalidRequest otherwise.
        `headers` are the request's, lower-cased byte names (betas, strictness...)."""
        ...

    def dropped(self, decoded: Decoded) -> list[str]:
        """What a route that does not take the client's body as sent would drop (asked only
        when such a route is planned): `decoded.dropped`, or computed late when costly."""
        ...

    def response(
        self,
        response: ir.Response,
        *,
        response_id: str,
        model: str,
        extras: Extras | None,
        decoded: Decoded,
    ) -> dict[str, Any]:
        """The IR answer as the surface's JSON object (`model`: what the client typed). A
        Responses object repeats the request's instructions, tools and sampling, and returns
        encrypted reasoning only when its `include` asks: `decoded` is the request."""
        ...

    def stream_writer(
        self, *, response_id: str, model: str, input_estimate: int, decoded: Decoded
    ) -> StreamWriter:
        """A writer for one stream of the request `decoded` (what the client asked of the
        stream itself: `ask.stream_usage`; what the answer repeats of the request)."""
        ...

    def error(self, err: GatewayError, request_id: str) -> tuple[int, bytes]:
        """The HTTP status and body a client of this surface gets for `err`."""
        ...

    def limit_headers(self, limits: list[tuple[str, int, int, str]]) -> list[tuple[bytes, bytes]]:
        """Rate-limit headers from (kind "requests"|"tokens", limit, remaining, reset RFC 3339)."""
        ...
