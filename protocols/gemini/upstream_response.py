"""Gemini `generateContent` answer (JSON) -> IR response, for a Gemini upstream. Pure.

Reference 5.8-5.10: the whole answer is fed to the stream's state machine as one chunk
(upstream_stream.py), and its content reordered as Anthropic orders it.
"""

from __future__ import annotations

from typing import Any

from core import ir
from core.target import Target
from core.tokens import estimate_input_tokens, estimate_output_tokens
from protocols.gemini.errors import error_from
from protocols.gemini.upstream_stream import GeminiTurn


def response_from(body: dict[str, Any], request: ir.Request, target: Target) -> ir.Response:
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        raise error_from(code if isinstance(code, int) else 500, body)
    turn = GeminiTurn(request, target)
    turn.feed_json(None, body)
    turn.close_thinking()
    usage = turn.usage or ir.Usage(
        input_tokens=estimate_input_tokens(request),
        output_tokens=estimate_output_tokens(turn.chars),
        estimated=True,
    )
    if turn.searches:
        usage.web_search_requests = turn.searches
    if turn.fetches:
        usage.web_fetch_requests = turn.fetches
    # Anthropic puts a search or a fetch before the text it grounds.
    searches = [p for p in turn.content if _is_search(p)]
    others = [p for p in turn.content if not _is_search(p)]
    return ir.Response(
        content=searches + others,
        stop_reason=turn.stop_reason(),
        usage=usage,
        upstream_id=body.get("responseId"),
        stop_details=turn.stop_details(),
    )


def _is_search(part: ir.Part) -> bool:
    search_call = isinstance(part, ir.ServerToolUse) and part.name in ("web_search", "web_fetch")
    return search_call or isinstance(part, ir.WebSearchResult | ir.WebFetchResult)
