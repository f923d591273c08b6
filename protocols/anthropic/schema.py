"""The accepted `POST /v1/messages` body: one definition for validation and documentation.

Anthropic's own fields plus the gateway extras (`reasoning`, `provider_options`, `usage`, `meta`,
`echo_upstream_request`, `debug`, `provider`). Unknown top-level fields are accepted here and
handled by one rule downstream (forwarded to Anthropic, judged by strictness elsewhere).
Content blocks stay loose dicts at this level: block types evolve quickly, and `decode.py`
gives each known type its own check with Anthropic's error wording.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

# The gateway's own fields (never sent upstream), the same on every surface.
from protocols.surface import GatewayFieldsIn, ReasoningIn

# Token counts fit 32 bits: a 30-digit max_tokens would overflow the cost arithmetic of
# admission (a model's own output limit, when it has one, is checked in the pipeline).
INT32_MAX = 2**31 - 1

# Fields of the Messages API left out of the schema on purpose: the gateway does not read them,
# so they follow the rule for unknown fields (passed as sent to Anthropic routes, reported or
# refused on translated ones). Listed so the README's field table is checked against them.
PASSTHROUGH_FIELDS = frozenset(
    {
        "speed",
        "inference_geo",
        "diagnostics",
        "cache_control",
        "container",
        "context_management",
        "mcp_servers",
        "betas",
    }
)

# SDK fields it sends as headers (`anthropic-workspace-id`, `anthropic-user-profile-id`): they
# choose the workspace or user profile of the upstream credential, which is the operator's, so
# no tenant may set them. Never forwarded, in a header or the body; reported on every route.
WITHHELD_FIELDS = MappingProxyType(
    {"workspace_id": b"anthropic-workspace-id", "user_profile_id": b"anthropic-user-profile-id"}
)


class MessageIn(msgspec.Struct):
    # "system" turns (newer API, sent by Claude Code) carry system text mid-conversation.
    role: Literal["user", "assistant", "system"]
    content: str | list[dict[str, Any]]


class SystemBlockIn(msgspec.Struct):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None
    citations: Any = None


class ToolIn(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    type: str | None = None
    cache_control: dict[str, Any] | None = None
    strict: bool | None = None
    # Server tools' options (web_search_*, web_fetch_*), checked in server_tools.py.
    max_uses: Annotated[int, Meta(ge=1, le=INT32_MAX)] | None = None
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None
    user_location: dict[str, Any] | None = None
    citations: dict[str, Any] | None = None
    max_content_tokens: Annotated[int, Meta(ge=1, le=INT32_MAX)] | None = None


class ToolChoiceIn(msgspec.Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class ThinkingIn(msgspec.Struct):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Annotated[int, Meta(ge=0, le=INT32_MAX)] | None = None
    display: Literal["summarized", "omitted"] | None = None


class MetadataIn(msgspec.Struct):
    user_id: str | None = None


class JsonSchemaFormatIn(msgspec.Struct):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class OutputConfigIn(msgspec.Struct):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: JsonSchemaFormatIn | None = None


Probability = Annotated[float, Meta(ge=0, le=1)]


class MessagesBody(GatewayFieldsIn):
    model: Annotated[str, Meta(min_length=1)]
    max_tokens: Annotated[int, Meta(ge=1, le=INT32_MAX)]  # and the model's limit (pipeline)
    messages: Annotated[list[MessageIn], Meta(min_length=1)]
    system: str | list[SystemBlockIn] | None = None
    temperature: Probability | None = None
    top_p: Probability | None = None
    top_k: Annotated[int, Meta(ge=1, le=INT32_MAX)] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    metadata: MetadataIn | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    thinking: ThinkingIn | None = None
    output_config: OutputConfigIn | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    # Edits the gateway applies on translated routes; checked in server_tools.py.
    context_management: dict[str, Any] | None = None
    betas: list[str] | None = None  # merged with `anthropic-beta` (protocols/anthropic/betas.py)
    # Gateway extras.
    reasoning: ReasoningIn | None = None


class CountTokensBody(msgspec.Struct):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[MessageIn], Meta(min_length=1)]
    system: str | list[SystemBlockIn] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    thinking: ThinkingIn | None = None
    output_config: OutputConfigIn | None = None
    betas: list[str] | None = None


KNOWN_FIELDS = frozenset(MessagesBody.__struct_fields__)
