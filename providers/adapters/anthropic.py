"""Anthropic Messages upstream: the client's own surface, so requests and streams pass through.

Every field the client sent reaches the upstream unchanged (gateway extras removed, `model`
replaced by the route's upstream id); stream events are forwarded as they arrive, with only
`message_start` re-serialised to carry the client's model name and our message id.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import client_json, ir
from core.target import Target
from protocols import options
from protocols.anthropic import betas
from protocols.anthropic.schema import GATEWAY_FIELDS, WITHHELD_FIELDS
from providers.adapters.base import HttpAdapter, StreamParser, UpstreamRequest

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
_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()
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


def usage_from(data: dict[str, Any], base: ir.Usage | None = None) -> ir.Usage:
    usage = base or ir.Usage()
    for field in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
        value = data.get(field)
        if isinstance(value, int):
            setattr(usage, field, value)
    creation = data.get("cache_creation")
    if isinstance(creation, dict) and isinstance(creation.get("ephemeral_1h_input_tokens"), int):
        usage.cache_creation_1h_input_tokens = creation["ephemeral_1h_input_tokens"]
    details = data.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
        usage.reasoning_tokens = details["thinking_tokens"]
    server = data.get("server_tool_use")
    if isinstance(server, dict) and isinstance(server.get("web_search_requests"), int):
        usage.web_search_requests = server["web_search_requests"]  # billed per search
    if isinstance(server, dict) and isinstance(server.get("web_fetch_requests"), int):
        usage.web_fetch_requests = server["web_fetch_requests"] or None
    return usage


def stop_details_from(data: Any) -> ir.StopDetails | None:
    if not isinstance(data, dict) or data.get("type") != "refusal":
        return None
    category, explanation = data.get("category"), data.get("explanation")
    return ir.StopDetails(
        category=category if isinstance(category, str) else None,
        explanation=explanation if isinstance(explanation, str) else None,
    )


def _part(block: dict[str, Any]) -> ir.Part | None:
    kind = block.get("type")
    if kind == "text":
        return ir.Text(block.get("text", ""))
    if kind == "tool_use":
        return ir.ToolUse(id=block["id"], name=block["name"], input=block.get("input") or {})
    if kind == "thinking":
        return ir.Thinking(block.get("thinking", ""), signature=block.get("signature", ""))
    if kind == "redacted_thinking":
        return ir.RedactedThinking(block.get("data", ""))
    return None


class PassthroughStream(StreamParser):
    """Events forwarded as they arrive, their usage and stop reason read on the side."""

    def __init__(self) -> None:
        self.usage = ir.Usage()

    def feed(self, name: str | None, data: bytes) -> list[ir.StreamEvent]:
        if name is None:
            return []
        event = ir.Passthrough(b"event: " + name.encode() + b"\ndata: " + data + b"\n\n", name)
        if name == "message_start":
            payload = _decode.decode(data)
            message = payload.get("message") or {}
            self.usage = usage_from(message.get("usage") or {})
            event.usage = self.usage
            event.payload = payload  # re-encoded with our id and the client's model
        elif name == "message_delta":
            payload = _decode.decode(data)
            self.usage = usage_from(payload.get("usage") or {}, self.usage)
            event.usage = self.usage
            event.stop_reason = (payload.get("delta") or {}).get("stop_reason")
        elif name == "error":
            payload = _decode.decode(data)
            err = payload.get("error") or {}
            self.done = True
            return [ir.StreamError(err.get("type", "api_error"), err.get("message", ""))]
        return [event]


class AnthropicAdapter(HttpAdapter):
    kind = "anthropic"
    options = OPTIONS
    # A 403 `permission_error` stays the status's: a beta the client chose can earn it.
    error_kinds = {"authentication_error": "credential", "billing_error": "account"}

    def unsupported(self, request: ir.Request, target: Target) -> list[str]:
        # The gateway's `reasoning` extra is stripped like every extra; Anthropic takes `thinking`.
        reasoning = request.reasoning
        if reasoning is not None and reasoning.asked_by == "reasoning":
            return ["reasoning (Anthropic routes take `thinking`)"]
        return []

    def build_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
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
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        flags = betas.forwarded(request.beta, target.betas_mode, target.betas)[0]
        if flags:  # the body's `betas` too, merged (gateway/betas.py); the body keeps none
            headers["anthropic-beta"] = ",".join(flags)
        headers.update(target.extra_headers)
        return UpstreamRequest(url=messages_url(target.base_url), body=body, headers=headers)

    def count_request(self, request: ir.Request, target: Target) -> UpstreamRequest:
        upstream = self.build_request(request, target)
        upstream.body = {k: v for k, v in upstream.body.items() if k in COUNT_FIELDS}
        upstream.url = upstream.url + "/count_tokens"
        return upstream

    def count_result(self, body: Any) -> int:
        return body["input_tokens"]

    def parse_response(self, body: Any, request: ir.Request, target: Target) -> ir.Response:
        content = [p for p in map(_part, body.get("content") or []) if p is not None]
        return ir.Response(
            content=content,
            stop_reason=body.get("stop_reason") or "end_turn",
            stop_sequence=body.get("stop_sequence"),
            usage=usage_from(body.get("usage") or {}),
            upstream_id=body.get("id"),
            passthrough=body,  # what the client gets, `stop_details` included
            stop_details=stop_details_from(body.get("stop_details")),
        )

    def stream_parser(self, request: ir.Request, target: Target) -> PassthroughStream:
        return PassthroughStream()

    def error_message(self, body: Any) -> str:
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return str(body["error"].get("message", ""))
        return ""

    def error_codes(self, body: Any) -> list[Any]:
        """`{"type": "error", "error": {"type", "message"}}` (reference 1.8)."""
        error = body.get("error") if isinstance(body, dict) else None
        return [error.get("type")] if isinstance(error, dict) else []
