"""Google Gemini upstream (`generateContent` on the Developer API, reference section 4).

The request body is built in `gemini_request.py`; this module owns the HTTP details and maps
answers back into the IR (reference 5.8-5.10, 5.11.4). A streamed chunk is a complete
`GenerateContentResponse` holding only the new parts, and a whole response is one such chunk,
so one state machine (`GeminiTurn`) serves both paths.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from core import ir
from core.target import Target
from core.tokens import estimate_input_tokens, estimate_output_tokens
from protocols.envelope import seal
from protocols.gemini.request import (
    MAX_STOP_SEQUENCES,
    PROVIDER,
    gemini_body,
    renamed_tools,
    unsupported_fetch,
    unsupported_search,
)
from protocols.gemini.request import (
    OPTIONS as REQUEST_OPTIONS,
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
from providers.adapters.base import HttpAdapter, UpstreamRequest

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()
# fmt: off
REFUSALS = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})
# fmt: on
OVERLOADED = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
# A stream's error chunk typed by its status name or its HTTP code (overloaded wins over timeout
# when they disagree); neither known, an `api_error`.
STREAM_ERRORS: dict[Any, str] = {
    **dict.fromkeys(OVERLOADED, "overloaded_error"),
    429: "overloaded_error",
    503: "overloaded_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    504: "timeout_error",
}
# Error details that blame the gateway's own key, project or billing, not the request (Gemini
# answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID), and status names that
# tell more than the HTTP status (see core/errors.py VERDICTS).
# fmt: off
ERROR_KINDS = {
    **dict.fromkeys((
        "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED", "ACCESS_TOKEN_EXPIRED",
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "CREDENTIALS_MISSING", "CONSUMER_SUSPENDED",
        "CONSUMER_INVALID", "SERVICE_DISABLED", "USER_PROJECT_DENIED",
    ), "credential"),
    "BILLING_DISABLED": "account",
    # Region or billing of the project (reference 4.7), but also the state of a cache or file
    # the request names: another route may serve it, and it never counts.
    "FAILED_PRECONDITION": "refused",
}
# fmt: on


def thinking_signature(target: Target, thought_signature: str | None) -> str:
    """The envelope a thinking block carries, with the thought signature to replay (5.12.3)."""
    data = {"ts": thought_signature} if thought_signature else {}
    return seal(PROVIDER, target.upstream_model, data, target.signing_key)


# Why Gemini stopped or blocked (finishReason, promptFeedback.blockReason) -> Anthropic's
# refusal category: harm filters are `general_harms`; recitation, a blocklist or an unnamed
# reason have no named category.
# fmt: off
REFUSAL_CATEGORIES: dict[str, ir.RefusalCategory] = dict.fromkeys((
    "SAFETY", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
), "general_harms")
# fmt: on
EXPLANATION_CHARS = 1000
_NAME = re.compile(r"[A-Z_]{1,64}")


def refusal_details(reason: Any, ratings: Any, message: Any, *, prompt: bool) -> ir.StopDetails:
    """A refusal's `stop_details`: the category from the reason; the explanation from Gemini's
    own text (`finishMessage`, `blockReasonMessage`), else the reason and the harm categories
    its safety ratings blocked."""
    reason = reason if isinstance(reason, str) and _NAME.fullmatch(reason) else None
    if isinstance(message, str) and message:
        explanation = message[:EXPLANATION_CHARS]
    else:
        blocked = [
            str(r.get("category"))
            for r in (ratings if isinstance(ratings, list) else ())
            if isinstance(r, dict) and r.get("blocked") and _NAME.fullmatch(str(r.get("category")))
        ][:8]
        what = "prompt blocked" if prompt else "output stopped"
        explanation = f"{what}: {reason or 'unspecified'}" + (
            f" ({', '.join(blocked)})" if blocked else ""
        )
    return ir.StopDetails(category=REFUSAL_CATEGORIES.get(reason or ""), explanation=explanation)


def stop_reason(finish: Any, saw_tool: bool, blocked: bool) -> ir.StopReason:
    """Reference 5.9.1: Gemini says STOP even when it called functions."""
    if saw_tool:
        return "tool_use"
    if blocked or finish in REFUSALS:
        return "refusal"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    return "end_turn"


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) else 0


def usage_from(meta: Any) -> ir.Usage | None:
    """Reference 5.10: the prompt count includes cached tokens; candidates exclude thoughts."""
    if not isinstance(meta, dict):
        return None
    cached = _count(meta, "cachedContentTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    return ir.Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=_count(meta, "candidatesTokenCount") + thoughts,
        cache_read_input_tokens=cached,
        reasoning_tokens=thoughts,
    )


def stream_error(error: Any) -> ir.StreamError:
    """An `{"error": {code, message, status}}` chunk, typed as reference 5.11.5 asks."""
    if not isinstance(error, dict):
        return ir.StreamError("api_error", str(error) or "upstream stream error")
    status = str(error.get("status") or "").upper()
    message = str(error.get("message") or "upstream stream error")
    code = error.get("code")
    said = {
        STREAM_ERRORS.get(status),
        STREAM_ERRORS.get(code if type(code) in (int, float) else None),
    }
    kind = next((k for k in ("overloaded_error", "timeout_error") if k in said), "api_error")
    return ir.StreamError(kind, message)


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
        return _unwrap(super().decode(data))

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


def response_from(body: dict[str, Any], request: ir.Request, target: Target) -> ir.Response:
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        raise GeminiAdapter().error_from(code if isinstance(code, int) else 500, body)
    turn = GeminiTurn(request, target)
    turn.feed_json(None, body)
    turn.close_thinking()
    usage = turn.usage or ir.Usage(
        input_tokens=estimate_input_tokens(request),
        output_tokens=estimate_output_tokens(turn.chars),
        estimated=True,
    )
    if turn.searches:
        usage.web_search_requests = turn.searches
    if turn.fetches:
        usage.web_fetch_requests = turn.fetches
    # Anthropic puts a search or a fetch before the text it grounds.
    searches = [p for p in turn.content if _is_search(p)]
    others = [p for p in turn.content if not _is_search(p)]
    return ir.Response(
        content=searches + others,
        stop_reason=turn.stop_reason(),
        usage=usage,
        upstream_id=body.get("responseId"),
        stop_details=turn.stop_details(),
    )


def _is_search(part: ir.Part) -> bool:
    search_call = isinstance(part, ir.ServerToolUse) and part.name in ("web_search", "web_fetch")
    return search_call or isinstance(part, ir.WebSearchResult | ir.WebFetchResult)


def _retry_delay(body: Any) -> float | None:
    """Gemini's `RetryInfo.retryDelay` ("37s") from an error body (reference 4.7)."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            try:
                return float(str(detail.get("retryDelay", "")).removesuffix("s"))
            except ValueError:
                return None
    return None


def _unwrap(body: Any) -> Any:
    """Error bodies sometimes come wrapped in a one-element array (reference 4.6)."""
    return body[0] if isinstance(body, list) and body else body


class GeminiAdapter(HttpAdapter):
    kind = "gemini"
    options = REQUEST_OPTIONS
    replays_tool_state = True  # function calls' thought signatures

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        dropped = []
        if len(request.stop_sequences) > MAX_STOP_SEQUENCES:
            dropped.append(f"stop_sequences (beyond the first {MAX_STOP_SEQUENCES})")
        choice = request.tool_choice
        if choice is not None and choice.disable_parallel_tool_use:
            dropped.append("tool_choice.disable_parallel_tool_use (approximated)")
        return dropped + unsupported_search(request) + unsupported_fetch(request)

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        headers.update(target.extra_headers)
        model = target.upstream_model.removeprefix("models/")
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        return UpstreamRequest(
            url=f"{target.base_url.rstrip('/')}/models/{model}:{method}",
            body=gemini_body(request, target),
            headers=headers,
        )

    def count_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        upstream = self.build_request(request, target)
        model = target.upstream_model.removeprefix("models/")
        inner = {
            k: v
            for k, v in upstream.body.items()
            if k in ("contents", "systemInstruction", "tools", "toolConfig")
        }
        upstream.url = f"{target.base_url.rstrip('/')}/models/{model}:countTokens"
        upstream.body = {"generateContentRequest": {"model": f"models/{model}", **inner}}
        return upstream

    def count_result(self, body: Any) -> int:
        return _unwrap(body)["totalTokens"]

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        body = _unwrap(body)
        return response_from(body if isinstance(body, dict) else {}, request, target)

    def stream_parser(self, request: ir.Request, target: Target) -> GeminiTurn:
        return GeminiTurn(request, target)

    error_kinds = ERROR_KINDS

    def error_message(self, body: Any) -> str:
        """Gemini's `{"error": {"code", "message", "status", "details"}}`."""
        return super().error_message(_unwrap(body))

    def error_codes(self, body: Any) -> list[Any]:
        """The `google.rpc.ErrorInfo` reasons (API_KEY_INVALID…), then the status name."""
        body = _unwrap(body)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return []
        details = error.get("details")
        reasons = [
            d.get("reason")
            for d in (details if isinstance(details, list) else [])
            if isinstance(d, dict) and str(d.get("@type", "")).endswith("ErrorInfo")
        ]
        return [*reasons, error.get("status")]

    def error_retry_after(self, body: Any) -> float | None:
        return _retry_delay(_unwrap(body))
