"""IR stream events -> OpenAI Responses server-sent events (reference 3.6).

`event: <type>` + `data: <json>` frames, every event numbered (`sequence_number` 0, 1, ...):
`response.created` and `response.in_progress` first, then each output item between its
`response.output_item.added` and `.done` (a message's parts, a reasoning item's summary part,
a function call's argument deltas inside), and last `response.completed` (or `.incomplete`,
or `.failed`) carrying the whole response object. One item is open at a time; consecutive text
blocks are parts of one message item. The writer accumulates usage, stop reason and output
size for the gateway's accounting whatever happens to the stream.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ir, redaction
from protocols.openai_responses import client_encode as enc
from protocols.openai_responses.client_decode import wants_encrypted_reasoning
from protocols.surface import Extras

_json = msgspec.json.Encoder()
KEEPALIVE = b": keepalive\n\n"
# The gateway's error type -> a `response.error.code` the SDK knows (its ResponseError).
FAILURE_CODES = {
    "rate_limit_error": "rate_limit_exceeded",
    "invalid_request_error": "invalid_prompt",
}


class OpenItem:
    """The output item being streamed, and what its `.done` events repeat."""

    def __init__(self, index: int, item: dict[str, Any], part: ir.Part | None = None):
        self.index = index
        self.item = item
        self.part = part  # the IR block it came from (a tool call, a search)
        self.text = ""  # the open content part's text, summary or arguments so far
        self.signature = ""
        self.part_open = False  # a content part (message) or summary part (reasoning)
        self.citations: list[ir.Citation] = []


class StreamWriter:
    """Turns IR events into Responses SSE bytes; `feed` per event returns the bytes to send."""

    def __init__(
        self,
        *,
        response_id: str,
        model: str,
        input_estimate: int = 0,
        request: ir.Request | None = None,
        created_at: float | None = None,
    ):
        self.response_id = response_id
        self.input_estimate = input_estimate
        self.encrypted = request is None or wants_encrypted_reasoning(request)
        self.response = enc.shell(response_id, model, request, created_at)
        self.sequence = 0
        self.started = False
        self.finished = False
        self.error_type: str | None = None  # the gateway's type of a failure written
        self.usage = ir.Usage(input_tokens=input_estimate, estimated=True)
        self.stop_reason: str | None = None
        self.output_chars = 0
        self.extras: Extras | None = None
        self.open: OpenItem | None = None
        self.searches: dict[str, OpenItem] = {}  # server tool id -> its web_search_call

    # --- framing ------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + _json.encode(payload) + b"\n\n"

    def _start(self, usage: ir.Usage | None = None) -> bytes:
        if self.started:
            return b""
        self.started = True
        if usage is not None:
            self.usage = usage
        return self._event("response.created", response=self.response) + self._event(
            "response.in_progress", response=self.response
        )

    def keepalive(self) -> bytes:
        return KEEPALIVE

    # --- events -------------------------------------------------------------------------------
    def feed(self, event: ir.StreamEvent) -> bytes:
        if self.finished:
            return b""
        if isinstance(event, ir.StreamStart):
            return self._start(event.usage)
        handler = _HANDLERS.get(type(event))
        if handler is None:  # a pass-through never reaches this writer
            return b""
        return self._start() + handler(self, event)

    def _block_start(self, event: ir.BlockStart) -> bytes:
        part = event.part
        if isinstance(part, ir.Text):
            return self._text_part()
        if isinstance(part, ir.WebSearchResult):
            return self._search_result(part)
        out = self._close_item()
        if isinstance(part, ir.Thinking | ir.RedactedThinking):
            item = enc.reasoning_item(self._id("rs"), part, False)
            shown = {"summary": [], "encrypted_content": None, "status": "in_progress"}
            return out + self._add_item(item, part, **shown)
        if isinstance(part, ir.ToolUse):
            item = enc.function_call_item(self._id("fc"), part, "")
            return out + self._add_item(item, part, status="in_progress")
        if isinstance(part, ir.ServerToolUse) and part.name == "web_search":
            item = enc.search_item(self._id("ws"), part, [])
            return out + self._add_item(item, part, status="in_progress")
        return out  # other server tools: nothing a Responses client asked for

    def _id(self, prefix: str) -> str:
        return enc.item_id(prefix, self.response_id, len(self.response["output"]))

    def _add_item(self, item: dict, part: ir.Part | None, **shown: Any) -> bytes:
        index = len(self.response["output"])
        self.response["output"].append(item)
        self.open = OpenItem(index, item, part)
        return self._event("response.output_item.added", output_index=index, item={**item, **shown})

    def _text_part(self) -> bytes:
        out = b""
        if self.open is None or self.open.item["type"] != "message":
            out += self._close_item()
            out += self._add_item(enc.message_item(self._id("msg")), None, status="in_progress")
        opened = self.open
        assert opened is not None
        out += self._close_part()
        opened.part_open, opened.text, opened.citations = True, "", []
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return out + self._event("response.content_part.added", **self._where(), part=part)

    def _where(self, index_name: str = "content_index") -> dict[str, Any]:
        opened = self.open
        assert opened is not None
        position = len(opened.item["content"]) if index_name == "content_index" else 0
        return {"item_id": opened.item["id"], "output_index": opened.index, index_name: position}

    def _text_delta(self, event: ir.TextDelta) -> bytes:
        if not event.text:
            return b""
        out = b""
        if self.open is None or self.open.item["type"] != "message" or not self.open.part_open:
            out = self._text_part()
        assert self.open is not None
        self.open.text += event.text
        self.output_chars += len(event.text)
        where = self._where()
        delta = self._event("response.output_text.delta", **where, delta=event.text, logprobs=[])
        return out + delta

    def _citation(self, event: ir.CitationDelta) -> bytes:
        if self.open is not None and self.open.part_open and self.open.item["type"] == "message":
            self.open.citations.append(event.citation)
        return b""

    def _thinking_delta(self, event: ir.ThinkingDelta) -> bytes:
        opened = self.open
        if not event.thinking or opened is None or opened.item["type"] != "reasoning":
            return b""
        out = b""
        if not opened.part_open:
            opened.part_open = True
            part = {"type": "summary_text", "text": ""}
            where = self._where("summary_index")
            out = self._event("response.reasoning_summary_part.added", **where, part=part)
        opened.text += event.thinking
        self.output_chars += len(event.thinking)
        where = self._where("summary_index")
        return out + self._event(
            "response.reasoning_summary_text.delta", **where, delta=event.thinking
        )

    def _signature(self, event: ir.SignatureDelta) -> bytes:
        if self.open is not None and self.open.item["type"] == "reasoning":
            self.open.signature += event.signature
        return b""

    def _input_delta(self, event: ir.ToolInputDelta) -> bytes:
        opened = self.open
        if not event.partial_json or opened is None or opened.item["type"] == "message":
            return b""
        opened.text += event.partial_json
        if opened.item["type"] != "function_call":
            return b""  # a search's query: shown whole when the item is done
        self.output_chars += len(event.partial_json)
        where = {"item_id": opened.item["id"], "output_index": opened.index}
        kind = "response.function_call_arguments.delta"
        return self._event(kind, **where, delta=event.partial_json)

    def _block_stop(self, event: ir.BlockStop) -> bytes:
        if self.open is not None and self.open.item["type"] == "message":
            return self._close_part()  # the next text block is the message's next part
        return self._close_item()

    # --- closing ------------------------------------------------------------------------------
    def _close_part(self) -> bytes:
        """The open message part's `.done` events."""
        opened = self.open
        if opened is None or not opened.part_open:
            return b""
        opened.part_open = False
        text = ir.Text(opened.text, citations=opened.citations or None)
        where = self._where()
        out = b"".join(
            self._event("response.output_text.annotation.added", **where,
                        annotation_index=n, annotation=note)
            for n, note in enumerate(enc.annotations(text))
        )  # fmt: skip
        out += self._event("response.output_text.done", **where, text=opened.text, logprobs=[])
        part = enc.text_part(text)
        del part["logprobs"]
        out += self._event("response.content_part.done", **where, part=part)
        opened.item["content"].append(enc.text_part(text))
        return out

    def _close_item(self) -> bytes:
        opened = self.open
        if opened is None:
            return b""
        out = self._close_part() if opened.item["type"] == "message" else b""
        kind = opened.item["type"]
        if kind == "reasoning":
            out += self._finish_reasoning(opened)
        elif kind == "function_call":
            out += self._finish_call(opened)
        elif kind == "web_search_call":
            return out + self._hold_search(opened)
        self.open = None
        return out + self._event(
            "response.output_item.done", output_index=opened.index, item=opened.item
        )

    def _finish_reasoning(self, opened: OpenItem) -> bytes:
        out = b""
        if opened.part_open:
            where = self._where("summary_index")
            part = {"type": "summary_text", "text": opened.text}
            out += self._event("response.reasoning_summary_text.done", **where, text=opened.text)
            out += self._event("response.reasoning_summary_part.done", **where, part=part)
        block = opened.part
        if isinstance(block, ir.Thinking):
            text = block.thinking + opened.text
            block = ir.Thinking(text, signature=block.signature + opened.signature)
        assert isinstance(block, ir.Thinking | ir.RedactedThinking)
        opened.item.update(enc.reasoning_item(opened.item["id"], block, self.encrypted))
        return out

    def _finish_call(self, opened: OpenItem) -> bytes:
        part = opened.part
        assert isinstance(part, ir.ToolUse)
        arguments = opened.text or _json.encode(part.input).decode()
        opened.item.update(arguments=arguments, status="completed")
        where = {"item_id": opened.item["id"], "output_index": opened.index}
        return self._event(
            "response.function_call_arguments.done", **where, name=part.name, arguments=arguments
        )

    def _hold_search(self, opened: OpenItem) -> bytes:
        """A search's item is done once its results are known (or the next item opens)."""
        try:
            query = msgspec.json.decode(opened.text or "{}").get("query")
        except (msgspec.DecodeError, AttributeError):
            query = None
        if isinstance(query, str):
            opened.item["action"]["query"] = query
        self.open = None
        assert isinstance(opened.part, ir.ServerToolUse)
        self.searches[opened.part.id] = opened
        return b""

    def _search_result(self, part: ir.WebSearchResult) -> bytes:
        opened = self.searches.pop(part.tool_use_id, None)
        if opened is None:
            return b""
        opened.item["action"]["sources"] = [{"type": "url", "url": h.url} for h in part.results]
        return self._search_done(opened)

    def _search_done(self, opened: OpenItem) -> bytes:
        opened.item["status"] = "completed"
        return self._event("response.output_item.done", output_index=opened.index, item=opened.item)

    def _close_all(self) -> bytes:
        out = self._close_item()
        for opened in self.searches.values():
            out += self._search_done(opened)
        self.searches.clear()
        return out

    # --- the end --------------------------------------------------------------------------------
    def _end(self, event: ir.StreamEnd) -> bytes:
        out = self._close_all()
        usage = event.usage
        if usage.estimated and not usage.input_tokens:
            usage.input_tokens = self.input_estimate
        self.usage, self.stop_reason, self.finished = usage, event.stop_reason, True
        has_text = any(i["type"] == "message" for i in self.response["output"])
        status, details = enc.terminal(event.stop_reason, has_text)
        self.response.update(status=status, incomplete_details=details, usage=enc.usage_json(usage))
        if event.service_tier is not None:
            self.response["service_tier"] = enc.TIERS[event.service_tier]
        enc.add_extras(self.response, usage, self.extras)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, response=self.response)

    def _error(self, event: ir.StreamError) -> bytes:
        return self.error(event.error_type, event.message)

    def error(self, error_type: str, message: str) -> bytes:
        """`response.failed`, its `error` in the SDK's codes; ends the stream."""
        if self.finished:
            return b""
        out = self._start()
        for opened in [self.open, *self.searches.values()]:
            if opened is not None:  # cut short: said so, with no `.done` events
                opened.item["status"] = "incomplete"
        self.finished, self.error_type = True, error_type
        code = FAILURE_CODES.get(error_type, "server_error")
        # An upstream's message may echo a credential it was sent.
        error = {"code": code, "message": redaction.scrub(message)}
        self.response.update(status="failed", error=error, usage=enc.usage_json(self.usage))
        return out + self._event("response.failed", response=self.response)


_HANDLERS = {
    ir.BlockStart: StreamWriter._block_start,
    ir.TextDelta: StreamWriter._text_delta,
    ir.CitationDelta: StreamWriter._citation,
    ir.ThinkingDelta: StreamWriter._thinking_delta,
    ir.SignatureDelta: StreamWriter._signature,
    ir.ToolInputDelta: StreamWriter._input_delta,
    ir.BlockStop: StreamWriter._block_stop,
    ir.StreamEnd: StreamWriter._end,
    ir.StreamError: StreamWriter._error,
}
