"""OpenAI Chat chunk stream -> IR stream events, for an OpenAI Chat upstream. Pure.

Reference 5.11.2: `ChatStream` is fed one SSE event at a time by the stream loop
(providers/adapters/base.py) and closes the message at `[DONE]` or at the end of the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from core import ir
from core.target import Target
from core.tokens import estimate_output_tokens
from protocols import web_search
from protocols.openai_chat.errors import stream_error
from protocols.openai_chat.upstream_response import (
    EXPLANATION_CHARS,
    arguments_text,
    first_choice,
    reasoning_of,
    refusal_details,
    response_tool_id,
    service_tier,
    stop_reason,
    thinking_signature,
    usage_from,
    wants_thinking,
)
from protocols.stream import JsonChunks


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
        choice = first_choice(chunk)
        if choice is None:
            return events
        delta = choice.get("delta") or {}
        events += self._reasoning(reasoning_of(delta))
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
        piece = arguments_text(function.get("arguments"))
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
