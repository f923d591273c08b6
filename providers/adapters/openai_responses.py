"""OpenAI Responses API upstream (`POST /responses`, reference section 3).

The request body is built in `openai_responses_request.py`; this module owns the HTTP details
and maps answers back into the IR: a response object into a response (reference 5.8-5.10) and
the named-event stream into IR stream events (5.11.3). Reasoning items become thinking blocks
whose signature is an envelope carrying the item's id and `encrypted_content`, so the next
turn can replay them without server-side state.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ir
from core.errors import upstream_error
from core.target import Target
from core.tokens import estimate_input_tokens, estimate_output_tokens
from protocols.envelope import seal
from protocols.openai_chat.errors import ERROR_KINDS, error_codes, stream_error
from protocols.openai_chat.request import is_reasoning_model
from protocols.openai_chat.upstream_response import (
    EXPLANATION_CHARS,
    RESPONSES_USAGE,
    refusal_details,
    response_tool_id,
    service_tier,
    tool_input,
    wants_thinking,
)
from protocols.openai_chat.upstream_response import (
    usage_from as chat_usage_from,
)
from protocols.openai_responses.request import OPTIONS as REQUEST_OPTIONS
from protocols.openai_responses.request import PROVIDER, responses_body, unsupported_search
from protocols.stream import JsonChunks
from protocols.web_search import (
    citation,
    code_call,
    hits,
    search_call,
    server_tool_id,
    span,
)
from providers.adapters.base import HttpAdapter, UpstreamRequest
from providers.adapters.openai_chat import sampling_dropped

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
# What `POST /responses/input_tokens` takes (openai-python's InputTokenCountParams).
COUNT_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "text",
        "truncation",
        "conversation",
        "previous_response_id",
    }
)


def thinking_signature(item: dict[str, Any], target: Target) -> str:
    data = {"id": item.get("id"), "enc": item.get("encrypted_content")}
    return seal(PROVIDER, target.upstream_model, data, target.signing_key)


def owed_state(reasoning: dict[str, Any] | None, target: Target) -> dict[str, Any] | None:
    """What a function call owes the next turn: the reasoning item before it, when it has
    `encrypted_content` (kept by gateway/tool_state.py when no thinking block carries it)."""
    if not reasoning:
        return None
    item_id, enc = reasoning.get("id"), reasoning.get("encrypted_content")
    if not isinstance(item_id, str) or not isinstance(enc, str) or not item_id or not enc:
        return None
    return {"p": PROVIDER, "m": target.upstream_model, "id": item_id, "enc": enc}


def reasoning_text(item: dict[str, Any]) -> str:
    """Summary texts joined by blank lines, or the raw reasoning text when there is one."""

    def texts(key: str, kind: str) -> list[str]:
        return [
            p["text"]
            for p in item.get(key) or []
            if isinstance(p, dict) and p.get("type") == kind and isinstance(p.get("text"), str)
        ]

    return "\n\n".join(texts("summary", "summary_text") or texts("content", "reasoning_text"))


def stop_reason(response: dict[str, Any], saw_tool: bool, saw_refusal: bool) -> ir.StopReason:
    """Reference 5.9.1."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details") or {}
        reason = details.get("reason") if isinstance(details, dict) else None
        return "refusal" if reason == "content_filter" else "max_tokens"
    if saw_tool:
        return "tool_use"
    return "refusal" if saw_refusal else "end_turn"


def usage_from(data: Any) -> ir.Usage | None:
    return chat_usage_from(data, RESPONSES_USAGE)


def _failure(response: dict[str, Any]) -> str:
    error = response.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or f"upstream response {response.get('status')}")


# --- Web search (built-in tool) -----------------------------------------------------------------
def is_search(item: dict[str, Any]) -> bool:
    """A `web_search_call` that searched (not one that opened or read a page it had found)."""
    action = item.get("action")
    return not isinstance(action, dict) or action.get("type") in (None, "search")


def search_parts(item: dict[str, Any], titles: dict[str, str]) -> list[ir.Part]:
    """A `web_search_call` item as Anthropic's server_tool_use and web_search_tool_result."""
    action = item.get("action") if isinstance(item.get("action"), dict) else {}
    call_id = server_tool_id(item.get("id"))
    sources = action.get("sources") if isinstance(action.get("sources"), list) else []
    pages = [(s.get("url"), titles.get(s.get("url"))) for s in sources if isinstance(s, dict)]
    return [
        search_call(call_id, action.get("query") if isinstance(action.get("query"), str) else None),
        ir.WebSearchResult(tool_use_id=call_id, results=hits(pages)),
    ]


def code_parts(item: dict[str, Any]) -> list[ir.Part]:
    """A `code_interpreter_call` as Anthropic's server_tool_use and code_execution_tool_result
    (its logs are the output; a failed call's are the error)."""
    call = code_call(server_tool_id(item.get("id")), item.get("code"))
    outputs = item.get("outputs") if isinstance(item.get("outputs"), list) else []
    logs = "".join(
        o["logs"] for o in outputs if isinstance(o, dict) and isinstance(o.get("logs"), str)
    )
    failed = item.get("status") == "failed"
    result = ir.CodeExecutionResult(
        tool_use_id=call.id,
        stdout="" if failed else logs,
        stderr=logs if failed else "",
        return_code=1 if failed else 0,
    )
    return [call, result]


def annotation_citation(annotation: Any, text: str) -> ir.Citation | None:
    if not isinstance(annotation, dict) or annotation.get("type") != "url_citation":
        return None
    cited = span(text, annotation.get("start_index"), annotation.get("end_index"))
    return citation(annotation.get("url"), annotation.get("title"), cited)


def _titles(output: list[Any]) -> dict[str, str]:
    """url -> title from every url_citation of the answer (sources come without titles)."""
    titles: dict[str, str] = {}
    for item in output:
        for part in (item.get("content") or []) if isinstance(item, dict) else []:
            for note in (part.get("annotations") or []) if isinstance(part, dict) else []:
                if isinstance(note, dict) and isinstance(note.get("title"), str):
                    titles.setdefault(str(note.get("url")), note["title"])
    return titles


# --- Non-streaming ----------------------------------------------------------------------------
def _message_parts(item: dict[str, Any]) -> tuple[list[ir.Part], str | None]:
    """The message's text parts, and the text of its refusal parts (None when it has none)."""
    parts: list[ir.Part] = []
    refusal: str | None = None
    for part in item.get("content") or []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "output_text" and part.get("text"):
            text = str(part["text"])
            notes = part.get("annotations") if isinstance(part.get("annotations"), list) else []
            cited = [c for n in notes if (c := annotation_citation(n, text))]
            parts.append(ir.Text(text, citations=cited or None))
        elif part.get("type") == "refusal" and part.get("refusal"):
            parts.append(ir.Text(str(part["refusal"])))
            refusal = (refusal or "") + str(part["refusal"])
    return parts, refusal


def response_from(body: dict[str, Any], request: ir.Request, target: Target) -> ir.Response:
    if body.get("status") in ("failed", "cancelled"):
        raise upstream_error(500, _failure(body))
    content: list[ir.Part] = []
    saw_tool = False
    refusal: str | None = None
    searches = 0
    reasoning: dict[str, Any] | None = None  # the last reasoning item, owed to the next call
    output = body.get("output") if isinstance(body.get("output"), list) else []
    titles = _titles(output)
    for item in output:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            reasoning = item
        if kind == "web_search_call" and is_search(item):
            searches += 1
            content += search_parts(item, titles)
        elif kind == "code_interpreter_call":
            content += code_parts(item)
        elif kind == "reasoning" and wants_thinking(request):
            content.append(ir.Thinking(reasoning_text(item), thinking_signature(item, target)))
        elif kind == "message":
            parts, refused = _message_parts(item)
            content += parts
            if refused is not None:
                refusal = (refusal or "") + refused
        elif kind == "function_call":
            saw_tool = True
            content.append(
                ir.ToolUse(
                    id=response_tool_id(item.get("call_id")),
                    name=str(item.get("name") or ""),
                    input=tool_input(item.get("arguments")),
                    state=owed_state(reasoning, target),
                )
            )
            reasoning = None
    usage = usage_from(body.get("usage"))
    if usage is None:
        chars = len(_encode.encode(content))
        usage = ir.Usage(
            input_tokens=estimate_input_tokens(request),
            output_tokens=estimate_output_tokens(chars),
            estimated=True,
        )
    if searches:
        usage.web_search_requests = searches
    stop = stop_reason(body, saw_tool, refusal is not None)
    return ir.Response(
        content=content,
        stop_reason=stop,
        usage=usage,
        upstream_id=body.get("id"),
        stop_details=refusal_details(refusal or "") if stop == "refusal" else None,
        service_tier=service_tier(body.get("service_tier")),
    )


# --- Streaming --------------------------------------------------------------------------------
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
            return [stream_error(response.get("error") or {"message": _failure(response)})]
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


class OpenAIResponsesAdapter(HttpAdapter):
    kind = "openai_responses"
    options = REQUEST_OPTIONS
    replays_tool_state = True  # reasoning items preceding function calls
    takes_cache_key = True
    error_kinds = ERROR_KINDS  # the Chat Completions error shape (reference 3.7)

    def error_codes(self, body: Any) -> list[Any]:
        return error_codes(body)

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        # The Responses API has no stop parameter at all.
        dropped = sampling_dropped(request, is_reasoning_model(target.upstream_model), stops=False)
        return dropped + unsupported_search(request)

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        headers.update(target.extra_headers)
        return UpstreamRequest(
            url=target.base_url.rstrip("/") + "/responses",
            body=responses_body(request, target),
            headers=headers,
        )

    def count_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        """`POST /responses/input_tokens` with the request as it would be sent (5.15)."""
        upstream = self.build_request(request, target)
        upstream.body = {k: v for k, v in upstream.body.items() if k in COUNT_FIELDS}
        upstream.url = upstream.url + "/input_tokens"
        return upstream

    def count_result(self, body: Any) -> int:
        return body["input_tokens"]

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        return response_from(body if isinstance(body, dict) else {}, request, target)

    def stream_parser(self, request: ir.Request, target: Target) -> ResponsesStream:
        return ResponsesStream(request, target)
