"""Anthropic Messages upstream.

A client that spoke Anthropic has its body forwarded: every field it sent reaches the upstream
unchanged (gateway extras removed, `model` replaced by the route's upstream id), and stream
events are forwarded as they arrive, with only `message_start` re-serialised to carry the
client's model name and our message id. A client of another surface (OpenAI Chat, Responses)
has its body built from the IR and the answers read back into it (protocols/anthropic/
upstream_*.py). Betas, provider options and forwarded headers apply to both. Reading answers,
streams (forwarded or translated) and errors is the protocol's (protocols/anthropic/); this
module owns how to reach the server and what of a client's body it forwards.
"""

from __future__ import annotations

from typing import Any

from core import client_json, ir
from core.target import Target
from protocols import options
from protocols.anthropic import betas, errors, upstream_request
from protocols.anthropic.schema import WITHHELD_FIELDS
from protocols.anthropic.upstream_response import (
    forwarded_response_from,
    response_from,
)
from protocols.anthropic.upstream_stream import PassthroughStream, TranslatedStream
from protocols.stream import StreamParser
from protocols.surface import GATEWAY_FIELDS
from providers.adapters.base import HttpAdapter, UpstreamRequest

ANTHROPIC_VERSION = "2023-06-01"
# What Anthropic's count_tokens accepts (reference 1.9), plus newer fields it may take.
COUNT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
        "context_management",
        "mcp_servers",
    }
)
# Signatures minted by this gateway for other providers' reasoning; Anthropic rejects them.
GATEWAY_SIGNATURE_PREFIX = "tg1."
# What a client may set under `provider_options.anthropic` (see options.py): the request's
# top-level `cache_control` (automatic caching of the last cacheable block).
OPTIONS = options.OptionTable(
    "anthropic", {"cache_control": options.Option(("cache_control",), options.CACHE_CONTROL)}
)


def messages_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def _foreign_thinking(block: Any) -> bool:
    return (
        isinstance(block, dict)
        and block.get("type") == "thinking"
        and str(block.get("signature", "")).startswith(GATEWAY_SIGNATURE_PREFIX)
    )


def _strip_foreign_thinking(messages: list[Any]) -> list[Any]:
    """New message dicts without our signatures (the client's decoded body stays as it was)."""
    return [
        {**m, "content": [b for b in m["content"] if not _foreign_thinking(b)]}
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        else m
        for m in messages
    ]


def forwards(request: ir.Request | None) -> bool:
    """Whether the client spoke Anthropic, so its body goes upstream and the answer back as
    sent (no request: a caller that only reads an answer keeps it whole)."""
    return request is None or request.surface == "anthropic"


class AnthropicAdapter(HttpAdapter):
    kind = "anthropic"
    passthrough = True
    options = OPTIONS
    error_kinds = errors.ERROR_KINDS

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        # The gateway's `reasoning` extra is stripped like every extra; Anthropic takes `thinking`.
        reasoning = request.reasoning
        if reasoning is not None and reasoning.asked_by == "reasoning" and forwards(request):
            return ["reasoning (Anthropic routes take `thinking`)"]
        return []

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        if forwards(request):
            body = self._forwarded_body(request, target)
        else:
            body = upstream_request.messages_body(request, target)
            options.apply(OPTIONS, request.provider_options, body)
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        flags = betas.forwarded(request.beta, target.betas_mode, target.betas)[0]
        # The body's `betas` too, merged (protocols/anthropic/betas.py); the body keeps none.
        if flags:
            headers["anthropic-beta"] = ",".join(flags)
        headers.update(target.extra_headers)
        return UpstreamRequest(url=messages_url(target.base_url), body=body, headers=headers)

    def _forwarded_body(self, request: ir.Request, target: Target) -> dict[str, Any]:
        wire = request.raw_json
        if wire is None:  # a request not built by the surface's decoder (tests, tools)
            wire = client_json.decode_object(request.raw) if request.raw else {}
        # A shallow copy: the client's body is shared by every attempt and never changed.
        # The body's `betas` go in the header (merged with `anthropic-beta`), never the body.
        body = {
            k: v
            for k, v in wire.items()
            if k not in GATEWAY_FIELDS and k not in WITHHELD_FIELDS and k != "betas"
        }
        body["model"] = target.upstream_model
        options.apply(OPTIONS, request.provider_options, body)  # the client's own fields win
        if GATEWAY_SIGNATURE_PREFIX.encode() in request.raw:
            body["messages"] = _strip_foreign_thinking(body.get("messages") or [])
        return body

    def count_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        upstream = self.build_request(request, target)
        upstream.body = {k: v for k, v in upstream.body.items() if k in COUNT_FIELDS}
        upstream.url = upstream.url + "/count_tokens"
        return upstream

    def count_result(self, body: Any) -> int:
        return body["input_tokens"]

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        return response_from(body) if not forwards(request) else forwarded_response_from(body)

    def stream_parser(self, request: ir.Request, target: Target) -> StreamParser:
        return PassthroughStream() if forwards(request) else TranslatedStream()

    def error_message(self, body: Any) -> str:
        return errors.error_message(body)

    def error_codes(self, body: Any) -> list[Any]:
        return errors.error_codes(body)
