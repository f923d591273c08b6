"""Gemini `GenerateContentResponse` chunks -> IR stream events, for a Gemini upstream. Pure.

Reference 5.11.4: a streamed chunk is a complete `GenerateContentResponse` holding only the new
parts, and a whole response is one such chunk, so one state machine (`GeminiTurn`) serves both
paths (upstream_response.py feeds it the whole answer).
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ir
from core.target import Target
from core.tokens import estimate_output_tokens
from protocols.gemini.errors import stream_error, unwrap
from protocols.gemini.request import PROVIDER, renamed_tools
from protocols.gemini.upstream_fields import (
    refusal_details,
    stop_reason,
    thinking_signature,
    usage_from,
)
from protocols.openai_chat.upstream_response import response_tool_id, wants_thinking
from protocols.stream import JsonChunks
from protocols.web_search import (
    citation,
    code_call,
    fetch_parts,
    hits,
    search_call,
    server_tool_id,
)

_encode = msgspec.json.Encoder()


def _candidate(chunk: dict[str, Any]) -> dict[str, Any] | None:
    for candidate in chunk.get("candidates") or []:
        if isinstance(candidate, dict) and candidate.get("index", 0) == 0:
            return candidate
    return None


def _parts(candidate: dict[str, Any]) -> list[Any]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class GeminiTurn(JsonChunks):
    """One answer from Gemini, fed chunk by chunk (a non-streamed response is one chunk).

    `feed_json` returns IR stream events and keeps the assembled content on the side. Consecutive
    thought parts make one thinking block and adjacent texts one text block. A thinking block's
    envelope carries the thought signature of the part that ends it (a function call's, which
    Gemini 3 wants back) or else the last one seen inside it.
    """

    def __init__(self, request: ir.Request, target: Target):
        self.target = target
        self.names = renamed_tools(request)
        self.show_thinking = wants_thinking(request)
        choice = request.tool_choice
        self.single_call = choice is not None and choice.disable_parallel_tool_use
        self.content: list[ir.Part] = []
        self.open: str | None = None  # kind of the block still taking parts
        self.signature: str | None = None  # thought signature seen in the open thinking block
        self.started = False
        self.saw_tool = False
        self.calls = 0
        self.blocked = False
        self.finish: str | None = None
        # What a refusal's stop_details come from: the reason's ratings and message.
        self.refusal: tuple[Any, Any, Any] = (None, None, None)
        self.usage: ir.Usage | None = None
        self.chars = 0  # output characters, for an estimate if usage never comes
        self.searches = 0  # Google Search queries grounding ran (groundingMetadata)
        self.response_id: Any = None
        self.code_runs = 0
        self.grounded = False
        self.fetches: int | None = None  # pages url_context fetched (urlContextMetadata)

    def decode(self, data: bytes) -> Any:
        return unwrap(super().decode(data))

    def feed_json(self, name: str | None, chunk: dict[str, Any]) -> list[ir.StreamEvent]:
        if chunk.get("error"):
            # Before anything else, so an error as first chunk lets the gateway fall back.
            self.done = True
            return [stream_error(chunk["error"])]
        events: list[ir.StreamEvent] = []
        if not self.started:
            self.started = True
            self.response_id = chunk.get("responseId")
            events.append(ir.StreamStart(upstream_id=self.response_id))
        usage = usage_from(chunk.get("usageMetadata"))
        if usage is not None:
            self.usage = usage  # running totals: keep the latest
        candidate = _candidate(chunk)
        if candidate is None:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self.blocked = True
                self.refusal = (
                    feedback["blockReason"],
                    feedback.get("safetyRatings"),
                    feedback.get("blockReasonMessage"),
                )
            return events
        for part in _parts(candidate):
            if isinstance(part, dict):
                events += self._part(part)
        grounding = candidate.get("groundingMetadata")
        if isinstance(grounding, dict) and not self.grounded:
            self.grounded = True  # streams may repeat it: read once
            events += self._grounding(grounding)
        context = candidate.get("urlContextMetadata")
        if isinstance(context, dict) and self.fetches is None:
            events += self._url_context(context)  # read once, as grounding
        if candidate.get("finishReason"):
            self.finish = candidate["finishReason"]
            ratings, message = candidate.get("safetyRatings"), candidate.get("finishMessage")
            self.refusal = (self.finish, ratings, message)
        return events

    def _part(self, part: dict[str, Any]) -> list[ir.StreamEvent]:
        signature = _str(part.get("thoughtSignature")) or None
        text = _str(part.get("text"))
        self.chars += len(text)
        if part.get("thought"):
            return self._thought(text, signature)
        call = part.get("functionCall")
        if isinstance(call, dict):
            return self._call(call, signature)
        if isinstance(code := part.get("executableCode"), dict):
            return self._code(code)
        if isinstance(ran := part.get("codeExecutionResult"), dict):
            return self._code_result(ran)
        if text:
            return [*self.close_thinking(signature), *self._text(text)]
        if signature and self.open == "thinking":
            self.signature = signature  # an empty part carrying only a signature
        return []

    def _thought(self, text: str, signature: str | None) -> list[ir.StreamEvent]:
        if not self.show_thinking:
            return []  # billed either way; shown only to clients that asked (5.7)
        self.signature = signature or self.signature
        if not text:
            return []
        if self.open != "thinking":
            self.open = "thinking"
            self.content.append(ir.Thinking(""))
        self.content[-1].thinking += text
        return [ir.ThinkingDelta(text)]

    def _text(self, text: str) -> list[ir.StreamEvent]:
        if self.open != "text":
            self.open = "text"
            self.content.append(ir.Text(""))
        self.content[-1].text += text
        return [ir.TextDelta(text)]

    def _call(self, call: dict[str, Any], signature: str | None) -> list[ir.StreamEvent]:
        events = self.close_thinking(signature)
        self.saw_tool = True
        if self.single_call and self.calls:
            return events  # disable_parallel_tool_use: only the first call is kept (5.6)
        self.calls += 1
        name = _str(call.get("name"))
        args = call.get("args")
        # Gemini 3 signs a call even without thinking, and wants it back (5.12.4).
        owed = (
            {"p": PROVIDER, "m": self.target.upstream_model, "ts": signature} if signature else None
        )
        tool = ir.ToolUse(
            id=response_tool_id(call.get("id")),
            name=self.names.get(name, name),
            input=args if isinstance(args, dict) else {},
            state=owed,
        )
        self.content.append(tool)
        self.open = "tool_use"
        arguments = _encode.encode(tool.input).decode()
        self.chars += len(arguments)
        # Calls arrive whole: one delta with the complete JSON is valid framing.
        shell = ir.ToolUse(id=tool.id, name=tool.name, input={}, state=owed)
        return [*events, ir.BlockStart(shell), ir.ToolInputDelta(arguments)]

    def _code(self, code: dict[str, Any]) -> list[ir.StreamEvent]:
        """Code the model ran with the code_execution tool: Anthropic's server_tool_use."""
        self.code_runs += 1
        seed = f"{self.response_id}_c{self.code_runs}" if self.response_id else None
        call = code_call(server_tool_id(seed), code.get("code"))
        self.content.append(call)
        self.open = None
        arguments = _encode.encode(call.input).decode()
        self.chars += len(arguments)
        shell = ir.ServerToolUse(id=call.id, name=call.name, input={})
        return [*self.close_thinking(), ir.BlockStart(shell), ir.ToolInputDelta(arguments)]

    def _code_result(self, ran: dict[str, Any]) -> list[ir.StreamEvent]:
        calls = [p for p in self.content if isinstance(p, ir.ServerToolUse)]
        if not calls:
            return []  # a result without its code: nothing to answer
        output = _str(ran.get("output"))
        ok = ran.get("outcome") == "OUTCOME_OK"
        result = ir.CodeExecutionResult(
            tool_use_id=calls[-1].id,
            stdout=output if ok else "",
            stderr="" if ok else output,
            return_code=0 if ok else 1,
        )
        self.content.append(result)
        self.open = None
        return [ir.BlockStart(result), ir.BlockStop()]

    def _grounding(self, grounding: dict[str, Any]) -> list[ir.StreamEvent]:
        """Google Search grounding, once the answer's text is there: its supports become
        citations of the text so far, its queries and pages Anthropic's search blocks (which
        therefore follow the text in a stream; a whole response puts them first)."""
        chunks = grounding.get("groundingChunks")
        chunks = chunks if isinstance(chunks, list) else []
        pages = [
            (web.get("uri"), web.get("title"))
            for c in chunks
            if isinstance(c, dict) and isinstance(web := c.get("web"), dict)
        ]
        events: list[ir.StreamEvent] = []
        cited = self._citations(grounding.get("groundingSupports"), pages)
        text = next((p for p in reversed(self.content) if isinstance(p, ir.Text)), None)
        if cited and text is not None:
            text.citations = [*(text.citations or []), *cited]
            if self.open == "text":
                events += [ir.CitationDelta(c) for c in cited]
        queries = grounding.get("webSearchQueries")
        queries = [q for q in queries if isinstance(q, str)] if isinstance(queries, list) else []
        results = hits(pages)
        for n, query in enumerate(queries):
            call_id = server_tool_id(f"{self.response_id}_{n}" if self.response_id else None)
            call = search_call(call_id, query)
            # Gemini does not say which query found which page: all go with the first.
            found = ir.WebSearchResult(tool_use_id=call_id, results=results if n == 0 else [])
            self.content += [call, found]
            shell = ir.ServerToolUse(id=call_id, name=call.name, input={})
            arguments = _encode.encode(call.input).decode()
            events += [
                *self.close_thinking(),
                ir.BlockStart(shell),
                ir.ToolInputDelta(arguments),
                ir.BlockStart(found),
                ir.BlockStop(),
            ]
            self.open = None
        self.searches = len(queries)
        return events

    def _url_context(self, context: dict[str, Any]) -> list[ir.StreamEvent]:
        """The pages url_context fetched, as Anthropic's web_fetch blocks: Gemini reports only
        each url and whether it was retrieved, never the page's text (the document is empty)."""
        listed = context.get("urlMetadata")
        pages = [
            (page["retrievedUrl"], page.get("urlRetrievalStatus") == "URL_RETRIEVAL_STATUS_SUCCESS")
            for page in (listed if isinstance(listed, list) else [])
            if isinstance(page, dict)
            and isinstance(page.get("retrievedUrl"), str)
            and page["retrievedUrl"]
        ]
        self.fetches = 0
        events: list[ir.StreamEvent] = [*self.close_thinking()] if pages else []
        for url, ok in pages:
            seed = f"{self.response_id}_f{self.fetches}" if self.response_id else None
            call, result = fetch_parts(server_tool_id(seed), url, ok)
            self.content += [call, result]
            self.fetches += 1
            shell = ir.ServerToolUse(id=call.id, name=call.name, input={})
            arguments = _encode.encode(call.input).decode()
            events += [
                ir.BlockStart(shell),
                ir.ToolInputDelta(arguments),
                ir.BlockStart(result),
                ir.BlockStop(),
            ]
            self.open = None
        return events

    @staticmethod
    def _citations(supports: Any, pages: list[tuple[Any, Any]]) -> list[ir.Citation]:
        result = []
        for support in supports if isinstance(supports, list) else []:
            if not isinstance(support, dict):
                continue
            segment = support.get("segment")
            cited = _str(segment.get("text")) if isinstance(segment, dict) else ""
            for index in support.get("groundingChunkIndices") or []:
                if isinstance(index, int) and 0 <= index < len(pages):
                    url, title = pages[index]
                    if (found := citation(url, title, cited)) is not None:
                        result.append(found)
        return result

    def close_thinking(self, signature: str | None = None) -> list[ir.StreamEvent]:
        if self.open != "thinking":
            return []
        self.open = None
        envelope = thinking_signature(self.target, signature or self.signature)
        self.signature = None
        self.content[-1].signature = envelope
        return [ir.SignatureDelta(envelope), ir.BlockStop()]

    def stop_reason(self) -> ir.StopReason:
        return stop_reason(self.finish, self.saw_tool, self.blocked)

    def stop_details(self) -> ir.StopDetails | None:
        if self.stop_reason() != "refusal":
            return None
        return refusal_details(*self.refusal, prompt=self.blocked)

    def end(self) -> list[ir.StreamEvent]:
        """At the end of the body: a stream without a finishReason was cut."""
        if self.finish is None and not self.blocked:
            return [ir.StreamError("api_error", "upstream stream ended unexpectedly")]
        usage = self.usage or ir.Usage(
            output_tokens=estimate_output_tokens(self.chars), estimated=True
        )
        if self.searches:
            usage.web_search_requests = self.searches
        if self.fetches:
            usage.web_fetch_requests = self.fetches
        end = ir.StreamEnd(self.stop_reason(), usage, stop_details=self.stop_details())
        return [*self.close_thinking(), end]
