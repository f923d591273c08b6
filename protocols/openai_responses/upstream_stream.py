"""OpenAI Responses named-event stream -> IR stream events, for a Responses upstream. Pure.

Reference 5.11.3: `ResponsesStream` is fed one SSE event at a time by the stream loop
(providers/adapters/base.py), one handler per event type (`HANDLERS`), until a terminal event.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ir
from core.target import Target
from core.tokens import estimate_output_tokens
from protocols.openai_chat.upstream_response import (
    EXPLANATION_CHARS,
    refusal_details,
    response_tool_id,
    service_tier,
    wants_thinking,
)
from protocols.openai_responses.errors import stream_error
from protocols.openai_responses.upstream_response import (
    annotation_citation,
    code_parts,
    failure,
    is_search,
    owed_state,
    search_parts,
    stop_reason,
    thinking_signature,
    usage_from,
)
from protocols.stream import JsonChunks

_encode = msgspec.json.Encoder()
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


class ResponsesStream(JsonChunks):
    """One translated stream: `feed_json` turns an event into IR events, `done` once terminal.

    Items arrive one after the other, so each maps onto one block: a reasoning item opens a
    thinking block (closed with its envelope when the item is done), a text or refusal part a
    text block, a function call a tool_use block fed by its argument deltas.
    """

    def __init__(self, request: ir.Request, target: Target):
        self.target = target
        self.show_thinking = wants_thinking(request)
        self.started = False
        self.done = False
        self.saw_tool = False
        self.saw_refusal = False
        self.refusal = ""  # the refusal text so far, kept up to EXPLANATION_CHARS
        self.text_open = False
        self.streamed_arguments: set[Any] = set()  # output_index of calls that had deltas
        self.chars = 0
        self.part_text = ""  # the open text part, for the spans its citations point at
        self.searches = 0
        self.reasoning: dict[str, Any] | None = None  # the last reasoning item, done

    invalid = "upstream sent an invalid stream event"

    def feed_json(self, name: str | None, data: dict[str, Any]) -> list[ir.StreamEvent]:
        kind = str(data.get("type") or name or "")
        if kind == "error":
            # Before anything else, so an error as first event lets the gateway fall back.
            self.done = True
            return [stream_error(data)]
        events: list[ir.StreamEvent] = []
        if not self.started:
            self.started = True
            response = data.get("response") or {}
            # `auto` here is the request echoed; the tier used is known at the end.
            tier = response.get("service_tier")
            early = service_tier(tier) if tier != "auto" else None
            events.append(ir.StreamStart(upstream_id=response.get("id"), service_tier=early))
        if kind in TERMINAL:
            self.done = True
            return events + self._finish(kind, data.get("response") or {})
        handler = HANDLERS.get(kind)
        return events + (handler(self, data) if handler else [])  # others: lifecycle, ignored

    def _finish(self, kind: str, response: dict[str, Any]) -> list[ir.StreamEvent]:
        if kind == "response.failed":
            return [stream_error(response.get("error") or {"message": failure(response)})]
        usage = usage_from(response.get("usage")) or ir.Usage(
            output_tokens=estimate_output_tokens(self.chars), estimated=True
        )
        if self.searches:
            usage.web_search_requests = self.searches
        stop = stop_reason(response, self.saw_tool, self.saw_refusal)
        details = refusal_details(self.refusal) if stop == "refusal" else None
        tier = service_tier(response.get("service_tier"))
        return [ir.StreamEnd(stop, usage, stop_details=details, service_tier=tier)]

    # Handlers, one per event type (table below the class).
    def _output_item_added(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        item = data.get("item") or {}
        if item.get("type") == "reasoning" and self.show_thinking:
            return [ir.BlockStart(ir.Thinking(""))]
        if item.get("type") == "function_call":
            self.saw_tool = True
            tool = ir.ToolUse(
                id=response_tool_id(item.get("call_id")),
                name=str(item.get("name") or ""),
                input={},
                state=owed_state(self.reasoning, self.target),
            )
            self.reasoning = None
            return [ir.BlockStart(tool)]
        return []

    def _reasoning_summary_part_added(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        index = data.get("summary_index")
        return self._thinking("\n\n") if isinstance(index, int) and index > 0 else []

    def _reasoning_summary_text_delta(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        return self._thinking(data.get("delta"))

    def _thinking(self, text: Any) -> list[ir.StreamEvent]:
        if not isinstance(text, str) or not text:
            return []
        self.chars += len(text)
        return [ir.ThinkingDelta(text)] if self.show_thinking else []

    def _output_text_delta(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        text = data.get("delta")
        if not isinstance(text, str) or not text:
            return []
        self.chars += len(text)
        self.text_open = True
        self.part_text += text
        return [ir.TextDelta(text)]

    def _annotation_added(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        cited = annotation_citation(data.get("annotation"), self.part_text)
        return [ir.CitationDelta(cited)] if cited is not None and self.text_open else []

    def _refusal_delta(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        self.saw_refusal = True
        text = data.get("delta")
        if isinstance(text, str) and len(self.refusal) < EXPLANATION_CHARS:
            self.refusal += text
        return self._output_text_delta(data)

    def _content_part_done(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        return self._close_text()  # the next part of the message gets a block of its own

    def _close_text(self) -> list[ir.StreamEvent]:
        """Only a text block this stream opened (never a thinking block of reasoning_text)."""
        self.part_text = ""
        if not self.text_open:
            return []
        self.text_open = False
        return [ir.BlockStop()]

    def _function_call_arguments_delta(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        piece = data.get("delta")
        if not isinstance(piece, str) or not piece:
            return []
        self.streamed_arguments.add(data.get("output_index"))
        self.chars += len(piece)
        return [ir.ToolInputDelta(piece)]

    def _function_call_arguments_done(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        return self._whole_arguments(data.get("output_index"), data.get("arguments"))

    def _whole_arguments(self, index: Any, arguments: Any) -> list[ir.StreamEvent]:
        """Arguments sent only whole (no deltas): one delta with all of them."""
        if index in self.streamed_arguments or not isinstance(arguments, str) or not arguments:
            return []
        self.streamed_arguments.add(index)
        self.chars += len(arguments)
        return [ir.ToolInputDelta(arguments)]

    def _output_item_done(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        item = data.get("item") or {}
        kind = item.get("type")
        if kind == "reasoning":
            self.reasoning = item
            if not self.show_thinking:
                return []
            # encrypted_content is complete only here, not in output_item.added (3.3).
            return [ir.SignatureDelta(thinking_signature(item, self.target)), ir.BlockStop()]
        if kind == "function_call":
            index = data.get("output_index")
            return [*self._whole_arguments(index, item.get("arguments")), ir.BlockStop()]
        if kind == "code_interpreter_call":
            return self._server_blocks(*code_parts(item))
        if kind == "web_search_call" and is_search(item):
            # Complete only here: the query and the pages read are in the finished item.
            self.searches += 1
            return self._server_blocks(*search_parts(item, {}))
        return self._close_text() if kind == "message" else []

    def _server_blocks(self, call: ir.ServerToolUse, result: ir.Part) -> list[ir.StreamEvent]:
        """A server tool's call (its input in one delta) and its result, both whole."""
        arguments = _encode.encode(call.input).decode()
        shell = ir.ServerToolUse(id=call.id, name=call.name, input={})
        self.chars += len(arguments)
        return [
            ir.BlockStart(shell),
            ir.ToolInputDelta(arguments),
            ir.BlockStop(),
            ir.BlockStart(result),
            ir.BlockStop(),
        ]

    def end(self) -> list[ir.StreamEvent]:
        """The body ended; without a terminal event first, the stream was cut."""
        if self.done:
            return []
        return [ir.StreamError("api_error", "upstream stream ended unexpectedly")]


HANDLERS = {
    "response.output_item.added": ResponsesStream._output_item_added,
    "response.reasoning_summary_part.added": ResponsesStream._reasoning_summary_part_added,
    "response.reasoning_summary_text.delta": ResponsesStream._reasoning_summary_text_delta,
    "response.reasoning_text.delta": ResponsesStream._reasoning_summary_text_delta,
    "response.output_text.delta": ResponsesStream._output_text_delta,
    "response.refusal.delta": ResponsesStream._refusal_delta,
    "response.output_text.annotation.added": ResponsesStream._annotation_added,
    "response.content_part.done": ResponsesStream._content_part_done,
    "response.function_call_arguments.delta": ResponsesStream._function_call_arguments_delta,
    "response.function_call_arguments.done": ResponsesStream._function_call_arguments_done,
    "response.output_item.done": ResponsesStream._output_item_done,
}
