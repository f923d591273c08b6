"""Gemini generateContent surface: reads requests, renders replies as JSON and `data:` SSE.

Wire format: reference sections 4.5 (response), 4.6 (streaming, CRLF framing), 4.7 (errors),
5.9.2 and 5.10. The model comes from the URL path, not the body. `:streamGenerateContent`
always answers SSE, with or without `alt=sse` (the JSON-array variant is not emulated).
"""

from __future__ import annotations

from typing import Any

from .scenario import (
    Block,
    CodeBlock,
    Prompt,
    Reply,
    TextBlock,
    ThinkingBlock,
    ToolSpec,
    ToolUseBlock,
    WebFetchBlock,
    WebSearchBlock,
)
from .sse import data_frame, pieces

FINISH_REASON = {
    "end_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "pause_turn": "STOP",
    "refusal": "SAFETY",
    "model_context_window_exceeded": "MAX_TOKENS",
}

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

CRLF = b"\r\n"


def has_auth(headers: dict[str, str], query: dict[str, str]) -> bool:
    return bool(headers.get("x-goog-api-key", "").strip() or query.get("key", "").strip())


def error_body(status: int, message: str) -> dict[str, Any]:
    name = STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": message, "status": name}}


def credential_error(key: str) -> tuple[int, dict[str, Any]]:
    """What Gemini answers a bad key (400 INVALID_ARGUMENT, reason API_KEY_INVALID), or a
    suspended one (403, reason CONSUMER_SUSPENDED, the key in the message): reference 4.7."""
    if key.startswith("suspended-"):
        message = f"Permission denied: Consumer 'api_key:{key}' has been suspended."
        info = _error_info("CONSUMER_SUSPENDED", consumer="projects/578829824020")
        return 403, _error(403, "PERMISSION_DENIED", message, info)
    message = "API key not valid. Please pass a valid API key."
    return 400, _error(400, "INVALID_ARGUMENT", message, _error_info("API_KEY_INVALID"))


def _error(code: int, status: str, message: str, *details: dict) -> dict[str, Any]:
    localized = {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": message,
    }
    error = {"code": code, "message": message, "status": status}
    return {"error": {**error, "details": [*details, localized]}}


def _error_info(reason: str, **metadata: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com", **metadata},
    }


def count_tokens(tokens: int) -> dict[str, Any]:
    return {
        "totalTokens": tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
    }


def read_prompt(body: dict[str, Any]) -> Prompt:
    tools = tuple(
        ToolSpec(fn["name"], fn.get("parameters") or fn.get("parametersJsonSchema") or {})
        for tool in body.get("tools") or ()
        if isinstance(tool, dict)
        for fn in tool.get("functionDeclarations") or ()
        if isinstance(fn, dict) and "name" in fn
    )
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    generation = body.get("generationConfig") or {}
    json_out = generation.get("responseMimeType") == "application/json"
    return Prompt(
        last_user_text=_last_user_text(body.get("contents") or []),
        tools=tools,
        forced_tool=_forced_tool(config, tools),
        output_schema=generation.get("responseJsonSchema") if json_out else None,
    )


def _last_user_text(contents: list[Any]) -> str:
    for content in reversed(contents):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            parts = [p for p in content.get("parts") or () if isinstance(p, dict)]
            return "".join(p.get("text", "") for p in parts if not p.get("thought"))
    return ""


def _forced_tool(config: dict[str, Any], tools: tuple[ToolSpec, ...]) -> str | None:
    if not tools or str(config.get("mode", "")).upper() != "ANY":
        return None
    allowed = config.get("allowedFunctionNames") or [tools[0].name]
    return allowed[0]


def usage(reply: Reply, *, final: bool = True) -> dict[str, int]:
    """Reverse of 5.10; `final=False` gives the running totals of a chunk before the last."""
    u = reply.usage
    prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
    if not final:
        return {"promptTokenCount": prompt, "totalTokenCount": prompt}
    metadata = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": u.output_tokens - u.thinking_tokens,
        "totalTokenCount": prompt + u.output_tokens,
    }
    if u.cache_read_input_tokens:
        metadata["cachedContentTokenCount"] = u.cache_read_input_tokens
    if u.thinking_tokens:
        metadata["thoughtsTokenCount"] = u.thinking_tokens
    return metadata


def render_json(reply: Reply) -> dict[str, Any]:
    parts = [part for i, block in enumerate(reply.blocks) for part in _parts(reply, i, block, 0)]
    return _chunk(reply, parts, final=True)


def render_stream(reply: Reply) -> list[bytes]:
    """One part a chunk; text is split, function calls arrive whole; the last chunk finishes."""
    size = reply.chunk_size
    parts = [part for i, block in enumerate(reply.blocks) for part in _parts(reply, i, block, size)]
    if not parts:
        parts = [{"text": ""}]
    chunks = [_chunk(reply, [part], final=False) for part in parts[:-1]]
    chunks.append(_chunk(reply, parts[-1:], final=True))
    return [data_frame(chunk, newline=CRLF) for chunk in chunks]


def _chunk(reply: Reply, parts: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if final:
        candidate["finishReason"] = FINISH_REASON[reply.stop_reason]
        candidate.update(_refusal(reply))
        if grounding := _grounding(reply):
            candidate["groundingMetadata"] = grounding
        if fetched := _url_context(reply):
            candidate["urlContextMetadata"] = fetched
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": usage(reply, final=final),
        "modelVersion": reply.model,
        "responseId": reply.reply_id,
    }


def _grounding(reply: Reply) -> dict[str, Any] | None:
    """Google Search grounding: the queries, each page once (Gemini's redirect urls are
    stood in for by the pages' own), and a support per cited text with its byte offsets."""
    searches = [b for b in reply.blocks if isinstance(b, WebSearchBlock)]
    if not searches:
        return None
    pages = list({p.url: p for b in searches for p in b.results}.values())
    index = {page.url: n for n, page in enumerate(pages)}
    supports, start = [], 0
    for block in reply.blocks:
        if not isinstance(block, TextBlock):
            continue
        end = start + len(block.text.encode())
        cited = [index[url] for url in block.cites if url in index]
        if cited:
            segment = {"startIndex": start, "endIndex": end, "text": block.text}
            supports.append({"segment": segment, "groundingChunkIndices": cited})
        start = end
    return {
        "webSearchQueries": [b.query for b in searches],
        "searchEntryPoint": {"renderedContent": '<div class="container">search</div>'},
        "groundingChunks": [{"web": {"uri": p.url, "title": p.title}} for p in pages],
        "groundingSupports": supports,
    }


def _url_context(reply: Reply) -> dict[str, Any] | None:
    """url_context: each url and whether it was retrieved (never the page's text)."""
    pages = [b for b in reply.blocks if isinstance(b, WebFetchBlock)]
    if not pages:
        return None
    statuses = [
        {
            "retrievedUrl": page.url,
            "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_ERROR"
            if page.failed
            else "URL_RETRIEVAL_STATUS_SUCCESS",
        }
        for page in pages
    ]
    return {"urlMetadata": statuses}


def _refusal(reply: Reply) -> dict[str, Any]:
    """A scripted refusal's details: a named category is a safety block with its rating, none
    is a recitation; the explanation is the `finishMessage`."""
    details = reply.stop_details
    if reply.stop_reason != "refusal" or details is None:
        return {}
    if details.category is None:
        fields: dict[str, Any] = {"finishReason": "RECITATION"}
    else:
        rating = {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
        fields = {"finishReason": "SAFETY", "safetyRatings": [{**rating, "blocked": True}]}
    if details.explanation:
        fields["finishMessage"] = details.explanation
    return fields


def _parts(reply: Reply, index: int, block: Block, size: int) -> list[dict[str, Any]]:
    """The parts of one block; `size` > 0 splits text into several parts (streaming)."""
    if isinstance(block, ToolUseBlock):
        call: dict[str, Any] = {"name": block.name, "args": block.input}
        if block.id:
            call["id"] = block.id
        part: dict[str, Any] = {"functionCall": call}
        signature = _first_call_signature(reply, index)
        if signature:
            part["thoughtSignature"] = signature
        return [part]
    if isinstance(block, TextBlock):
        return [{"text": text} for text in _split(block.text, size)]
    if isinstance(block, WebSearchBlock | WebFetchBlock):
        return []  # shown in the final chunk's groundingMetadata or urlContextMetadata
    if isinstance(block, CodeBlock):
        outcome = "OUTCOME_FAILED" if block.failed else "OUTCOME_OK"
        return [
            {"executableCode": {"language": "PYTHON", "code": block.code}},
            {"codeExecutionResult": {"outcome": outcome, "output": block.output}},
        ]
    texts = _split(block.thinking, size)
    thoughts = [{"text": text, "thought": True} for text in texts]
    thoughts[-1]["thoughtSignature"] = reply.signature(index, block)
    return thoughts


def _split(text: str, size: int) -> list[str]:
    return (pieces(text, size) or [""]) if size else [text]


def _first_call_signature(reply: Reply, index: int) -> str | None:
    """Like Gemini 3: the first function call of the turn carries a signature, the thinking's
    after thinking, one of its own otherwise (Gemini 3 signs calls even without thinking;
    earlier models only after thinking)."""
    first_call = next(i for i, b in enumerate(reply.blocks) if isinstance(b, ToolUseBlock))
    thinking = [(i, b) for i, b in enumerate(reply.blocks) if isinstance(b, ThinkingBlock)]
    if index != first_call:
        return None
    if thinking:
        return reply.signature(*thinking[0])
    return f"{CALL_SIGNATURE}{reply.reply_id}{index}" if GEMINI_3 in reply.model else None


# Gemini 3 (models named so) validates the thought signatures of the current turn's calls.
GEMINI_3 = "gemini-3"
CALL_SIGNATURE = "ZmFrZS1jYWxs"  # base64 "fake-call": this fake's signatures on calls
SKIP_SIGNATURE = "skip_thought_signature_validator"  # Gemini's documented placeholder
ISSUED = (CALL_SIGNATURE, "ZmFrZS1zaWc")  # what this fake's signatures start with


def check_request(body: dict[str, Any], model: str) -> tuple[int, dict[str, Any]] | None:
    """Gemini 3's check of a follow-up turn (reference 4.3): in the current turn (the model
    turns since the last user turn with text), the first function call of each model turn must
    carry a thought signature; one the model never issued is corrupt. The documented
    placeholder passes. None: the request passes."""
    if GEMINI_3 not in model:
        return None
    contents = [c for c in body.get("contents") or () if isinstance(c, dict)]
    for position, content in _current_turn(contents):
        parts = [p for p in content.get("parts") or () if isinstance(p, dict)]
        call = next((p for p in parts if "functionCall" in p), None)
        if call is None:
            continue
        name = str((call.get("functionCall") or {}).get("name", ""))
        signature = call.get("thoughtSignature")
        if not signature:
            message = (
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead "
                f"to degraded model performance. Additional data, function call `{name}` , "
                f"position {position}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
            return 400, error_body(400, message)
        if signature != SKIP_SIGNATURE and not str(signature).startswith(ISSUED):
            return 400, error_body(400, "Corrupted thought signature.")
    return None


def _current_turn(contents: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    turn: list[tuple[int, dict[str, Any]]] = []
    for position, content in reversed(list(enumerate(contents, start=1))):
        if content.get("role", "user") == "user":
            parts = [p for p in content.get("parts") or () if isinstance(p, dict)]
            if any("text" in p for p in parts):
                break
        else:
            turn.append((position, content))
    return turn
