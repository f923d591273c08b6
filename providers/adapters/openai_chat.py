"""OpenAI Chat Completions upstream: OpenAI itself and OpenAI-compatible servers (vLLM, Ollama…).

The protocol's codec does the translating (protocols/openai_chat/: request.py builds the body,
upstream_response.py and upstream_stream.py read answers back into the IR, errors.py reads its
error shape); this module owns how to reach the server: its URL (Azure's deployments
included), its auth header, what its requests cannot carry.
"""

from __future__ import annotations

from typing import Any

from core import ir
from core.target import Target
from protocols.openai_chat.errors import ERROR_KINDS, error_codes
from protocols.openai_chat.request import (
    NEAREST_EFFORT,
    chat_body,
    is_reasoning_model,
    unsupported_search,
)
from protocols.openai_chat.request import OPTIONS as REQUEST_OPTIONS
from protocols.openai_chat.upstream_response import response_from
from protocols.openai_chat.upstream_stream import ChatStream
from providers.adapters.base import HttpAdapter, UpstreamRequest


def chat_url(target: Target) -> str:
    base = target.base_url.rstrip("/")
    if version := target.options.get("azure_api_version"):
        # Azure addresses a deployment (the route's upstream model) and pins an API version.
        return f"{base}/openai/deployments/{target.upstream_model}/chat/completions" + (
            f"?api-version={version}"
        )
    return base + "/chat/completions"


def sampling_dropped(request: ir.Request, reasoning_model: bool, *, stops: bool) -> list[str]:
    """Sampling fields an OpenAI surface cannot take (shared by Chat and Responses)."""
    dropped = ["top_k"] if request.top_k is not None else []
    if reasoning_model:
        dropped += [f for f in ("temperature", "top_p") if getattr(request, f) is not None]
    if request.stop_sequences and (not stops or reasoning_model):
        dropped.append("stop_sequences")
    elif len(request.stop_sequences) > 4:
        dropped.append("stop_sequences (beyond the first 4)")
    reasoning = request.reasoning
    if reasoning is not None and not reasoning_model:
        dropped.append(reasoning.asked_by)
    elif reasoning is not None and reasoning.effort in NEAREST_EFFORT:
        nearest = NEAREST_EFFORT[reasoning.effort]
        field = "reasoning.effort" if reasoning.asked_by == "reasoning" else "output_config.effort"
        dropped.append(f"{field} `{reasoning.effort}` (sent as `{nearest}`)")
    return dropped


class OpenAIChatAdapter(HttpAdapter):
    kind = "openai"
    options = REQUEST_OPTIONS
    error_kinds = ERROR_KINDS
    takes_cache_key = True  # when the server does (request.py: sends_cache_key)

    def error_codes(self, body: Any) -> list[Any]:
        return error_codes(body)

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        dropped = sampling_dropped(request, is_reasoning_model(target.upstream_model), stops=True)
        dropped += unsupported_search(request)
        return [f for f in dropped if not (f == "top_k" and target.options.get("top_k"))]

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        auth = target.options.get("auth", "bearer")
        if target.api_key and auth == "bearer":
            headers["authorization"] = f"Bearer {target.api_key}"
        elif target.api_key and auth == "api-key":
            headers["api-key"] = target.api_key
        headers.update(target.extra_headers)
        return UpstreamRequest(
            url=chat_url(target), body=chat_body(request, target), headers=headers
        )

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        if not isinstance(body, dict):
            body = {}
        return response_from(body, request, target)

    def stream_parser(self, request: ir.Request, target: Target) -> ChatStream:
        return ChatStream(request, target)
