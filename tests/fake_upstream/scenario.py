"""One reply of the fake upstream, described without any provider's wire format.

A `Scenario` is what a test scripts (blocks, stop reason, usage, fault settings); a `Prompt` is
what the fake reads from a request; `build_reply` turns both into a `Reply` with every value
filled in, which each surface module renders to its own JSON and SSE.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]

ServiceTier = Literal["standard", "priority", "flex"]

REASONING_SUFFIX = "-reasoning"
MAX_ECHO_CHARS = 200


class TextBlock(
    msgspec.Struct, tag="text", tag_field="type", frozen=True, forbid_unknown_fields=True
):
    text: str
    # Urls of pages a web search of this reply found that the whole text cites.
    cites: list[str] = []


class SearchPage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str
    title: str


class WebSearchBlock(
    msgspec.Struct, tag="web_search", tag_field="type", frozen=True, forbid_unknown_fields=True
):
    """A search the provider ran (rendered as each provider shows one: a Responses
    `web_search_call`, Gemini `groundingMetadata`; Chat search models show only citations)."""

    query: str
    results: list[SearchPage] = []


class ToolUseBlock(
    msgspec.Struct, tag="tool_use", tag_field="type", frozen=True, forbid_unknown_fields=True
):
    name: str
    input: dict[str, Any] = {}
    id: str | None = None


class ThinkingBlock(
    msgspec.Struct, tag="thinking", tag_field="type", frozen=True, forbid_unknown_fields=True
):
    thinking: str
    signature: str | None = None


class CodeBlock(
    msgspec.Struct, tag="code_execution", tag_field="type", frozen=True, forbid_unknown_fields=True
):
    """Python the provider's interpreter ran (a Responses `code_interpreter_call`, Gemini
    `executableCode` and `codeExecutionResult` parts), and what it printed."""

    code: str
    output: str = ""
    failed: bool = False


class WebFetchBlock(
    msgspec.Struct, tag="web_fetch", tag_field="type", frozen=True, forbid_unknown_fields=True
):
    """A page the provider fetched (Gemini `urlContextMetadata`, Anthropic's web_fetch blocks;
    OpenAI Chat and Responses have no fetch tool and show nothing). `failed`: not retrieved."""

    url: str
    failed: bool = False


Block = TextBlock | ToolUseBlock | ThinkingBlock | WebSearchBlock | CodeBlock | WebFetchBlock


class ScriptedUsage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Anthropic-style usage; a field left out is estimated from the request and the reply."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0  # all cache writes, 5-minute and 1-hour
    cache_creation_1h_input_tokens: int = 0  # of those, the 1-hour writes (Anthropic)


class StopDetails(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Why a `refusal` happened, in Anthropic's terms; each surface renders it its own way (an
    OpenAI refusal text, a Gemini safety block, Anthropic's `stop_details`)."""

    category: str | None = None
    explanation: str | None = None


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One scripted reply. `blocks: None` means "the default reply derived from the request"."""

    blocks: list[Block] | None = None
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    stop_details: StopDetails | None = None  # with stop_reason "refusal"
    usage: ScriptedUsage | None = None
    status: int = 200  # >= 400: an error in the surface's shape, or `error_body` verbatim
    error_body: Any = None
    headers: dict[str, str] = {}  # extra response headers, e.g. retry-after
    delay_first_byte: float = 0.0  # seconds before the response headers
    chunk_delay: float = 0.0  # seconds between chunks (a JSON body is one chunk)
    silent_after_chunks: int | None = None  # pause after N chunks for `hang_seconds`, then resume
    hang_seconds: float = 30.0
    cut_after_chunks: int | None = None  # close the socket after N chunks, no terminator
    text_chunk_size: int = 16  # characters per text/thinking delta and argument fragment
    # The capacity that serves the reply, rendered in each surface's words (OpenAI `default`,
    # `priority`, `flex`); None: the tier the request asked for (`standard` when it asked none).
    service_tier: ServiceTier | None = None
    refuse_connection: bool = False  # close the socket without any response

    @property
    def is_error(self) -> bool:
        return self.error_body is not None or self.status >= 400

    @property
    def has_faults(self) -> bool:
        """Whether delivery needs the slow path (timers, disconnect watching, dropped sockets)."""
        return bool(
            self.refuse_connection
            or self.delay_first_byte
            or self.chunk_delay
            or self.silent_after_chunks is not None
            or self.cut_after_chunks is not None
        )


DEFAULT_SCENARIO = Scenario()
# Benchmark models: `bench-<N>tok` replies with N one-token chunks ("tok "), and
# `bench-<N>tok-<D>ms` waits D milliseconds between chunks (slow streams).
_STANDING = re.compile(r"bench-(\d+)tok(?:-(\d+)ms)?$")


@functools.lru_cache(maxsize=64)
def standing_scenario(model: str) -> Scenario:
    """The reply for a model nobody scripted: the default, or a benchmark shape by name."""
    match = _STANDING.search(model)
    if match is None:
        return DEFAULT_SCENARIO
    tokens, delay_ms = int(match.group(1)), int(match.group(2) or 0)
    return Scenario(
        blocks=[TextBlock(text="tok " * tokens)], text_chunk_size=4, chunk_delay=delay_ms / 1000
    )


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the fake needs from a request, read by each surface's `read_prompt`."""

    last_user_text: str = ""
    tools: tuple[ToolSpec, ...] = ()
    forced_tool: str | None = None  # the tool the client forces (by name), None when not forced
    include_usage: bool = False  # OpenAI Chat `stream_options.include_usage`
    cached_tokens: int = 0  # prompt tokens served from the provider's prompt cache

    service_tier: ServiceTier = "standard"  # the tier asked for, where the surface has tiers
    # The JSON schema the reply must follow (structured output): the default reply is then a
    # JSON object holding a placeholder for each required property.
    output_schema: dict[str, Any] | None = None


# OpenAI's automatic prompt caching: prefixes of at least 1,024 tokens, in steps of 128.
CACHE_MIN_TOKENS = 1024
CACHE_STEP_TOKENS = 128
MAX_CACHE_ENTRIES = 4096


class PromptCache:
    """The prompt cache of a provider that caches on its own (OpenAI): a prefix is served from
    the cache when the same `prompt_cache_key` sent the same prefix before. Only the key and a
    hash of the prefix are kept, bounded."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, bytes], int] = {}

    def read(self, key: str | None, prefix: bytes) -> int:
        """Tokens of `prefix` served from the cache (0: a miss, now remembered)."""
        tokens = estimate_tokens(len(prefix))
        if not key or tokens < CACHE_MIN_TOKENS:
            return 0
        entry = (key, hashlib.sha256(prefix).digest())
        if entry in self.seen:
            return self.seen[entry]
        if len(self.seen) >= MAX_CACHE_ENTRIES:
            self.seen.clear()
        self.seen[entry] = tokens - tokens % CACHE_STEP_TOKENS
        return 0

    def clear(self) -> None:
        self.seen.clear()


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    thinking_tokens: int  # part of output_tokens
    cache_creation_1h_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply ready to render: content, stop reason, usage and per-request ids all decided."""

    blocks: tuple[Block, ...]
    stop_reason: StopReason
    stop_sequence: str | None
    stop_details: StopDetails | None
    usage: Usage
    model: str
    reply_id: str
    created: int
    chunk_size: int
    include_usage: bool
    service_tier: ServiceTier

    def tool_id(self, index: int, block: ToolUseBlock, prefix: str) -> str:
        return block.id or f"{prefix}{self.reply_id[:16]}{index}"

    def signature(self, index: int, block: ThinkingBlock) -> str:
        return block.signature or f"ZmFrZS1zaWc{self.reply_id}{index}"

    def page_title(self, url: str) -> str:
        """The title a search of this reply gave the page at `url`."""
        pages = (p for b in self.blocks if isinstance(b, WebSearchBlock) for p in b.results)
        return next((p.title for p in pages if p.url == url), url)


def last_user_text(messages: Any, text_type: str) -> str:
    """The last user turn's text, for OpenAI-shaped turns (`text_type`: Chat's `text` or
    Responses' `input_text`); a bare string is itself the user's text."""
    if isinstance(messages, str):
        return messages
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            parts = content if isinstance(content, list) else []
            return "".join(p.get("text", "") for p in parts if p.get("type") == text_type)
    return ""


def estimate_tokens(chars: int) -> int:
    """The fake's tokenizer: about four characters a token, at least one."""
    return max(1, -(-chars // 4))


def build_reply(scenario: Scenario, prompt: Prompt, *, model: str, body_size: int) -> Reply:
    blocks = (
        tuple(scenario.blocks) if scenario.blocks is not None else default_blocks(prompt, model)
    )
    has_tool = any(isinstance(block, ToolUseBlock) for block in blocks)
    return Reply(
        blocks=blocks,
        stop_reason=scenario.stop_reason or ("tool_use" if has_tool else "end_turn"),
        stop_sequence=scenario.stop_sequence,
        stop_details=scenario.stop_details,
        usage=_usage(scenario.usage or ScriptedUsage(), blocks, body_size, prompt.cached_tokens),
        model=model,
        reply_id=secrets.token_hex(12),
        created=int(time.time()),
        chunk_size=max(1, scenario.text_chunk_size),
        include_usage=prompt.include_usage,
        service_tier=scenario.service_tier or prompt.service_tier,
    )


def default_blocks(prompt: Prompt, model: str) -> tuple[Block, ...]:
    """The unscripted reply: optional thinking, then a forced tool call or an echo of the user."""
    text = prompt.last_user_text[:MAX_ECHO_CHARS]
    blocks: list[Block] = []
    if model.endswith(REASONING_SUFFIX):
        blocks.append(ThinkingBlock(thinking="Thinking about: " + text))
    tool = _forced_tool(prompt)
    if tool is None and prompt.output_schema is not None:
        answer = required_input(prompt.output_schema)
        blocks.append(TextBlock(text=msgspec.json.encode(answer).decode()))
    elif tool is None:
        blocks.append(TextBlock(text="echo: " + text))
    else:
        blocks.append(ToolUseBlock(name=tool.name, input=required_input(tool.schema)))
    return tuple(blocks)


def required_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool input holding a placeholder for each required property, typed by the schema."""
    properties = schema.get("properties") or {}
    return {name: _placeholder(properties.get(name) or {}) for name in schema.get("required") or []}


def _placeholder(prop: dict[str, Any]) -> Any:
    kind = prop.get("type", "string")
    if isinstance(kind, list):  # e.g. ["string", "null"]
        kind = next((k for k in kind if k != "null"), "string")
    kind = str(kind).lower()  # Gemini schemas use upper-case types
    if kind == "object":
        return {}
    if kind == "array":
        return []
    return {"number": 1, "integer": 1, "boolean": True}.get(kind, "x")


def _forced_tool(prompt: Prompt) -> ToolSpec | None:
    if prompt.forced_tool is None or not prompt.tools:
        return None
    named = (tool for tool in prompt.tools if tool.name == prompt.forced_tool)
    return next(named, prompt.tools[0])


def _usage(
    scripted: ScriptedUsage, blocks: tuple[Block, ...], body_size: int, cached: int = 0
) -> Usage:
    """The scripted usage, the rest estimated; a prompt cache hit (`cached`) is read from the
    cache rather than counted as input, unless the script says otherwise."""
    thinking_chars = sum(len(b.thinking) for b in blocks if isinstance(b, ThinkingBlock))
    output = scripted.output_tokens
    if output is None:
        output = estimate_tokens(sum(_reply_chars(block) for block in blocks))
    cache_read = scripted.cache_read_input_tokens or cached
    input_tokens = scripted.input_tokens
    if input_tokens is None:
        input_tokens = max(1, estimate_tokens(body_size) - (cached if cache_read else 0))
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=scripted.cache_creation_input_tokens,
        cache_creation_1h_input_tokens=min(
            scripted.cache_creation_1h_input_tokens, scripted.cache_creation_input_tokens
        ),
        thinking_tokens=min(output, estimate_tokens(thinking_chars)) if thinking_chars else 0,
    )


def _reply_chars(block: Block) -> int:
    if isinstance(block, TextBlock):
        return len(block.text)
    if isinstance(block, ThinkingBlock):
        return len(block.thinking)
    if isinstance(block, WebSearchBlock | WebFetchBlock):
        return 0
    if isinstance(block, CodeBlock):
        return len(block.code)
    return len(msgspec.json.encode(block.input))
