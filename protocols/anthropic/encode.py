"""IR -> Anthropic Messages JSON (non-streaming responses and usage objects). Pure."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from core import ir

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
    # A count for each server tool at work (web fetches are not billed).
    server = {
        key: n
        for key, n in (
            ("web_search_requests", usage.web_search_requests),
            ("web_fetch_requests", usage.web_fetch_requests),
        )
        if n
    }
    if server:
        fields["server_tool_use"] = server
    return fields


def _opaque(value: Any) -> str:
    """Anthropic's `encrypted_*` fields are opaque to clients: ours say where the page was."""
    return base64.urlsafe_b64encode(_encoder.encode(value)).decode().rstrip("=")


def citation_json(citation: ir.Citation) -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "url": citation.url,
        "title": citation.title,
        "encrypted_index": _opaque({"url": citation.url, "text": citation.cited_text[:64]}),
        "cited_text": citation.cited_text,
    }


def search_hit_json(hit: ir.SearchHit) -> dict[str, Any]:
    return {
        "type": "web_search_result",
        "url": hit.url,
        "title": hit.title,
        "encrypted_content": _opaque({"url": hit.url, "title": hit.title}),
        "page_age": hit.page_age,
    }


def web_fetch_json(part: ir.WebFetchResult) -> dict[str, Any]:
    """Anthropic's `web_fetch_result` (the page as a text document) or its error block."""
    if part.error_code is not None:
        return {"type": "web_fetch_tool_result_error", "error_code": part.error_code}
    source = {"type": "text", "media_type": "text/plain", "data": part.text}
    return {
        "type": "web_fetch_result",
        "url": part.url,
        "content": {"type": "document", "source": source, "title": None},
        "retrieved_at": None,
    }


def cache_creation_json(usage: ir.Usage) -> dict[str, int]:
    """Anthropic's split of cache writes by TTL (what is not said to be 1-hour is 5-minute)."""
    hour = min(usage.cache_creation_1h_input_tokens or 0, usage.cache_creation_input_tokens)
    return {
        "ephemeral_5m_input_tokens": usage.cache_creation_input_tokens - hour,
        "ephemeral_1h_input_tokens": hour,
    }


def part_json(part: ir.Part) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        if not part.text:
            return None
        if part.citations is None:
            return {"type": "text", "text": part.text}
        citations = [citation_json(c) for c in part.citations]
        return {"type": "text", "text": part.text, "citations": citations}
    if isinstance(part, ir.ServerToolUse):
        return {"type": "server_tool_use", "id": part.id, "name": part.name, "input": part.input}
    if isinstance(part, ir.CodeExecutionResult):
        result = {
            "type": "code_execution_result",
            "stdout": part.stdout,
            "stderr": part.stderr,
            "return_code": part.return_code,
            "content": [],
        }
        return {
            "type": "code_execution_tool_result",
            "tool_use_id": part.tool_use_id,
            "content": result,
        }
    if isinstance(part, ir.WebSearchResult):
        return {
            "type": "web_search_tool_result",
            "tool_use_id": part.tool_use_id,
            "content": [search_hit_json(h) for h in part.results],
        }
    if isinstance(part, ir.WebFetchResult):
        return {
            "type": "web_fetch_tool_result",
            "tool_use_id": part.tool_use_id,
            "content": web_fetch_json(part),
        }
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
    if response.applied_edits is not None:
        message["context_management"] = context_management_json(response.applied_edits)
    return message


def context_management_json(edits: list[ir.AppliedEdit]) -> dict[str, Any]:
    applied = []
    for edit in edits:
        item: dict[str, Any] = {"type": edit.type}
        if edit.cleared_tool_uses is not None:
            item["cleared_tool_uses"] = edit.cleared_tool_uses
        if edit.cleared_thinking_turns is not None:
            item["cleared_thinking_turns"] = edit.cleared_thinking_turns
        item["cleared_input_tokens"] = edit.cleared_input_tokens
        applied.append(item)
    return {"applied_edits": applied}


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)
