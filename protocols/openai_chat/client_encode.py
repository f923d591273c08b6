"""IR answer -> OpenAI Chat Completions JSON: the completion object (reference 2.5), its usage
and finish reason (5.9.2, 5.10 read backwards). Shared by the stream writer. Pure: the time
of creation is passed in (`created`), defaulting to now.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from core import ir
from protocols.surface import Extras

# Reference 5.9.2: the IR's stop reason as OpenAI's `finish_reason`.
FINISH_REASON: dict[str, str] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}
# The IR's served tier as OpenAI names it (`default` for standard capacity).
SERVICE_TIER = {"standard": "default", "priority": "priority", "batch": "default"}
_json = msgspec.json.Encoder()


def now() -> int:
    return int(time.time())


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASON.get(stop_reason or "end_turn", "stop")


def usage_json(usage: ir.Usage) -> dict[str, Any]:
    """OpenAI counts cached and cache-write tokens in the prompt, reasoning in the completion."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    prompt_details: dict[str, int] = {"cached_tokens": usage.cache_read_input_tokens}
    if usage.cache_creation_input_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_creation_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def url_citation(citation: ir.Citation, start: int, end: int) -> dict[str, Any]:
    """A web source as OpenAI's `url_citation` annotation over characters [start, end)."""
    cite = {
        "url": citation.url,
        "title": citation.title or "",
        "start_index": start,
        "end_index": end,
    }
    return {"type": "url_citation", "url_citation": cite}


def _text_and_annotations(parts: list[ir.Part]) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    notes: list[dict[str, Any]] = []
    at = 0
    for part in parts:
        if isinstance(part, ir.Text) and part.text:
            end = at + len(part.text)
            notes += [url_citation(c, at, end) for c in part.citations or []]
            texts.append(part.text)
            at = end
    return "".join(texts), notes


def tool_call_json(part: ir.ToolUse) -> dict[str, Any]:
    arguments = _json.encode(part.input).decode()
    return {
        "id": part.id,
        "type": "function",
        "function": {"name": part.name, "arguments": arguments},
    }


def message_json(response: ir.Response) -> dict[str, Any]:
    """`choices[0].message`: text joined (null when there is none), tool calls, the refusal's
    explanation, and reasoning as `reasoning_content` (server tools' own blocks have no place)."""
    text, notes = _text_and_annotations(response.content)
    refusal = None
    if response.stop_reason == "refusal" and response.stop_details is not None:
        refusal = response.stop_details.explanation
        if refusal and text == refusal:
            text = ""  # the refusal text, not an answer (OpenAI sets content null then)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "refusal": refusal,
        "annotations": notes,
    }
    calls = [tool_call_json(p) for p in response.content if isinstance(p, ir.ToolUse)]
    if calls:
        message["tool_calls"] = calls
    thinking = "".join(p.thinking for p in response.content if isinstance(p, ir.Thinking))
    if thinking:
        message["reasoning_content"] = thinking
    return message


def completion_json(
    response: ir.Response,
    *,
    response_id: str,
    model: str,
    extras: Extras | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """The `chat.completion` object; `model` as the client typed it. Extras (usage fields and
    top-level fields the client asked of the gateway) merge as on the Anthropic surface."""
    message = message_json(response)
    finish = finish_reason(response.stop_reason)
    if message["refusal"] is not None:
        # The model's own refusal: OpenAI says `stop` with `message.refusal` (its SDK's
        # `parse()` returns it); `content_filter` is for a filter that cut the answer.
        finish = "stop"
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    completion: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": now() if created is None else created,
        "model": model,
        "choices": [choice],
        "usage": usage_json(response.usage),
    }
    if response.service_tier is not None:
        completion["service_tier"] = SERVICE_TIER[response.service_tier]
    completion["system_fingerprint"] = None
    if extras is not None:
        usage_fields, top = extras(response.usage)
        completion["usage"] = {**completion["usage"], **usage_fields}
        completion.update(top)
    return completion
