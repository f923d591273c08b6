"""IR answer -> OpenAI Responses response object (reference 3.5). Pure but for the clock.

Output items in the IR's order: a thinking block is a `reasoning` item, a run of text blocks
one `message` item (a part per block, its citations as `url_citation` annotations), a tool
call a `function_call` item (its `call_id` the IR tool id), a web search a `web_search_call`.
A reasoning item's `encrypted_content` is the thinking block's signature (or a redacted
block's data, prefixed), given only when the client asks for it (`include`): sent back, it
decodes to the same block (client_items.py). Item ids derive from the response id.

The object echoes the request as OpenAI's does (instructions, tools, tool_choice, sampling,
text, reasoning) from the decoded request, with OpenAI's defaults when there is none.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from core import ir
from protocols.openai_responses.client_decode import namespaced, wants_encrypted_reasoning
from protocols.openai_responses.client_items import REDACTED_PREFIX
from protocols.surface import Extras

_json = msgspec.json.Encoder()
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
TIERS = {"priority": "priority", "standard": "default", "batch": "default"}


def item_id(prefix: str, response_id: str, index: int) -> str:
    """`rs_`/`msg_`/`fc_`/`ws_` + the response's own id and the item's place: unique, stable."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{index:03d}"


def usage_json(usage: ir.Usage) -> dict[str, Any]:
    """OpenAI counts cached and cache-written tokens inside `input_tokens` (reference 5.10)."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": prompt + usage.output_tokens,
    }


def reasoning_item(
    item: str, part: ir.Thinking | ir.RedactedThinking, encrypted: bool
) -> dict[str, Any]:
    if isinstance(part, ir.Thinking):
        summary = [{"type": "summary_text", "text": part.thinking}] if part.thinking else []
        secret = part.signature or None
    else:
        summary, secret = [], REDACTED_PREFIX + part.data
    return {
        "type": "reasoning",
        "id": item,
        "summary": summary,
        "encrypted_content": secret if encrypted else None,
        "status": "completed",
    }


def annotations(part: ir.Text) -> list[dict[str, Any]]:
    return [
        {
            "type": "url_citation",
            "url": c.url,
            "title": c.title or c.url,
            "start_index": 0,
            "end_index": len(part.text),
        }
        for c in part.citations or []
    ]


def text_part(part: ir.Text, refusal: bool = False) -> dict[str, Any]:
    if refusal:
        return {"type": "refusal", "refusal": part.text}
    return {
        "type": "output_text",
        "text": part.text,
        "annotations": annotations(part),
        "logprobs": [],
    }


def function_call_item(
    item: str,
    part: ir.ToolUse,
    arguments: str | None = None,
    namespaces: dict[str, tuple[str, str]] | None = None,
) -> dict:
    """`namespaces`: flattened name -> (namespace, name), a call of a namespace tool's function
    shown as OpenAI shows it (client_decode.namespaced)."""
    namespace, name = (namespaces or {}).get(part.name, (None, part.name))
    result = {
        "type": "function_call",
        "id": item,
        "call_id": part.id,
        "name": name,
        "arguments": _json.encode(part.input).decode() if arguments is None else arguments,
        "status": "completed",
    }
    if namespace is not None:
        result["namespace"] = namespace
    return result


def search_item(item: str, call: ir.ServerToolUse, hits: list[ir.SearchHit]) -> dict:
    query = call.input.get("query")
    action = {
        "type": "search",
        "query": query if isinstance(query, str) else "",
        "sources": [{"type": "url", "url": hit.url} for hit in hits],
    }
    return {"type": "web_search_call", "id": item, "status": "completed", "action": action}


def refused_in_words(response: ir.Response) -> int:
    """How many trailing text blocks are a refusal: all the text after the last other block,
    when the model refused (a refusal without text is a filter's cut: `incomplete`)."""
    if response.stop_reason != "refusal":
        return 0
    count = 0
    for part in reversed(response.content):
        if not isinstance(part, ir.Text):
            break
        count += 1
    return count


def output_items(
    response: ir.Response,
    response_id: str,
    encrypted: bool,
    namespaces: dict[str, tuple[str, str]] | None = None,
) -> list[dict]:
    items: list[dict[str, Any]] = []
    searches: dict[str, dict[str, Any]] = {}  # server tool id -> its web_search_call
    refusal_from = len(response.content) - refused_in_words(response)
    message: dict[str, Any] | None = None
    for n, part in enumerate(response.content):
        if isinstance(part, ir.Text) and part.text:
            if message is None:
                message = message_item(item_id("msg", response_id, len(items)))
                items.append(message)
            message["content"].append(text_part(part, refusal=n >= refusal_from))
            continue
        if isinstance(part, ir.Text):
            continue
        message = None
        index = len(items)
        if isinstance(part, ir.Thinking | ir.RedactedThinking):
            items.append(reasoning_item(item_id("rs", response_id, index), part, encrypted))
        elif isinstance(part, ir.ToolUse):
            fc_id = item_id("fc", response_id, index)
            items.append(function_call_item(fc_id, part, namespaces=namespaces))
        elif isinstance(part, ir.ServerToolUse) and part.name == "web_search":
            searches[part.id] = search_item(item_id("ws", response_id, index), part, [])
            items.append(searches[part.id])
        elif isinstance(part, ir.WebSearchResult) and part.tool_use_id in searches:
            sources = [{"type": "url", "url": hit.url} for hit in part.results]
            searches[part.tool_use_id]["action"]["sources"] = sources
        # Other server tools' blocks have no item a Responses client could have asked for.
    return items


def message_item(item: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item, "role": "assistant", "status": status, "content": []}


def terminal(stop_reason: str | None, refused_in_words: bool) -> tuple[str, dict | None]:
    """The response's `status` and `incomplete_details` for an IR stop reason."""
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop_reason == "refusal" and not refused_in_words:
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def echo(request: ir.Request | None) -> dict[str, Any]:
    """The request fields a response object repeats, OpenAI's defaults when absent."""
    wire = (request.raw_json if request is not None else None) or {}
    instructions, text = wire.get("instructions"), wire.get("text")
    fields: dict[str, Any] = {
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": request.max_tokens if request is not None else None,
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": "auto",
        "tools": [],
        # Validated by the decoder (client_schema.TextIn): the client's own, as OpenAI echoes it.
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "reasoning": {"effort": None, "summary": None},
    }
    if request is None:
        return fields
    if request.temperature is not None:
        fields["temperature"] = request.temperature
    if request.top_p is not None:
        fields["top_p"] = request.top_p
    fields["tools"] = _tools_json(request, wire) + [
        _search_tool_json(t) for t in request.server_tools
    ]
    choice = request.tool_choice
    if choice is not None:
        fields["parallel_tool_calls"] = not choice.disable_parallel_tool_use
        fields["tool_choice"] = (
            {"type": "function", "name": choice.name}
            if choice.type == "tool"
            else _TOOL_CHOICES[choice.type]
        )
    if isinstance(reasoning := wire.get("reasoning"), dict):
        summary = reasoning.get("summary") or reasoning.get("generate_summary")
        fields["reasoning"] = {"effort": reasoning.get("effort"), "summary": summary}
    return fields


def _tools_json(request: ir.Request, wire: dict[str, Any]) -> list[dict[str, Any]]:
    """The function tools, a namespace tool's functions grouped back under it."""
    names = namespaced(request)
    groups: dict[str, dict[str, Any]] = {}
    result: list[dict[str, Any]] = []
    for tool in request.tools:
        if tool.name not in names:
            result.append(_tool_json(tool))
            continue
        namespace, name = names[tool.name]
        if namespace not in groups:
            given = next(t for t in wire["tools"] if t.get("type") == "namespace"
                         and t.get("name") == namespace)  # fmt: skip
            groups[namespace] = {"type": "namespace", "name": namespace, "tools": []}
            groups[namespace]["description"] = given.get("description") or ""
            result.append(groups[namespace])
        groups[namespace]["tools"].append({**_tool_json(tool), "name": name})
    return result


def _tool_json(tool: ir.Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.input_schema,
        "strict": False,  # what every upstream was given (client_decode.py reports `true`)
    }


def _search_tool_json(tool: ir.ServerTool) -> dict[str, Any]:
    result: dict[str, Any] = {"type": tool.type}
    if tool.allowed_domains:
        result["filters"] = {"allowed_domains": tool.allowed_domains}
    if tool.user_location is not None:
        result["user_location"] = tool.user_location
    return result


def shell(
    response_id: str, model: str, request: ir.Request | None, created_at: float | None = None
) -> dict[str, Any]:
    """The response object without its outcome: what `response.created` carries."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time() if created_at is None else created_at),
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        **echo(request),
        "store": False,
        "metadata": {},
        "usage": None,
    }


def add_extras(body: dict[str, Any], usage: ir.Usage, extras: Extras | None) -> None:
    """Response extras the client asked for, merged as the Anthropic encoder merges them."""
    if extras is not None:
        usage_fields, top = extras(usage)
        body["usage"].update(usage_fields)
        body.update(top)


def response_json(
    response: ir.Response,
    *,
    response_id: str,
    model: str,
    extras: Extras | None = None,
    request: ir.Request | None = None,
    created_at: float | None = None,
) -> dict[str, Any]:
    encrypted = request is None or wants_encrypted_reasoning(request)
    body = shell(response_id, model, request, created_at)
    body["output"] = output_items(response, response_id, encrypted, namespaced(request))
    body["status"], body["incomplete_details"] = terminal(
        response.stop_reason, refused_in_words(response) > 0
    )
    body["usage"] = usage_json(response.usage)
    if response.service_tier is not None:
        body["service_tier"] = TIERS[response.service_tier]
    add_extras(body, response.usage, extras)
    return body
