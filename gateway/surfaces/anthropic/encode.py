"""IR -> Anthropic Messages JSON (non-streaming responses and usage objects). Pure."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway import ir

_encoder = msgspec.json.Encoder()


def usage_json(
    usage: ir.Usage, service_tier: ir.ServiceTier | None = None, *, split: bool = True
) -> dict[str, Any]:
    """A message's `usage`; `split=False` for a `message_delta`'s, which has no
    `cache_creation` object (Anthropic's MessageDeltaUsage)."""
    fields: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }
    if split:
        fields["cache_creation"] = cache_creation_json(usage)
    fields["output_tokens"] = usage.output_tokens
    if service_tier is not None:  # only when the upstream said which capacity served it
        fields["service_tier"] = service_tier
    return fields


def cache_creation_json(usage: ir.Usage) -> dict[str, int]:
    """Anthropic's split of cache writes by TTL (what is not said to be 1-hour is 5-minute)."""
    hour = min(usage.cache_creation_1h_input_tokens or 0, usage.cache_creation_input_tokens)
    return {
        "ephemeral_5m_input_tokens": usage.cache_creation_input_tokens - hour,
        "ephemeral_1h_input_tokens": hour,
    }


def part_json(part: ir.Part) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ir.ToolUse):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.input}
    if isinstance(part, ir.Thinking):
        return {"type": "thinking", "thinking": part.thinking, "signature": part.signature}
    if isinstance(part, ir.RedactedThinking):
        return {"type": "redacted_thinking", "data": part.data}
    return None


def stop_details_json(details: ir.StopDetails) -> dict[str, Any]:
    return {"type": details.type, "category": details.category, "explanation": details.explanation}


def message_json(response: ir.Response, *, message_id: str, model: str) -> dict[str, Any]:
    content = [j for j in map(part_json, response.content) if j is not None]
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": response.stop_reason,
        "stop_sequence": response.stop_sequence,
    }
    if response.stop_details is not None:  # refusals only, as Anthropic sends it
        message["stop_details"] = stop_details_json(response.stop_details)
    message["usage"] = usage_json(response.usage, response.service_tier)
    return message


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)
