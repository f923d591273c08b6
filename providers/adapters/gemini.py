"""Google Gemini upstream (`generateContent` on the Developer API, reference section 4).

The protocol's codec does the translating (protocols/gemini/: request.py builds the body,
upstream_response.py and upstream_stream.py read answers back into the IR, errors.py reads its
error shape); this module owns how to reach the server: its URL (the model and the method in
the path), its key header, its token counter (`countTokens`), what its requests cannot carry.
"""

from __future__ import annotations

from typing import Any

from core import ir
from core.target import Target
from protocols.gemini import errors
from protocols.gemini.errors import ERROR_KINDS, unwrap
from protocols.gemini.request import (
    MAX_STOP_SEQUENCES,
    gemini_body,
    unsupported_fetch,
    unsupported_search,
)
from protocols.gemini.request import (
    OPTIONS as REQUEST_OPTIONS,
)
from protocols.gemini.upstream_response import response_from
from protocols.gemini.upstream_stream import GeminiTurn
from providers.adapters.base import HttpAdapter, UpstreamRequest


class GeminiAdapter(HttpAdapter):
    kind = "gemini"
    options = REQUEST_OPTIONS
    replays_tool_state = True  # function calls' thought signatures

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        dropped = []
        if len(request.stop_sequences) > MAX_STOP_SEQUENCES:
            dropped.append(f"stop_sequences (beyond the first {MAX_STOP_SEQUENCES})")
        choice = request.tool_choice
        if choice is not None and choice.disable_parallel_tool_use:
            dropped.append("tool_choice.disable_parallel_tool_use (approximated)")
        return dropped + unsupported_search(request) + unsupported_fetch(request)

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        headers.update(target.extra_headers)
        model = target.upstream_model.removeprefix("models/")
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        return UpstreamRequest(
            url=f"{target.base_url.rstrip('/')}/models/{model}:{method}",
            body=gemini_body(request, target),
            headers=headers,
        )

    def count_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        upstream = self.build_request(request, target)
        model = target.upstream_model.removeprefix("models/")
        inner = {
            k: v
            for k, v in upstream.body.items()
            if k in ("contents", "systemInstruction", "tools", "toolConfig")
        }
        upstream.url = f"{target.base_url.rstrip('/')}/models/{model}:countTokens"
        upstream.body = {"generateContentRequest": {"model": f"models/{model}", **inner}}
        return upstream

    def count_result(self, body: Any) -> int:
        return unwrap(body)["totalTokens"]

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        body = unwrap(body)
        return response_from(body if isinstance(body, dict) else {}, request, target)

    def stream_parser(self, request: ir.Request, target: Target) -> GeminiTurn:
        return GeminiTurn(request, target)

    error_kinds = ERROR_KINDS

    def error_message(self, body: Any) -> str:
        return errors.error_message(body)

    def error_codes(self, body: Any) -> list[Any]:
        return errors.error_codes(body)

    def error_retry_after(self, body: Any) -> float | None:
        return errors.error_retry_after(body)
