"""OpenAI Responses surface: reads requests, renders replies as a response object and its events.

Wire format: reference sections 3.5 (response object), 3.6 (streaming), 3.7 (errors), 5.9.2.
Errors share the Chat Completions shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import openai_chat
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
    last_user_text,
)
from .sse import encode, event_frame, json_fragments, json_text, pieces

# stop reason -> (status, incomplete_details.reason)
TERMINAL: dict[str, tuple[str, str | None]] = {
    "max_tokens": ("incomplete", "max_output_tokens"),
    "model_context_window_exceeded": ("incomplete", "max_output_tokens"),
    "refusal": ("incomplete", "content_filter"),
}

has_auth = openai_chat.has_auth
error_body = openai_chat.error_body
credential_error = openai_chat.credential_error
refusal_text = openai_chat.refusal_text


# The header in which the real API names each call (every answer carries one).
REQUEST_ID_HEADER = "x-request-id"


def count_tokens(tokens: int) -> dict[str, Any]:
    """`POST /v1/responses/input_tokens` (reference 5.15)."""
    return {"object": "response.input_tokens", "input_tokens": tokens}


Event = dict[str, Any]


def read_prompt(body: dict[str, Any]) -> Prompt:
    tools = tuple(
        ToolSpec(tool["name"], tool.get("parameters") or {})
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and tool.get("type") == "function" and "name" in tool
    )
    text_format = (body.get("text") or {}).get("format") or {}
    return Prompt(
        last_user_text=last_user_text(body.get("input"), "input_text"),
        tools=tools,
        forced_tool=_forced_tool(body.get("tool_choice"), tools),
        service_tier=openai_chat.asked_tier(body.get("service_tier")),
        output_schema=text_format.get("schema")
        if text_format.get("type") == "json_schema"
        else None,
    )


def cache_prefix(body: dict[str, Any]) -> tuple[str | None, bytes]:
    """`prompt_cache_key`, and the prefix OpenAI would cache: instructions and tools."""
    key = body.get("prompt_cache_key")
    if not isinstance(key, str):
        return None, b""
    return key, encode([body.get("instructions") or "", body.get("tools") or []])


def _forced_tool(choice: Any, tools: tuple[ToolSpec, ...]) -> str | None:
    if not tools:
        return None
    if choice == "required":
        return tools[0].name
    if isinstance(choice, dict) and choice.get("type") == "function":
        return choice.get("name") or tools[0].name
    return None


def usage(reply: Reply) -> dict[str, Any]:
    chat = openai_chat.usage(reply)
    return {
        "input_tokens": chat["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": reply.usage.cache_read_input_tokens},
        "output_tokens": chat["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": reply.usage.thinking_tokens},
        "total_tokens": chat["total_tokens"],
    }


def render_json(reply: Reply) -> dict[str, Any]:
    items = [_item(reply, i, block) for i, block in enumerate(_shown(reply))]
    if (refusal := _refusal_item(reply)) is not None:
        items.append(refusal)
    return _response(reply, items)


def _shown(reply: Reply) -> list[Block]:
    """The blocks Responses has items for: it has no web fetch tool."""
    return [b for b in reply.blocks if not isinstance(b, WebFetchBlock)]


def _refusal_item(reply: Reply) -> dict[str, Any] | None:
    """A scripted refusal with an explanation: a message whose part is the refusal text."""
    text = refusal_text(reply)
    if text is None:
        return None
    return {
        "type": "message",
        "id": f"msg_{reply.reply_id[:16]}r",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "refusal", "refusal": text}],
    }


def render_stream(reply: Reply) -> list[bytes]:
    created = {**_response(reply, []), "status": "in_progress", "usage": None}
    created["incomplete_details"] = None
    events: list[Event] = [
        {"type": "response.created", "response": created},
        {"type": "response.in_progress", "response": created},
    ]
    items = []
    for index, block in enumerate(_shown(reply)):
        item = _item(reply, index, block)
        items.append(item)
        events.extend(_item_events(reply, index, block, item))
    if (refusal := _refusal_item(reply)) is not None:
        items.append(refusal)
        events.extend(_refusal_events(reply, len(items) - 1, refusal))
    final = _response(reply, items)
    terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
    events.append({"type": terminal, "response": final})
    return [
        event_frame(event["type"], {"type": event["type"], "sequence_number": number, **event})
        for number, event in enumerate(events)
    ]


def _response(reply: Reply, output: list[dict[str, Any]]) -> dict[str, Any]:
    status, reason = TERMINAL.get(reply.stop_reason, ("completed", None))
    if refusal_text(reply):
        status, reason = "completed", None  # the model refused in words, it was not cut
    return {
        "id": "resp_" + reply.reply_id,
        "object": "response",
        "created_at": reply.created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "model": reply.model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage(reply),
        "service_tier": openai_chat.ANSWERED_TIER[reply.service_tier],
    }


def _item(reply: Reply, index: int, block: Block) -> dict[str, Any]:
    """The finished output item for one block."""
    suffix = f"{reply.reply_id[:16]}{index}"
    if isinstance(block, ThinkingBlock):
        return {
            "type": "reasoning",
            "id": "rs_" + suffix,
            "summary": [{"type": "summary_text", "text": block.thinking}],
            "encrypted_content": reply.signature(index, block),
            "status": "completed",
        }
    if isinstance(block, CodeBlock):
        return {
            "type": "code_interpreter_call",
            "id": "ci_" + suffix,
            "status": "failed" if block.failed else "completed",
            "code": block.code,
            "container_id": "cntr_" + reply.reply_id[:16],
            "outputs": [{"type": "logs", "logs": block.output}],
        }
    if isinstance(block, WebSearchBlock):
        sources = [{"type": "url", "url": page.url} for page in block.results]
        return {
            "type": "web_search_call",
            "id": "ws_" + suffix,
            "status": "completed",
            "action": {"type": "search", "query": block.query, "sources": sources},
        }
    if isinstance(block, TextBlock):
        notes = _annotations(reply, block)
        part = {"type": "output_text", "text": block.text, "annotations": notes, "logprobs": []}
        return {
            "type": "message",
            "id": "msg_" + suffix,
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }
    return {
        "type": "function_call",
        "id": "fc_" + suffix,
        "call_id": reply.tool_id(index, block, "call_"),
        "name": block.name,
        "arguments": json_text(block.input),
        "status": "completed",
    }


def _item_events(reply: Reply, index: int, block: Block, item: dict[str, Any]) -> Iterator[Event]:
    where = {"item_id": item["id"], "output_index": index}
    if isinstance(block, ThinkingBlock):
        opening = {**item, "summary": []}
        del opening["encrypted_content"], opening["status"]
        body = _summary_events(reply, block, where)
    elif isinstance(block, TextBlock):
        opening = {**item, "status": "in_progress", "content": []}
        body = _text_events(reply, block, where)
    elif isinstance(block, CodeBlock):
        opening = {**item, "status": "in_progress", "code": "", "outputs": None}
        body = _code_events(reply, block, where)
    elif isinstance(block, WebSearchBlock):
        opening = {"type": item["type"], "id": item["id"], "status": "in_progress"}
        body = iter(
            {"type": f"response.web_search_call.{step}", **where}
            for step in ("in_progress", "searching", "completed")
        )
    else:
        opening = {**item, "arguments": "", "status": "in_progress"}
        body = _argument_events(reply, block, where)
    yield {"type": "response.output_item.added", "output_index": index, "item": opening}
    yield from body
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def _refusal_events(reply: Reply, index: int, item: dict[str, Any]) -> Iterator[Event]:
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    text = item["content"][0]["refusal"]
    yield {"type": "response.output_item.added", "output_index": index,
           "item": {**item, "status": "in_progress", "content": []}}  # fmt: skip
    part = {"type": "refusal", "refusal": ""}
    yield {"type": "response.content_part.added", **where, "part": part}
    for piece in pieces(text, reply.chunk_size):
        yield {"type": "response.refusal.delta", **where, "delta": piece}
    yield {"type": "response.refusal.done", **where, "refusal": text}
    yield {"type": "response.content_part.done", **where, "part": {**part, "refusal": text}}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def _summary_events(reply: Reply, block: ThinkingBlock, where: Event) -> Iterator[Event]:
    where = {**where, "summary_index": 0}
    part = {"type": "summary_text", "text": block.thinking}
    yield {"type": "response.reasoning_summary_part.added", **where, "part": {**part, "text": ""}}
    for piece in pieces(block.thinking, reply.chunk_size):
        yield {"type": "response.reasoning_summary_text.delta", **where, "delta": piece}
    yield {"type": "response.reasoning_summary_text.done", **where, "text": block.thinking}
    yield {"type": "response.reasoning_summary_part.done", **where, "part": part}


def _text_events(reply: Reply, block: TextBlock, where: Event) -> Iterator[Event]:
    where = {**where, "content_index": 0}
    part = {"type": "output_text", "text": block.text, "annotations": []}
    yield {"type": "response.content_part.added", **where, "part": {**part, "text": ""}}
    for piece in pieces(block.text, reply.chunk_size):
        yield {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
    for number, note in enumerate(_annotations(reply, block)):
        yield {"type": "response.output_text.annotation.added", **where,
               "annotation_index": number, "annotation": note}  # fmt: skip
    yield {"type": "response.output_text.done", **where, "text": block.text, "logprobs": []}
    yield {"type": "response.content_part.done", **where, "part": part}


def _code_events(reply: Reply, block: CodeBlock, where: Event) -> Iterator[Event]:
    yield {"type": "response.code_interpreter_call.in_progress", **where}
    for piece in pieces(block.code, reply.chunk_size):
        yield {"type": "response.code_interpreter_call_code.delta", **where, "delta": piece}
    yield {"type": "response.code_interpreter_call_code.done", **where, "code": block.code}
    yield {"type": "response.code_interpreter_call.interpreting", **where}
    yield {"type": "response.code_interpreter_call.completed", **where}


def _annotations(reply: Reply, block: TextBlock) -> list[dict[str, Any]]:
    """`url_citation`s of the whole text, one per page it cites."""
    return [
        {
            "type": "url_citation",
            "start_index": 0,
            "end_index": len(block.text),
            "url": url,
            "title": reply.page_title(url),
        }
        for url in block.cites
    ]


def _argument_events(reply: Reply, block: ToolUseBlock, where: Event) -> Iterator[Event]:
    arguments = json_text(block.input)
    for fragment in json_fragments(arguments, reply.chunk_size):
        yield {"type": "response.function_call_arguments.delta", **where, "delta": fragment}
    done = {"name": block.name, "arguments": arguments}
    yield {"type": "response.function_call_arguments.done", **where, **done}
