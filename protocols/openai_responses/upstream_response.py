"""OpenAI Responses response object (JSON) -> IR response, for a Responses upstream. Pure.

Reference 5.8-5.10: output items map onto parts one by one. Reasoning items become thinking
blocks whose signature is an envelope carrying the item's id and `encrypted_content`, so the
next turn can replay them without server-side state; built-in tools (web search, code
interpreter) become Anthropic's server tool blocks. The helpers are shared with the stream
decoder (upstream_stream.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ir
from core.errors import upstream_error
from core.target import Target
from core.tokens import estimate_input_tokens, estimate_output_tokens
from protocols.envelope import seal
from protocols.openai_chat.upstream_response import (
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
from protocols.openai_responses.request import PROVIDER
from protocols.web_search import (
    citation,
    code_call,
    hits,
    search_call,
    server_tool_id,
    span,
)

_encode = msgspec.json.Encoder()


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


def failure(response: dict[str, Any]) -> str:
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
        raise upstream_error(500, failure(body))
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
