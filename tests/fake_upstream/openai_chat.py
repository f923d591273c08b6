"""OpenAI Chat Completions surface: reads requests, renders replies as JSON and `data:` SSE.

Wire format: reference sections 2.5 (response), 2.6 (streaming), 2.7 (errors), 5.9.2 and 5.10.
Reasoning goes out as `reasoning_content`, the extension OpenAI-compatible servers use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .scenario import (
    Prompt,
    Reply,
    ServiceTier,
    TextBlock,
    ThinkingBlock,
    ToolSpec,
    ToolUseBlock,
    last_user_text,
)
from .sse import data_frame, encode, json_fragments, json_text, pieces

FINISH_REASON = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}

ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
    503: ("service_unavailable_error", None),
}

DONE = b"data: [DONE]\n\n"


# The header in which the real API names each call (every answer carries one).
REQUEST_ID_HEADER = "x-request-id"


def has_auth(headers: dict[str, str], query: dict[str, str]) -> bool:
    if headers.get("api-key", "").strip():  # Azure OpenAI's header
        return True
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def error_body(status: int, message: str) -> dict[str, Any]:
    default = "server_error" if status >= 500 else "invalid_request_error"
    kind, code = ERROR_KINDS.get(status, (default, None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def credential_error(key: str) -> tuple[int, dict[str, Any]]:
    """What OpenAI answers a revoked or unknown key (it shows the key masked)."""
    masked = key[:3] + "*" * max(0, len(key) - 7) + key[-4:]
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    error = {"message": message, "type": "invalid_request_error", "param": None}
    return 401, {"error": {**error, "code": "invalid_api_key"}}


def refusal_text(reply: Reply) -> str | None:
    """A scripted refusal with an explanation is the model's refusal text (`message.refusal`);
    without one it is the content filter that stopped the reply (`content_filter`)."""
    details = reply.stop_details
    if reply.stop_reason != "refusal" or details is None:
        return None
    return details.explanation or None


def finish_reason(reply: Reply) -> str:
    return "stop" if refusal_text(reply) else FINISH_REASON[reply.stop_reason]


def read_prompt(body: dict[str, Any]) -> Prompt:
    tools = tuple(
        ToolSpec(tool["function"]["name"], tool["function"].get("parameters") or {})
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    )
    stream_options = body.get("stream_options") or {}
    response_format = body.get("response_format") or {}
    return Prompt(
        last_user_text=last_user_text(body.get("messages") or [], "text"),
        tools=tools,
        forced_tool=_forced_tool(body.get("tool_choice"), tools),
        include_usage=bool(stream_options.get("include_usage")),
        service_tier=asked_tier(body.get("service_tier")),
        output_schema=(response_format.get("json_schema") or {}).get("schema")
        if response_format.get("type") == "json_schema"
        else None,
    )


def cache_prefix(body: dict[str, Any]) -> tuple[str | None, bytes]:
    """`prompt_cache_key`, and the prefix OpenAI would cache: the leading system and developer
    messages and the tools (what stays the same turn after turn)."""
    key = body.get("prompt_cache_key")
    if not isinstance(key, str):
        return None, b""
    head = []
    for message in body.get("messages") or ():
        if not isinstance(message, dict) or message.get("role") not in ("system", "developer"):
            break
        head.append(message)
    return key, encode([head, body.get("tools") or []])


# OpenAI's `service_tier` values and the capacity each one gets here: `auto` and `default`
# run on standard capacity unless the project has priority (a scripted `service_tier`).
ASKED_TIER: dict[Any, ServiceTier] = {"priority": "priority", "flex": "flex"}
ANSWERED_TIER = {"standard": "default", "priority": "priority", "flex": "flex"}


def asked_tier(value: Any) -> ServiceTier:
    return ASKED_TIER.get(value, "standard")


def _forced_tool(choice: Any, tools: tuple[ToolSpec, ...]) -> str | None:
    if not tools:
        return None
    if choice == "required":
        return tools[0].name
    if isinstance(choice, dict) and choice.get("type") == "function":
        return (choice.get("function") or {}).get("name") or tools[0].name
    return None


def usage(reply: Reply) -> dict[str, Any]:
    """Reverse of 5.10: prompt tokens include cached ones, completion includes reasoning."""
    u = reply.usage
    prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
    prompt_details: dict[str, int] = {"cached_tokens": u.cache_read_input_tokens}
    if u.cache_creation_input_tokens:
        prompt_details["cache_write_tokens"] = u.cache_creation_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": u.thinking_tokens},
    }


def render_json(reply: Reply) -> dict[str, Any]:
    text = "".join(b.text for b in reply.blocks if isinstance(b, TextBlock))
    thinking = "".join(b.thinking for b in reply.blocks if isinstance(b, ThinkingBlock))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "refusal": refusal_text(reply),
        "annotations": annotations(reply),
    }
    if thinking:
        message["reasoning_content"] = thinking
    calls = [
        {
            "id": reply.tool_id(i, block, "call_"),
            "type": "function",
            "function": {"name": block.name, "arguments": json_text(block.input)},
        }
        for i, block in _tool_calls(reply)
    ]
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "logprobs": None}
    return {
        **_head(reply, "chat.completion"),
        "choices": [{**choice, "finish_reason": finish_reason(reply)}],
        "usage": usage(reply),
        "service_tier": ANSWERED_TIER[reply.service_tier],
    }


def render_stream(reply: Reply) -> list[bytes]:
    head = _head(reply, "chat.completion.chunk")
    tail = {"usage": None} if reply.include_usage else {}
    frames = [
        data_frame({**head, "choices": [_choice(delta, None)], **tail}) for delta in _deltas(reply)
    ]
    finish = _choice({}, finish_reason(reply))
    frames.append(data_frame({**head, "choices": [finish], **tail}))
    if reply.include_usage:
        frames.append(data_frame({**head, "choices": [], "usage": usage(reply)}))
    frames.append(DONE)
    return frames


def _head(reply: Reply, kind: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-" + reply.reply_id,
        "object": kind,
        "created": reply.created,
        "model": reply.model,
        "service_tier": ANSWERED_TIER[reply.service_tier],  # on every chunk, as OpenAI sends it
        "system_fingerprint": "fp_fake",
    }


def _choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _deltas(reply: Reply) -> list[dict[str, Any]]:
    """All deltas before the finish chunk; the first one also carries the role."""
    deltas = list(_content_deltas(reply))
    if not deltas:
        return [{"role": "assistant", "content": ""}]
    first = {"role": "assistant", **deltas[0]}
    if "tool_calls" in first:
        first["content"] = None
    return [first, *deltas[1:]]


def annotations(reply: Reply) -> list[dict[str, Any]]:
    """A search model's `url_citation`s, with offsets into the message's whole text."""
    notes, start = [], 0
    for block in reply.blocks:
        if not isinstance(block, TextBlock):
            continue
        for url in block.cites:
            cite = {"url": url, "title": reply.page_title(url)}
            cite.update(start_index=start, end_index=start + len(block.text))
            notes.append({"type": "url_citation", "url_citation": cite})
        start += len(block.text)
    return notes


def _content_deltas(reply: Reply) -> Iterator[dict[str, Any]]:
    size = reply.chunk_size
    for block in reply.blocks:
        if isinstance(block, ThinkingBlock):
            yield from ({"reasoning_content": piece} for piece in pieces(block.thinking, size))
        elif isinstance(block, TextBlock):
            yield from ({"content": piece} for piece in pieces(block.text, size))
    if notes := annotations(reply):
        yield {"annotations": notes}  # as search models send them: after the text
    yield from ({"refusal": piece} for piece in pieces(refusal_text(reply) or "", size))
    for index, block in _tool_calls(reply):
        yield {"tool_calls": [_call_opening(reply, index, block)]}
        for fragment in json_fragments(json_text(block.input), size):
            yield {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}


def _call_opening(reply: Reply, index: int, block: ToolUseBlock) -> dict[str, Any]:
    return {
        "index": index,
        "id": reply.tool_id(index, block, "call_"),
        "type": "function",
        "function": {"name": block.name, "arguments": ""},
    }


def _tool_calls(reply: Reply) -> list[tuple[int, ToolUseBlock]]:
    calls = (block for block in reply.blocks if isinstance(block, ToolUseBlock))
    return list(enumerate(calls))
