"""The accepted `POST /v1/chat/completions` body: every field of OpenAI's request (reference 2.2)
that a client may send, typed, plus the gateway's own fields (protocols/surface.py).

Unknown top-level fields are accepted here: `client_decode.py` lists them as dropped, and the
strictness rule reports or refuses them. Message content parts stay loose dicts at this level,
as in the Anthropic schema: part types evolve, and `client_messages.py` checks each known one
with a message naming its JSON path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocols.surface import GatewayFieldsIn, ReasoningIn

# Token counts fit 32 bits, as on the Anthropic surface (admission's cost arithmetic).
INT32_MAX = 2**31 - 1
Tokens = Annotated[int, Meta(ge=1, le=INT32_MAX)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]


class FunctionCallIn(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    # A JSON-encoded object, as OpenAI requires (decoded and checked in client_messages.py).
    arguments: str


class ToolCallIn(msgspec.Struct):
    id: Annotated[str, Meta(min_length=1, max_length=256)]
    function: FunctionCallIn
    type: Literal["function"] = "function"


class MessageIn(msgspec.Struct):
    """One message, whatever its role: the role decides which fields mean something
    (reference 2.3); `function` (deprecated) is known only to be refused by name."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Any] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    # Reasoning sent back by clients of servers that return it (DeepSeek, vLLM, Ollama).
    reasoning_content: str | None = None
    function_call: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None


class FunctionIn(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(msgspec.Struct):
    type: str
    function: FunctionIn | None = None
    custom: dict[str, Any] | None = None


class NamedFunctionIn(msgspec.Struct):
    name: str


class ToolChoiceIn(msgspec.Struct):
    type: Literal["function", "allowed_tools", "custom"]
    function: NamedFunctionIn | None = None
    allowed_tools: dict[str, Any] | None = None
    custom: dict[str, Any] | None = None


class JsonSchemaIn(msgspec.Struct):
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormatIn(msgspec.Struct):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaIn | None = None


class StreamOptionsIn(msgspec.Struct):
    include_usage: bool = False
    include_obfuscation: bool | None = None


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
ServiceTierIn = Literal["auto", "default", "flex", "scale", "priority", "fast"]


class ChatBody(GatewayFieldsIn):
    model: Annotated[str, Meta(min_length=1)]
    messages: Annotated[list[MessageIn], Meta(min_length=1)]
    max_completion_tokens: Tokens | None = None
    max_tokens: Tokens | None = None  # deprecated by OpenAI; max_completion_tokens wins
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    stop: str | Annotated[list[str], Meta(max_length=4)] | None = None
    stream: bool | None = None
    stream_options: StreamOptionsIn | None = None
    # One choice is returned: more is reported or refused per strictness (NO_EFFECT).
    n: Annotated[int, Meta(ge=1, le=128)] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Effort | None = None
    response_format: ResponseFormatIn | None = None
    user: Annotated[str, Meta(max_length=256)] | None = None
    safety_identifier: Annotated[str, Meta(max_length=64)] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: ServiceTierIn | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    # Read only to be reported as dropped: no route honours them (reference 2.2, last rows).
    seed: int | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Meta(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    prediction: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    # Deprecated predecessors of tools/tool_choice: refused by name in client_decode.py.
    functions: list[Any] | None = None
    function_call: Any = None
    # Gateway extras (protocols/surface.py GATEWAY_FIELDS).
    reasoning: ReasoningIn | None = None


KNOWN_FIELDS = frozenset(ChatBody.__struct_fields__)

# Fields that do nothing on any route yet: listed in `Decoded.dropped` when set to a value that
# asks for something (OpenAI's default value, given explicitly, asks for nothing).
NO_EFFECT: dict[str, Any] = {
    "n": 1,
    "seed": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logit_bias": None,
    "logprobs": False,
    "top_logprobs": None,
    "metadata": None,
    "store": False,
    "prediction": None,
    "audio": None,
    "web_search_options": None,
}
