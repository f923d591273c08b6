"""OpenAI Responses API upstream (`POST /responses`, reference section 3).

The protocol's codec does the translating (protocols/openai_responses/: request.py builds the
body, upstream_response.py and upstream_stream.py read answers back into the IR, errors.py
reads its error shape); this module owns how to reach the server: its URL and auth header,
its token counter (`/responses/input_tokens`), what its requests cannot carry.
"""

from __future__ import annotations

from typing import Any

from core import ir
from core.target import Target
from protocols.openai_chat.request import is_reasoning_model
from protocols.openai_responses.errors import ERROR_KINDS, error_codes
from protocols.openai_responses.request import OPTIONS as REQUEST_OPTIONS
from protocols.openai_responses.request import responses_body, unsupported_search
from protocols.openai_responses.upstream_response import response_from
from protocols.openai_responses.upstream_stream import ResponsesStream
from providers.adapters.base import HttpAdapter, UpstreamRequest
from providers.adapters.openai_chat import sampling_dropped

# What `POST /responses/input_tokens` takes (openai-python's InputTokenCountParams).
COUNT_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "text",
        "truncation",
        "conversation",
        "previous_response_id",
    }
)


class OpenAIResponsesAdapter(HttpAdapter):
    kind = "openai_responses"
    options = REQUEST_OPTIONS
    replays_tool_state = True  # reasoning items preceding function calls
    takes_cache_key = True
    error_kinds = ERROR_KINDS  # the Chat Completions error shape (reference 3.7)

    def error_codes(self, body: Any) -> list[Any]:
        return error_codes(body)

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        # The Responses API has no stop parameter at all.
        dropped = sampling_dropped(request, is_reasoning_model(target.upstream_model), stops=False)
        return dropped + unsupported_search(request)

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        headers.update(target.extra_headers)
        return UpstreamRequest(
            url=target.base_url.rstrip("/") + "/responses",
            body=responses_body(request, target),
            headers=headers,
        )

    def count_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        """`POST /responses/input_tokens` with the request as it would be sent (5.15)."""
        upstream = self.build_request(request, target)
        upstream.body = {k: v for k, v in upstream.body.items() if k in COUNT_FIELDS}
        upstream.url = upstream.url + "/input_tokens"
        return upstream

    def count_result(self, body: Any) -> int:
        return body["input_tokens"]

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        return response_from(body if isinstance(body, dict) else {}, request, target)

    def stream_parser(self, request: ir.Request, target: Target) -> ResponsesStream:
        return ResponsesStream(request, target)
