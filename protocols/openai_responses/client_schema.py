"""The accepted `POST /v1/responses` body (reference 3.2): one definition for validation.

OpenAI's own fields plus the gateway's (`provider_options`, `usage`, `meta`,
`echo_upstream_request`, `debug`, `provider`; `reasoning` is Responses' own object here, the
gateway reads it as its reasoning ask). Unknown top-level fields are accepted and listed by the
decoder (`Decoded.dropped`). Input items and tools stay loose dicts at this level: their types
evolve quickly, and `client_items.py` / `client_decode.py` give each known type its own check
with an error naming its JSON path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocols.surface import GatewayFieldsIn

# Token counts fit 32 bits (the cost arithmetic of admission), as on the Anthropic surface.
INT32_MAX = 2**31 - 1
# `max_output_tokens` is optional in the Responses API (the model's own limit applies); the IR
# needs a number, and a gateway must bound what one request may cost: this one when absent.
DEFAULT_MAX_OUTPUT_TOKENS = 4096

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
Summary = Literal["auto", "concise", "detailed"]


class ReasoningIn(msgspec.Struct):
    """Responses' `reasoning` (3.2); `generate_summary` is the deprecated name of `summary`."""

    effort: Effort | None = None
    summary: Summary | None = None
    generate_summary: Summary | None = None


class TextFormatText(msgspec.Struct, tag="text", tag_field="type"):
    pass


class TextFormatJsonObject(msgspec.Struct, tag="json_object", tag_field="type"):
    pass


class TextFormatJsonSchema(msgspec.Struct, tag="json_schema", tag_field="type"):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


class TextIn(msgspec.Struct):
    format: TextFormatText | TextFormatJsonObject | TextFormatJsonSchema | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponsesBody(GatewayFieldsIn):
    model: Annotated[str, Meta(min_length=1)]
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: Annotated[int, Meta(ge=1, le=INT32_MAX)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningIn | None = None
    text: TextIn | None = None
    include: list[str] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    prompt: dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: Annotated[str, Meta(max_length=1024)] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    metadata: dict[str, str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    max_tool_calls: Annotated[int, Meta(ge=1, le=INT32_MAX)] | None = None
    # Gateway extras (protocols/surface.py), the same on every surface.


KNOWN_FIELDS = frozenset(ResponsesBody.__struct_fields__)
