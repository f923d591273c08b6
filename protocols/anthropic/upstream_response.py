"""Anthropic Messages answer (JSON) -> IR response, for an Anthropic upstream. Pure.

The inverse of encode.py. Lenient where decode.py is strict: decode.py judges a client's
request and answers 400 with Anthropic's wording, while a provider's odd answer is its own
fault (a shape error surfaces as stream.UNREADABLE, an `InvalidAnswer`), so the two share no
block decoding. Block types the IR has no part for (`container_upload`, newer tools) are left
out; a pass-through client still gets them in the body it is forwarded.
"""

from __future__ import annotations

from typing import Any, get_args

from core import ir

SERVICE_TIERS = frozenset(get_args(ir.ServiceTier))
STOP_REASONS = frozenset(get_args(ir.StopReason))


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from(data: dict[str, Any], base: ir.Usage | None = None) -> ir.Usage:
    """A message's `usage`, or a `message_delta`'s (cumulative) laid over `base`."""
    usage = base or ir.Usage()
    for field in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
        value = _int(data, field)
        if value is not None:
            setattr(usage, field, value)
    creation = data.get("cache_creation")
    if isinstance(creation, dict) and _int(creation, "ephemeral_1h_input_tokens") is not None:
        usage.cache_creation_1h_input_tokens = creation["ephemeral_1h_input_tokens"]
    details = data.get("output_tokens_details")
    if isinstance(details, dict) and _int(details, "thinking_tokens") is not None:
        usage.reasoning_tokens = details["thinking_tokens"]
    server = data.get("server_tool_use")
    if isinstance(server, dict) and _int(server, "web_search_requests") is not None:
        usage.web_search_requests = server["web_search_requests"]  # billed per search
    if isinstance(server, dict) and _int(server, "web_fetch_requests") is not None:
        usage.web_fetch_requests = server["web_fetch_requests"] or None
    return usage


def service_tier_from(usage: Any) -> ir.ServiceTier | None:
    tier = usage.get("service_tier") if isinstance(usage, dict) else None
    return tier if tier in SERVICE_TIERS else None


def stop_reason_from(value: Any) -> ir.StopReason:
    """A stop reason the IR knows; a newer one reads as the end of the turn."""
    return value if value in STOP_REASONS else "end_turn"


def stop_details_from(data: Any) -> ir.StopDetails | None:
    if not isinstance(data, dict) or data.get("type") != "refusal":
        return None
    category, explanation = data.get("category"), data.get("explanation")
    return ir.StopDetails(
        category=category if isinstance(category, str) else None,
        explanation=explanation if isinstance(explanation, str) else None,
    )


# --- Content blocks ---------------------------------------------------------------------------
def citation_from(data: Any) -> ir.Citation | None:
    """A web source; document citations (`char_location`...) point at the client's own
    documents, which the IR cannot name, so they are left out."""
    if not isinstance(data, dict) or data.get("type") != "web_search_result_location":
        return None
    url, title = data.get("url"), data.get("title")
    if not isinstance(url, str):
        return None
    cited = data.get("cited_text")
    return ir.Citation(
        url=url,
        title=title if isinstance(title, str) else None,
        cited_text=cited if isinstance(cited, str) else "",
    )


def _text(block: dict[str, Any]) -> ir.Text:
    found = [c for c in map(citation_from, block.get("citations") or []) if c is not None]
    return ir.Text(block.get("text") or "", citations=found or None)


def _tool_use(block: dict[str, Any]) -> ir.ToolUse:
    return ir.ToolUse(id=block["id"], name=block["name"], input=block.get("input") or {})


def _server_tool_use(block: dict[str, Any]) -> ir.ServerToolUse:
    return ir.ServerToolUse(id=block["id"], name=block["name"], input=block.get("input") or {})


def _web_search_result(block: dict[str, Any]) -> ir.WebSearchResult:
    content = block.get("content")  # a list of pages, or an error object
    hits = [
        ir.SearchHit(
            url=hit["url"], title=hit.get("title") or hit["url"], page_age=hit.get("page_age")
        )
        for hit in (content if isinstance(content, list) else [])
        if isinstance(hit, dict) and isinstance(hit.get("url"), str)
    ]
    return ir.WebSearchResult(tool_use_id=block["tool_use_id"], results=hits)


def _web_fetch_result(block: dict[str, Any]) -> ir.WebFetchResult:
    content = block.get("content") if isinstance(block.get("content"), dict) else {}
    if content.get("type") != "web_fetch_result":
        code = content.get("error_code")
        return ir.WebFetchResult(
            tool_use_id=block["tool_use_id"], url="", error_code=str(code or "unavailable")
        )
    document = content.get("content") if isinstance(content.get("content"), dict) else {}
    source = document.get("source") if isinstance(document.get("source"), dict) else {}
    text = source.get("data") if source.get("type") == "text" else None
    return ir.WebFetchResult(
        tool_use_id=block["tool_use_id"],
        url=str(content.get("url") or ""),
        text=text if isinstance(text, str) else "",
    )


def _code_result(block: dict[str, Any]) -> ir.CodeExecutionResult:
    """`code_execution_tool_result` and the newer tool's `bash_code_execution_tool_result`."""
    content = block.get("content") if isinstance(block.get("content"), dict) else {}
    stdout, stderr, code = content.get("stdout"), content.get("stderr"), content.get("return_code")
    return ir.CodeExecutionResult(
        tool_use_id=block["tool_use_id"],
        stdout=stdout if isinstance(stdout, str) else "",
        stderr=stderr if isinstance(stderr, str) else "",
        return_code=code if isinstance(code, int) else 0,
    )


_PARTS = {
    "text": _text,
    "thinking": lambda b: ir.Thinking(b.get("thinking") or "", signature=b.get("signature") or ""),
    "redacted_thinking": lambda b: ir.RedactedThinking(b.get("data") or ""),
    "tool_use": _tool_use,
    "server_tool_use": _server_tool_use,
    "web_search_tool_result": _web_search_result,
    "web_fetch_tool_result": _web_fetch_result,
    "code_execution_tool_result": _code_result,
    "bash_code_execution_tool_result": _code_result,
}


def part_from(block: Any) -> ir.Part | None:
    """One content block of an answer as an IR part; None for a type the IR has no part for."""
    decode = _PARTS.get(block.get("type")) if isinstance(block, dict) else None
    return decode(block) if decode is not None else None


def content_from(blocks: Any) -> list[ir.Part]:
    return [p for p in map(part_from, blocks or []) if p is not None]


def response_from(body: dict[str, Any]) -> ir.Response:
    """A whole message (reference 1.6) as the IR response a client surface encodes."""
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    sequence = body.get("stop_sequence")
    return ir.Response(
        content=content_from(body.get("content")),
        stop_reason=stop_reason_from(body.get("stop_reason")),
        stop_sequence=sequence if isinstance(sequence, str) else None,
        stop_details=stop_details_from(body.get("stop_details")),
        usage=usage_from(usage),
        service_tier=service_tier_from(usage),
        upstream_id=body.get("id") if isinstance(body.get("id"), str) else None,
    )


def forwarded_response_from(body: dict[str, Any]) -> ir.Response:
    """A whole message for a client that spoke Anthropic: the body is what it gets (`stop_details`
    included), the IR fields are read for usage and logs."""
    return ir.Response(
        content=content_from(body.get("content")),
        stop_reason=body.get("stop_reason") or "end_turn",
        stop_sequence=body.get("stop_sequence"),
        usage=usage_from(body.get("usage") or {}),
        upstream_id=body.get("id"),
        passthrough=body,
        stop_details=stop_details_from(body.get("stop_details")),
    )
