"""OpenAI Chat Completions upstream: OpenAI itself and OpenAI-compatible servers (vLLM, Ollama…).

The request body is built in `openai_chat_request.py`; this module owns the HTTP details and
maps answers back into the IR: a completion into a response (reference 5.8-5.10) and a chunk
stream into IR stream events (5.11.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from core import ids, ir
from core.target import Target
from core.tokens import estimate_input_tokens, estimate_output_tokens
from protocols import web_search
from protocols.envelope import seal
from protocols.openai_chat.request import (
    CHAT_TOOL_ID,
    NEAREST_EFFORT,
    chat_body,
    is_reasoning_model,
    unsupported_search,
)
from protocols.openai_chat.request import OPTIONS as REQUEST_OPTIONS
from protocols.stream import JsonChunks
from providers.adapters.base import HttpAdapter, UpstreamRequest

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def thinking_signature(target: Target) -> str:
    """The signature carried by thinking blocks from this upstream (reference 5.12.3).

    Chat has no reasoning state to replay: the envelope only gives clients a non-empty,
    gateway-signed signature.
    """
    return seal("openai-chat", target.upstream_model, {}, target.signing_key)


def wants_thinking(request: ir.Request) -> bool:
    """Reasoning text is shown only to clients that asked for it (reference 5.7)."""
    reasoning = request.reasoning
    return reasoning is not None and reasoning.enabled and reasoning.summary


# --- Shared by responses and streams ----------------------------------------------------------
def response_tool_id(upstream_id: Any) -> str:
    """Reference 5.12.1: keep the upstream's id when every surface accepts it, else mint one."""
    if isinstance(upstream_id, str) and CHAT_TOOL_ID.fullmatch(upstream_id):
        return upstream_id
    return ids.tool_use_id()


def tool_input(arguments: Any) -> dict[str, Any]:
    """Decoded `function.arguments`; a broken string (often cut by `length`) is kept raw."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = _decode.decode(arguments)
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return _encode.encode(arguments).decode() if isinstance(arguments, dict) else ""


def stop_reason(finish: Any, saw_tool: bool, saw_refusal: bool) -> ir.StopReason:
    """Reference 5.9.1; some servers say `stop` although the message calls tools."""
    if finish == "length":
        return "max_tokens"
    if finish == "content_filter" or saw_refusal:
        return "refusal"
    if finish in ("tool_calls", "function_call") or saw_tool:
        return "tool_use"
    return "end_turn"


# OpenAI's error `code` or `type` values that blame the gateway's own key, account or region,
# not the request (any 401 does too); see core/errors.py VERDICTS.
ERROR_KINDS = {
    "invalid_api_key": "credential",
    "unsupported_country_region_territory": "credential",
    "insufficient_quota": "account",
}


def error_codes(body: Any) -> list[Any]:
    """`{"error": {"message", "type", "param", "code"}}` (reference 2.7): code, then type."""
    error = body.get("error") if isinstance(body, dict) else None
    return [error.get("code"), error.get("type")] if isinstance(error, dict) else []


# A refusal's explanation keeps at most this much of the refusal text the model wrote.
EXPLANATION_CHARS = 1000
# Azure OpenAI names the filters that fired (`content_filter_results`): harms map to Anthropic's
# `general_harms`; protected material or a jailbreak to no named category.
HARM_FILTERS = frozenset({"hate", "self_harm", "sexual", "violence", "profanity"})
_FILTER_NAME = re.compile(r"[a-z_]{1,40}")


def refusal_details(text: str, filters: Any = None) -> ir.StopDetails:
    """A refusal's `stop_details`: OpenAI says why only in the refusal text the model wrote
    (`message.refusal`, a Responses `refusal` part); Azure adds the filters that fired."""
    fired = [
        name
        for name, result in (filters.items() if isinstance(filters, dict) else ())
        if _FILTER_NAME.fullmatch(str(name)) and isinstance(result, dict) and result.get("filtered")
    ][:8]
    explanation = text[:EXPLANATION_CHARS] or (
        "content filter: " + ", ".join(fired) if fired else None
    )
    category = "general_harms" if HARM_FILTERS.intersection(fired) else None
    return ir.StopDetails(category=category, explanation=explanation)


def _count(data: Any, key: str) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) else 0


@dataclass(frozen=True, slots=True)
class UsageNames:
    """Where an OpenAI surface puts its usage figures (Chat and Responses name them apart)."""

    prompt: str
    completion: str
    prompt_details: str
    completion_details: str


CHAT_USAGE = UsageNames(
    "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"
)
RESPONSES_USAGE = UsageNames(
    "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"
)


def usage_from(data: Any, names: UsageNames = CHAT_USAGE) -> ir.Usage | None:
    """Reference 5.10: OpenAI's prompt count includes cached and cache-write tokens; ours not."""
    if not isinstance(data, dict):
        return None
    details = data.get(names.prompt_details)
    cached = _count(details, "cached_tokens")
    written = _count(details, "cache_write_tokens")
    return ir.Usage(
        input_tokens=max(0, _count(data, names.prompt) - cached - written),
        output_tokens=_count(data, names.completion),
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=written,
        reasoning_tokens=_count(data.get(names.completion_details), "reasoning_tokens"),
    )


def _text_of(content: Any) -> str:
    """`content` is a string, or on some servers an array of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _reasoning_of(source: dict[str, Any]) -> str:
    """Reasoning text, a non-standard extension (DeepSeek, vLLM, Ollama, OpenRouter)."""
    value = source.get("reasoning_content") or source.get("reasoning")
    return value if isinstance(value, str) else ""


def _first_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    for choice in body.get("choices") or []:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


# --- Non-streaming ----------------------------------------------------------------------------
def _tool_use(call: dict[str, Any]) -> ir.ToolUse:
    function = call.get("function") or {}
    return ir.ToolUse(
        id=response_tool_id(call.get("id")),
        name=str(function.get("name") or ""),
        input=tool_input(function.get("arguments")),
    )


def service_tier(value: Any) -> ir.ServiceTier | None:
    """OpenAI's answered tier in Anthropic's words (reference 5.10): `priority` is priority;
    `default`, `auto`, `flex` and `scale` are standard capacity, Anthropic's only other tier
    for a synchronous call (its `batch` is the Message Batches API)."""
    if not isinstance(value, str) or not value:
        return None
    return "priority" if value == "priority" else "standard"


def response_from(body: dict[str, Any], request: ir.Request, target: Target) -> ir.Response:
    choice = _first_choice(body) or {}
    message = choice.get("message") or {}
    content: list[ir.Part] = []
    reasoning = _reasoning_of(message)
    if reasoning and wants_thinking(request):
        content.append(ir.Thinking(reasoning, signature=thinking_signature(target)))
    text = _text_of(message.get("content"))
    cited = web_search.chat_citations(message.get("annotations"), text)
    searched = web_search.searched(request) is not None
    if searched:
        content += web_search.chat_search_parts(request, cited, body.get("id"))
    if text:
        content.append(ir.Text(text, citations=cited or None))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(ir.Text(refusal))
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    content += [_tool_use(c) for c in calls]
    usage = usage_from(body.get("usage"))
    if usage is None:
        arguments = "".join(
            _arguments_text((c.get("function") or {}).get("arguments")) for c in calls
        )
        chars = len(reasoning) + len(text) + len(refusal or "") + len(arguments)
        usage = ir.Usage(
            input_tokens=estimate_input_tokens(request),
            output_tokens=estimate_output_tokens(chars),
            estimated=True,
        )
    if searched:
        usage.web_search_requests = 1  # a search model searches once per request
    stop = stop_reason(choice.get("finish_reason"), bool(calls), bool(refusal))
    details = None
    if stop == "refusal":
        details = refusal_details(refusal or "", choice.get("content_filter_results"))
    return ir.Response(
        content=content,
        stop_reason=stop,
        usage=usage,
        upstream_id=body.get("id"),
        stop_details=details,
        service_tier=service_tier(body.get("service_tier")),
    )


# --- Streaming --------------------------------------------------------------------------------
# A stream's error chunk typed by the words of its type, code and status (servers differ in
# which they fill): the first row with a word found wins; none, an `api_error`.
STREAM_ERROR_WORDS = (
    (("overload", "unavailable", "slow_down", "502", "503", "529"), "overloaded_error"),
    (("rate_limit", "429"), "rate_limit_error"),
)


def stream_error(error: Any) -> ir.StreamError:
    """A `{"error": …}` chunk, typed as reference 5.11.5 asks."""
    if not isinstance(error, dict):
        return ir.StreamError("api_error", str(error) or "upstream stream error")
    said = " ".join(str(error.get(k) or "") for k in ("type", "code", "status")).lower()
    message = str(error.get("message") or "upstream stream error")
    found = (kind for words, kind in STREAM_ERROR_WORDS if any(w in said for w in words))
    return ir.StreamError(next(found, "api_error"), message)


@dataclass(slots=True)
class _Call:
    id: str | None
    name: str | None
    arguments: str = ""
    started: bool = False


class ChatStream(JsonChunks):
    """One translated stream: `feed_json` turns a chunk into IR events, `end` closes the message.

    Tool calls: the first call of a message streams its arguments live and its block stays
    open until the end. Any further call is buffered and emitted at the end as BlockStart plus
    one ToolInputDelta with the whole arguments, as is text that arrives after a tool call.
    A block cannot be reopened once another has started, so this is what keeps servers that
    interleave fragments of parallel calls (or send text between them) correct; OpenAI streams
    calls one after the other, so only the second and later calls lose their live deltas.
    """

    def __init__(self, request: ir.Request, target: Target):
        self.request = request
        self.searched = web_search.searched(request) is not None
        self.text = ""  # the answer's text so far, for the spans citations point at
        self.cited: list[ir.Citation] = []
        self.upstream_id: Any = None
        self.show_thinking = wants_thinking(request)
        self.signature = thinking_signature(target)
        self.started = False
        self.thinking_open = False
        self.calls: dict[int, _Call] = {}
        self.live: int | None = None  # index of the call streamed live
        self.late_text = ""
        self.finish: str | None = None
        self.usage: ir.Usage | None = None
        self.saw_refusal = False
        self.refusal = ""  # the refusal text so far, kept up to EXPLANATION_CHARS
        self.filters: Any = None  # Azure's content_filter_results, the latest seen
        self.chars = 0  # streamed characters, for a usage estimate if none is reported
        self.service_tier: ir.ServiceTier | None = None  # every chunk repeats it

    def feed(self, name: str | None, data: bytes) -> list[ir.StreamEvent]:
        if data.strip() == b"[DONE]":
            self.done = True
            return self.close(done=True)
        return super().feed(name, data)

    def feed_json(self, name: str | None, chunk: dict[str, Any]) -> list[ir.StreamEvent]:
        events: list[ir.StreamEvent] = []
        if chunk.get("error"):
            # Before anything else, so an error as first event lets the gateway fall back.
            self.done = True
            return [stream_error(chunk["error"])]
        self.service_tier = service_tier(chunk.get("service_tier")) or self.service_tier
        if not self.started:
            self.started = True
            self.upstream_id = chunk.get("id")
            events.append(
                ir.StreamStart(upstream_id=self.upstream_id, service_tier=self.service_tier)
            )
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage  # cumulative on some servers: keep the latest
        choice = _first_choice(chunk)
        if choice is None:
            return events
        delta = choice.get("delta") or {}
        events += self._reasoning(_reasoning_of(delta))
        events += self._text(delta.get("content"))
        events += self._annotations(delta.get("annotations"))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self.saw_refusal = True
            if len(self.refusal) < EXPLANATION_CHARS:
                self.refusal += refusal
            events += self._text(refusal)
        self.filters = choice.get("content_filter_results") or self.filters
        for fragment in delta.get("tool_calls") or []:
            if isinstance(fragment, dict):
                events += self._tool_fragment(fragment)
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
        return events

    def _close_thinking(self) -> list[ir.StreamEvent]:
        if not self.thinking_open:
            return []
        self.thinking_open = False
        signature = [ir.SignatureDelta(self.signature)] if self.signature else []
        return [*signature, ir.BlockStop()]

    def _reasoning(self, text: str) -> list[ir.StreamEvent]:
        self.chars += len(text)
        if not text or not self.show_thinking or self.calls:
            return []  # billed either way; shown only when asked for and before tool calls
        self.thinking_open = True
        return [ir.ThinkingDelta(text)]

    def _text(self, text: Any) -> list[ir.StreamEvent]:
        if not isinstance(text, str) or not text:
            return []
        self.chars += len(text)
        self.text += text
        if self.calls:
            self.late_text += text  # the live tool block must stay open: hold until the end
            return []
        return [*self._close_thinking(), ir.TextDelta(text)]

    def _annotations(self, annotations: Any) -> list[ir.StreamEvent]:
        cited = web_search.chat_citations(annotations, self.text)
        self.cited += cited
        return [] if self.calls else [ir.CitationDelta(c) for c in cited]

    def _call_index(self, fragment: dict[str, Any]) -> int:
        index = fragment.get("index")
        if isinstance(index, int):
            return index
        # No index (some servers send each call whole): a new call when it has an id or name.
        opens = fragment.get("id") or (fragment.get("function") or {}).get("name")
        return len(self.calls) if opens or not self.calls else max(self.calls)

    def _tool_fragment(self, fragment: dict[str, Any]) -> list[ir.StreamEvent]:
        index = self._call_index(fragment)
        function = fragment.get("function") or {}
        call = self.calls.get(index)
        if call is None:
            call = self.calls[index] = _Call(id=None, name=None)
            self.live = index if self.live is None else self.live
        call.id = call.id or fragment.get("id")
        call.name = call.name or function.get("name")
        piece = _arguments_text(function.get("arguments"))
        call.arguments += piece
        self.chars += len(piece)
        if index != self.live:
            return []
        if call.started:
            return [ir.ToolInputDelta(piece)] if piece else []
        if not call.name:
            return []  # some servers send the name late: hold the arguments until it arrives
        call.started = True
        return [*self._close_thinking(), *self._open_call(call)]

    @staticmethod
    def _open_call(call: _Call) -> list[ir.StreamEvent]:
        tool_use = ir.ToolUse(id=response_tool_id(call.id), name=call.name or "", input={})
        events: list[ir.StreamEvent] = [ir.BlockStart(tool_use)]
        if call.arguments:
            events.append(ir.ToolInputDelta(call.arguments))
        return events

    def end(self) -> list[ir.StreamEvent]:
        return self.close(done=False)

    def close(self, done: bool) -> list[ir.StreamEvent]:
        """At `[DONE]` (`done`) or at the end of the body; without either a finish_reason
        or `[DONE]` the stream was cut."""
        if self.finish is None and not done:
            return [ir.StreamError("api_error", "upstream stream ended unexpectedly")]
        events = self._close_thinking()
        for _, call in sorted(self.calls.items()):
            if not call.started:
                events += self._open_call(call)
        if self.late_text:
            events.append(ir.TextDelta(self.late_text))
        if self.searched:  # its pages are known once the answer's citations are
            call, found = web_search.chat_search_parts(self.request, self.cited, self.upstream_id)
            arguments = msgspec.json.encode(call.input).decode()
            shell = ir.ServerToolUse(id=call.id, name=call.name, input={})
            events += [ir.BlockStart(shell), ir.ToolInputDelta(arguments), ir.BlockStart(found)]
            events.append(ir.BlockStop())
        stop = stop_reason(self.finish or "stop", bool(self.calls), self.saw_refusal)
        usage = self.usage or ir.Usage(
            output_tokens=estimate_output_tokens(self.chars), estimated=True
        )
        if self.searched:
            usage.web_search_requests = 1
        details = refusal_details(self.refusal, self.filters) if stop == "refusal" else None
        end = ir.StreamEnd(stop, usage, stop_details=details, service_tier=self.service_tier)
        return [*events, end]


def chat_url(target: Target) -> str:
    base = target.base_url.rstrip("/")
    if version := target.options.get("azure_api_version"):
        # Azure addresses a deployment (the route's upstream model) and pins an API version.
        return f"{base}/openai/deployments/{target.upstream_model}/chat/completions" + (
            f"?api-version={version}"
        )
    return base + "/chat/completions"


def sampling_dropped(request: ir.Request, reasoning_model: bool, *, stops: bool) -> list[str]:
    """Sampling fields an OpenAI surface cannot take (shared by Chat and Responses)."""
    dropped = ["top_k"] if request.top_k is not None else []
    if reasoning_model:
        dropped += [f for f in ("temperature", "top_p") if getattr(request, f) is not None]
    if request.stop_sequences and (not stops or reasoning_model):
        dropped.append("stop_sequences")
    elif len(request.stop_sequences) > 4:
        dropped.append("stop_sequences (beyond the first 4)")
    reasoning = request.reasoning
    if reasoning is not None and not reasoning_model:
        dropped.append(reasoning.asked_by)
    elif reasoning is not None and reasoning.effort in NEAREST_EFFORT:
        nearest = NEAREST_EFFORT[reasoning.effort]
        field = "reasoning.effort" if reasoning.asked_by == "reasoning" else "output_config.effort"
        dropped.append(f"{field} `{reasoning.effort}` (sent as `{nearest}`)")
    return dropped


class OpenAIChatAdapter(HttpAdapter):
    kind = "openai"
    options = REQUEST_OPTIONS
    error_kinds = ERROR_KINDS
    takes_cache_key = True  # when the server does (openai_chat_request.sends_cache_key)

    def error_codes(self, body: Any) -> list[Any]:
        return error_codes(body)

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        dropped = sampling_dropped(request, is_reasoning_model(target.upstream_model), stops=True)
        dropped += unsupported_search(request)
        return [f for f in dropped if not (f == "top_k" and target.options.get("top_k"))]

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        auth = target.options.get("auth", "bearer")
        if target.api_key and auth == "bearer":
            headers["authorization"] = f"Bearer {target.api_key}"
        elif target.api_key and auth == "api-key":
            headers["api-key"] = target.api_key
        headers.update(target.extra_headers)
        return UpstreamRequest(
            url=chat_url(target), body=chat_body(request, target), headers=headers
        )

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        if not isinstance(body, dict):
            body = {}
        return response_from(body, request, target)

    def stream_parser(self, request: ir.Request, target: Target) -> ChatStream:
        return ChatStream(request, target)
