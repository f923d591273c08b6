"""The internal representation (IR): one request, response and stream vocabulary for every surface.

It knows no provider. Client surfaces decode into it and encode out of it; provider adapters
build upstream requests from it and parse upstream answers back into it. Structures are
msgspec Structs: typed, cheap to build, and never shared between requests.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Role = Literal["user", "assistant"]
StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]


# --- Content parts ----------------------------------------------------------------------------
class Citation(msgspec.Struct, omit_defaults=True):
    """A web source a span of the answer rests on (Anthropic's `web_search_result_location`)."""

    url: str
    title: str | None = None
    cited_text: str = ""


class Text(msgspec.Struct, tag="text", omit_defaults=True):
    text: str
    cache_control: dict[str, Any] | None = None
    # Sources of this text, on answers from a provider that searched the web.
    citations: list[Citation] | None = None


class Image(msgspec.Struct, tag="image", omit_defaults=True):
    """An image given inline (`data`, base64) or by `url`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class Document(msgspec.Struct, tag="document", omit_defaults=True):
    """A PDF (inline or by URL), a plain-text document, or a document made of blocks (`parts`)."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    text: str | None = None
    parts: list[Text | Image] | None = None
    title: str | None = None
    context: str | None = None


class ToolUse(msgspec.Struct, tag="tool_use", omit_defaults=True):
    id: str
    name: str
    input: dict[str, Any]
    # Provider state owed back with this call next turn (a Gemini thought signature, a
    # Responses reasoning item), set by the adapter that parsed it; never shown to clients
    # (gateway/tool_state.py keeps it).
    state: dict[str, Any] | None = None


class ToolResult(msgspec.Struct, tag="tool_result", omit_defaults=True):
    tool_use_id: str
    content: list[Text | Image | Document] = msgspec.field(default_factory=list)
    is_error: bool = False


class Thinking(msgspec.Struct, tag="thinking", omit_defaults=True):
    thinking: str
    signature: str = ""


class RedactedThinking(msgspec.Struct, tag="redacted_thinking"):
    data: str


class ServerToolUse(msgspec.Struct, tag="server_tool_use", omit_defaults=True):
    """A tool the provider ran itself (a web search): answers only, never sent upstream."""

    id: str
    name: str
    input: dict[str, Any]


class SearchHit(msgspec.Struct, omit_defaults=True):
    url: str
    title: str
    page_age: str | None = None


class WebSearchResult(msgspec.Struct, tag="web_search_tool_result", omit_defaults=True):
    """The pages a provider's web search found, answering the `ServerToolUse` of that id."""

    tool_use_id: str
    results: list[SearchHit] = msgspec.field(default_factory=list)


class CodeExecutionResult(msgspec.Struct, tag="code_execution_tool_result", omit_defaults=True):
    """What the provider's code interpreter printed, answering the `ServerToolUse` of that id."""

    tool_use_id: str
    stdout: str = ""
    stderr: str = ""
    return_code: int = 0


class WebFetchResult(msgspec.Struct, tag="web_fetch_tool_result", omit_defaults=True):
    """A page a provider fetched for the answer, answering the `ServerToolUse` of that id; the
    page's text when the provider gives it (Gemini's url_context does not), else empty."""

    tool_use_id: str
    url: str
    text: str = ""
    error_code: str | None = None  # Anthropic's web_fetch error code when the fetch failed


Part = (
    Text
    | Image
    | Document
    | ToolUse
    | ToolResult
    | Thinking
    | RedactedThinking
    | ServerToolUse
    | WebSearchResult
    | CodeExecutionResult
    | WebFetchResult
)


class Message(msgspec.Struct):
    role: Role
    content: list[Part]


# --- Tools and reasoning ----------------------------------------------------------------------
ServerToolKind = Literal["web_search", "web_fetch", "code_execution"]


class ServerTool(msgspec.Struct, omit_defaults=True):
    """An Anthropic server tool the provider may have an equivalent of (its own web search).

    `where` is the client's JSON path (`tools.2`), `type` its versioned type; the options are
    Anthropic's, validated by the decoder; an adapter maps, reports or refuses each of them.
    """

    kind: ServerToolKind
    type: str
    where: str
    max_uses: int | None = None
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None
    user_location: dict[str, Any] | None = None
    citations: bool | None = None  # web_fetch: `citations.enabled`
    max_content_tokens: int | None = None  # web_fetch


class ContextEdit(msgspec.Struct, omit_defaults=True):
    """One `context_management` edit (clear_tool_uses / clear_thinking), validated."""

    type: str
    trigger_input_tokens: int | None = None
    keep: int | None = None  # tool uses, or thinking turns; None with clear_thinking: "all"
    clear_at_least: int | None = None
    exclude_tools: list[str] = msgspec.field(default_factory=list)
    clear_tool_inputs: bool = False


class Tool(msgspec.Struct, omit_defaults=True):
    name: str
    input_schema: dict[str, Any]
    description: str | None = None


class ToolChoice(msgspec.Struct, omit_defaults=True):
    type: Literal["auto", "any", "tool", "none"] = "auto"
    name: str | None = None
    disable_parallel_tool_use: bool = False


class Reasoning(msgspec.Struct, omit_defaults=True):
    """What the client asked of the model's thinking; None on the request means 'not asked'."""

    enabled: bool = True
    budget_tokens: int | None = None
    effort: Literal["minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    adaptive: bool = False
    summary: bool = True
    # The client's field that asked for it, to name it when a route cannot honour it.
    asked_by: Literal["thinking", "output_config.effort", "reasoning"] = "thinking"


# --- Request ----------------------------------------------------------------------------------
class Request(msgspec.Struct, kw_only=True):
    model: str
    messages: list[Message]
    max_tokens: int
    system: list[Text] = msgspec.field(default_factory=list)
    tools: list[Tool] = msgspec.field(default_factory=list)
    server_tools: list[ServerTool] = msgspec.field(default_factory=list)
    tool_choice: ToolChoice | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] = msgspec.field(default_factory=list)
    stream: bool = False
    user_id: str | None = None
    reasoning: Reasoning | None = None
    # `output_config.format`: the JSON schema the answer's text must follow (structured output).
    output_schema: dict[str, Any] | None = None
    # Anthropic's `service_tier`: "auto" (priority capacity when available) or "standard_only".
    service_tier: Literal["auto", "standard_only"] | None = None
    provider_options: dict[str, Any] = msgspec.field(default_factory=dict)
    # The client's wire format and its body as received: an upstream speaking the same
    # surface can forward the body unchanged instead of rebuilding it from the IR.
    surface: str = ""
    raw: bytes = b""
    # `raw` decoded once, by core/client_json.py: a pass-through copies it, never re-decodes.
    raw_json: dict[str, Any] | None = None
    # Request headers that matter to some upstream (e.g. beta flags), lower-cased names.
    beta: list[str] = msgspec.field(default_factory=list)
    # Headers every upstream call carries: correlation ids (gateway/tracing.py).
    forward_headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Parts of the client's request only its own surface understands (server tools, unknown
    # block types), as JSON paths; a translating adapter must refuse or report them.
    unportable: list[str] = msgspec.field(default_factory=list)
    # `context_management.edits` the gateway applies itself on translated routes.
    context_edits: list[ContextEdit] = msgspec.field(default_factory=list)
    # Fields a translated route drops (compaction, server-tool options no translation reads):
    # reported or refused by the strictness rule.
    context_dropped: list[str] = msgspec.field(default_factory=list)
    # Stored provider state of the current turn's tool calls the client sent back without it:
    # tool_use id -> `ToolUse.state` (gateway/tool_state.py).
    tool_state: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    # The prompt cache key for providers that take one (gateway/prompt_cache.py): per tenant.
    cache_key: str | None = None


# --- Response ---------------------------------------------------------------------------------
class Usage(msgspec.Struct, omit_defaults=False):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    # Of `cache_creation_input_tokens`, those written for one hour (Anthropic's
    # `cache_creation.ephemeral_1h_input_tokens`, billed dearer); None: the provider did not
    # split them, all are 5-minute writes.
    cache_creation_1h_input_tokens: int | None = None
    reasoning_tokens: int = 0
    # Searches a provider ran for the answer (None: no search tool was at work).
    web_search_requests: int | None = None
    # Pages a provider fetched for the answer (None: no fetch tool was at work); not billed.
    web_fetch_requests: int | None = None
    # True when the figures are our estimate, not the provider's report.
    estimated: bool = False


# The capacity an answer was served from, in Anthropic's words (`usage.service_tier`).
ServiceTier = Literal["standard", "priority", "batch"]

# Anthropic's refusal categories (its `RefusalStopDetails.category`); None when none applies.
RefusalCategory = Literal["cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms"]


class StopDetails(msgspec.Struct):
    """Why a refusal happened, when the provider says: Anthropic's `stop_details`."""

    type: Literal["refusal"] = "refusal"
    category: RefusalCategory | None = None
    explanation: str | None = None


class AppliedEdit(msgspec.Struct):
    """What one context edit cleared (Anthropic's `context_management.applied_edits` item)."""

    type: str
    cleared_input_tokens: int = 0
    cleared_tool_uses: int | None = None
    cleared_thinking_turns: int | None = None


class Response(msgspec.Struct, kw_only=True):
    content: list[Part]
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None
    stop_details: StopDetails | None = None
    # None when the upstream did not say (Anthropic's `usage.service_tier` is then left out).
    service_tier: ServiceTier | None = None
    upstream_id: str | None = None
    # The context edits the gateway applied (translated routes), None when none was asked.
    applied_edits: list[AppliedEdit] | None = None
    # The upstream's body when it already speaks the client's surface (forwarded, not rebuilt).
    passthrough: dict[str, Any] | None = None


# --- Stream events ----------------------------------------------------------------------------
# Adapters yield these; a client surface's stream encoder turns them into its wire events.
# Block indices are the encoder's business: adapters only say which block kind opens.
class StreamStart(msgspec.Struct, tag="start"):
    usage: Usage | None = None
    upstream_id: str | None = None
    service_tier: ServiceTier | None = None  # when the upstream says it this early


class BlockStart(msgspec.Struct, tag="block_start"):
    part: (
        Text
        | ToolUse
        | Thinking
        | RedactedThinking
        | ServerToolUse
        | WebSearchResult
        | CodeExecutionResult
        | WebFetchResult
    )


class CitationDelta(msgspec.Struct, tag="citations_delta"):
    """A source of the open text block, known once the provider says what it cited."""

    citation: Citation


class TextDelta(msgspec.Struct, tag="text_delta"):
    text: str


class ThinkingDelta(msgspec.Struct, tag="thinking_delta"):
    thinking: str


class SignatureDelta(msgspec.Struct, tag="signature_delta"):
    signature: str


class ToolInputDelta(msgspec.Struct, tag="input_json_delta"):
    partial_json: str


class BlockStop(msgspec.Struct, tag="block_stop"):
    pass


class StreamEnd(msgspec.Struct, tag="end"):
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None
    stop_details: StopDetails | None = None
    service_tier: ServiceTier | None = None
    applied_edits: list[AppliedEdit] | None = None


class StreamError(msgspec.Struct, tag="error", omit_defaults=True):
    error_type: str
    message: str
    # True when the gateway could not read the upstream's stream (not an error it reported).
    unreadable: bool = False


class Passthrough(msgspec.Struct, tag="passthrough"):
    """One event already encoded in the client's surface, from an upstream that speaks it.

    `event` is its name; `usage`/`stop_reason` are what the adapter read on the side, so the
    gateway can account for a stream it forwards byte for byte.
    """

    data: bytes
    event: str
    usage: Usage | None = None
    stop_reason: str | None = None
    # Set on `message_start`: the decoded event, re-encoded by the gateway with its own
    # message id and the client's model name.
    payload: dict[str, Any] | None = None


StreamEvent = (
    StreamStart
    | BlockStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | ToolInputDelta
    | CitationDelta
    | BlockStop
    | StreamEnd
    | StreamError
    | Passthrough
)
