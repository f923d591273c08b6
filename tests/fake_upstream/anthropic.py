"""Anthropic Messages surface: reads requests, renders replies as JSON and named-event SSE.

Wire format: reference sections 1.6 (response), 1.7 (streaming), 1.8 (errors), 1.9 (count_tokens).
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
    WebFetchBlock,
    WebSearchBlock,
)
from .sse import event_frame, json_fragments, json_text, pieces

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

PING = b'event: ping\ndata: {"type": "ping"}\n\n'


# The header in which the real API names each call (every answer carries one).
REQUEST_ID_HEADER = "request-id"


def has_auth(headers: dict[str, str], query: dict[str, str]) -> bool:
    """Like the real API (reference 1.2): `x-api-key` or `Authorization: Bearer`."""
    return bool(headers.get("x-api-key", "").strip()) or openai_chat.has_auth(headers, query)


def error_body(status: int, message: str) -> dict[str, Any]:
    default = "api_error" if status >= 500 else "invalid_request_error"
    error = {"type": ERROR_TYPES.get(status, default), "message": message}
    return {"type": "error", "error": error, "request_id": "req_fake"}


def credential_error(key: str) -> tuple[int, dict[str, Any]]:
    """What Anthropic answers a revoked or unknown key."""
    return 401, error_body(401, "invalid x-api-key")


def count_tokens(tokens: int) -> dict[str, Any]:
    return {"input_tokens": tokens}


def stop_details(reply: Reply) -> dict[str, Any] | None:
    details = reply.stop_details
    if details is None or reply.stop_reason != "refusal":
        return None
    return {"type": "refusal", "category": details.category, "explanation": details.explanation}


def read_prompt(body: dict[str, Any]) -> Prompt:
    tools = tuple(
        ToolSpec(tool["name"], tool.get("input_schema") or {})
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and "name" in tool
    )
    return Prompt(
        last_user_text=_last_user_text(body.get("messages") or []),
        tools=tools,
        forced_tool=_forced_tool(body.get("tool_choice"), tools),
        output_schema=_output_schema(body.get("output_config")),
    )


def _output_schema(config: Any) -> dict[str, Any] | None:
    """Structured outputs: `output_config.format` `{"type": "json_schema", "schema": ...}`."""
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: Any) -> str:
    """Text of a content value; a user turn holding only tool results yields their text."""
    if isinstance(content, str):
        return content
    blocks = [b for b in content or () if isinstance(b, dict)]
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    if text:
        return text
    return "".join(_text_of(b.get("content")) for b in blocks if b.get("type") == "tool_result")


def _forced_tool(choice: Any, tools: tuple[ToolSpec, ...]) -> str | None:
    if not tools or not isinstance(choice, dict):
        return None
    if choice.get("type") == "any":
        return tools[0].name
    if choice.get("type") == "tool":
        return choice.get("name") or tools[0].name
    return None


def usage(reply: Reply, *, split: bool = True) -> dict[str, Any]:
    """A message's usage; a `message_delta`'s (`split=False`) has no `cache_creation`."""
    u = reply.usage
    out: dict[str, Any] = {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
    }
    searches = sum(isinstance(b, WebSearchBlock) for b in reply.blocks)
    fetches = sum(isinstance(b, WebFetchBlock) for b in reply.blocks)
    if searches or fetches:
        out["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": fetches}
    if split:
        hour = u.cache_creation_1h_input_tokens
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": u.cache_creation_input_tokens - hour,
            "ephemeral_1h_input_tokens": hour,
        }
    return out


def render_json(reply: Reply) -> dict[str, Any]:
    message = {
        **_message(reply),
        "content": [b for i, block in enumerate(reply.blocks) for b in _blocks(reply, i, block)],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
    }
    if (details := stop_details(reply)) is not None:
        message["stop_details"] = details
    return {**message, "usage": usage(reply)}


def render_stream(reply: Reply) -> list[bytes]:
    shell = {**_message(reply), "content": [], "stop_reason": None, "stop_sequence": None}
    shell["usage"] = {**usage(reply), "output_tokens": 1}
    frames = [_event({"type": "message_start", "message": shell})]
    index = 0
    for number, block in enumerate(reply.blocks):
        if isinstance(block, WebSearchBlock | CodeBlock | WebFetchBlock):
            frames.extend(_server_frames(reply, number, block, index))
            index += 2
            continue
        frames.append(
            _event({"type": "content_block_start", "index": index, **_shell(reply, number, block)})
        )
        if index == 0:
            frames.append(PING)
        frames.extend(_event({**d, "index": index}) for d in _deltas(reply, number, block))
        frames.append(_event({"type": "content_block_stop", "index": index}))
        index += 1
    if not reply.blocks:
        frames.append(PING)
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
    if (details := stop_details(reply)) is not None:
        delta["stop_details"] = details  # reference 1.7.6
    frames.append(
        _event({"type": "message_delta", "delta": delta, "usage": usage(reply, split=False)})
    )
    frames.append(_event({"type": "message_stop"}))
    return frames


def _event(payload: dict[str, Any]) -> bytes:
    return event_frame(payload["type"], payload)


def _message(reply: Reply) -> dict[str, Any]:
    return {
        "id": "msg_" + reply.reply_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
    }


def _blocks(reply: Reply, index: int, block: Block) -> list[dict[str, Any]]:
    """The content blocks of one scripted block: a server tool's run is two (call, result)."""
    if not isinstance(block, WebSearchBlock | CodeBlock | WebFetchBlock):
        return [_block(reply, index, block)]
    call_id = f"srvtoolu_{reply.reply_id[:16]}{index}"
    if isinstance(block, WebSearchBlock):
        pages = [
            {
                "type": "web_search_result",
                "url": page.url,
                "title": page.title,
                "encrypted_content": "RmFrZVBhZ2U" + str(n),
                "page_age": None,
            }
            for n, page in enumerate(block.results)
        ]
        name, given = "web_search", {"query": block.query}
        result = {"type": "web_search_tool_result", "tool_use_id": call_id, "content": pages}
    elif isinstance(block, WebFetchBlock):
        name, given = "web_fetch", {"url": block.url}
        result = {"type": "web_fetch_tool_result", "tool_use_id": call_id, "content": _page(block)}
    else:
        name, given = "code_execution", {"code": block.code}
        output = {
            "type": "code_execution_result",
            "stdout": "" if block.failed else block.output,
            "stderr": block.output if block.failed else "",
            "return_code": 1 if block.failed else 0,
            "content": [],
        }
        result = {"type": "code_execution_tool_result", "tool_use_id": call_id, "content": output}
    call = {"type": "server_tool_use", "id": call_id, "name": name, "input": given}
    return [call, result]


def _page(block: WebFetchBlock) -> dict[str, Any]:
    """A fetched page as Anthropic returns it: a text document, or the fetch's error."""
    if block.failed:
        return {"type": "web_fetch_tool_result_error", "error_code": "url_not_accessible"}
    source = {"type": "text", "media_type": "text/plain", "data": f"The page at {block.url}."}
    document = {"type": "document", "source": source, "title": block.url}
    return {
        "type": "web_fetch_result",
        "url": block.url,
        "content": document,
        "retrieved_at": "2026-01-01T00:00:00Z",
    }


def _server_frames(reply: Reply, number: int, block: Block, index: int) -> Iterator[bytes]:
    """A server tool's call (its input as input_json_delta) and its result (whole at start)."""
    call, result = _blocks(reply, number, block)
    yield _event(
        {"type": "content_block_start", "index": index, "content_block": {**call, "input": {}}}
    )
    if index == 0:
        yield PING
    delta = {"type": "input_json_delta", "partial_json": json_text(call["input"])}
    yield _event({"type": "content_block_delta", "index": index, "delta": delta})
    yield _event({"type": "content_block_stop", "index": index})
    yield _event({"type": "content_block_start", "index": index + 1, "content_block": result})
    yield _event({"type": "content_block_stop", "index": index + 1})


def _citations(reply: Reply, block: TextBlock) -> list[dict[str, Any]]:
    return [
        {
            "type": "web_search_result_location",
            "url": url,
            "title": reply.page_title(url),
            "encrypted_index": "RmFrZUluZGV4",
            "cited_text": block.text[:150],
        }
        for url in block.cites
    ]


def _block(reply: Reply, index: int, block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        if block.cites:
            return {"type": "text", "text": block.text, "citations": _citations(reply, block)}
        return {"type": "text", "text": block.text}
    if isinstance(block, ThinkingBlock):
        signature = reply.signature(index, block)
        return {"type": "thinking", "thinking": block.thinking, "signature": signature}
    tool_id = reply.tool_id(index, block, "toolu_")
    return {"type": "tool_use", "id": tool_id, "name": block.name, "input": block.input}


def _shell(reply: Reply, index: int, block: Block) -> dict[str, Any]:
    """The `content_block_start` shell: the block with its content emptied (1.7.3)."""
    if isinstance(block, TextBlock):
        return {"content_block": {"type": "text", "text": ""}}
    if isinstance(block, ThinkingBlock):
        return {"content_block": {"type": "thinking", "thinking": "", "signature": ""}}
    return {"content_block": {**_block(reply, index, block), "input": {}}}


def _deltas(reply: Reply, index: int, block: Block) -> Iterator[dict[str, Any]]:
    size = reply.chunk_size
    if isinstance(block, TextBlock):
        kind, key, fragments = "text_delta", "text", pieces(block.text, size)
    elif isinstance(block, ThinkingBlock):
        kind, key, fragments = "thinking_delta", "thinking", pieces(block.thinking, size)
    else:
        arguments = json_text(block.input)
        kind, key = "input_json_delta", "partial_json"
        fragments = ["", *json_fragments(arguments, size)] if block.input else [""]
    for fragment in fragments:
        yield {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": kind, key: fragment},
        }
    if isinstance(block, TextBlock):
        for citation in _citations(reply, block):
            delta = {"type": "citations_delta", "citation": citation}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    if isinstance(block, ThinkingBlock):
        signature = {"type": "signature_delta", "signature": reply.signature(index, block)}
        yield {"type": "content_block_delta", "index": index, "delta": signature}
