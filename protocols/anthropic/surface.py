"""The Anthropic Messages surface (`POST /v1/messages`): the gateway's first client protocol.

Decoding keeps the client's body (`raw`, `raw_json`) on the IR request, so a route speaking
Anthropic forwards it unchanged (pass-through) while every other route gets the IR.
"""

from __future__ import annotations

from typing import Any

from core import ids, ir
from core.errors import GatewayError
from protocols.anthropic import betas, server_tools
from protocols.anthropic.decode import (
    long_cache_ttls,
    messages_body,
    to_ir,
    unknown_fields,
    withheld_fields,
)
from protocols.anthropic.encode import message_json
from protocols.anthropic.stream import StreamWriter
from protocols.surface import Decoded, Extras


class AnthropicSurface:
    name = "anthropic"
    endpoint = "messages"
    request_id_header = b"request-id"

    def new_id(self) -> str:
        return ids.message_id()

    def decode(self, raw: bytes, wire: dict[str, Any], headers: dict[bytes, bytes]) -> Decoded:
        body = messages_body(wire)
        request = to_ir(body, beta=betas.of_request(headers, body.betas))
        request.surface, request.raw, request.raw_json = self.name, raw, wire
        # Options of an emulated server tool that no translation reads: reported off Anthropic.
        request.context_dropped += server_tools.unread_options(wire, request.server_tools)
        ask = body.ask(model=body.model, stream=body.stream)
        return Decoded(request=request, ask=ask, withheld=withheld_fields(wire, headers))

    def dropped(self, decoded: Decoded) -> list[str]:
        """What a translated route drops: computed only when one is planned (the usual
        Anthropic-to-Anthropic request never walks its blocks for it)."""
        wire = decoded.request.raw_json or {}
        return unknown_fields(wire) + long_cache_ttls(wire)

    def response(
        self,
        response: ir.Response,
        *,
        response_id: str,
        model: str,
        extras: Extras | None,
        decoded: Decoded,
    ) -> dict[str, Any]:
        if response.passthrough is not None:
            message = {**response.passthrough, "id": response_id, "model": model}
        else:
            message = message_json(response, message_id=response_id, model=model)
        if extras is not None:
            usage_fields, top = extras(response.usage)
            message["usage"] = {**message.get("usage", {}), **usage_fields}
            message.update(top)
        return message

    def stream_writer(
        self, *, response_id: str, model: str, input_estimate: int, decoded: Decoded
    ) -> StreamWriter:
        return StreamWriter(message_id=response_id, model=model, input_estimate=input_estimate)

    def error(self, err: GatewayError, request_id: str) -> tuple[int, bytes]:
        return err.status, err.to_json(request_id)

    def limit_headers(self, limits: list[tuple[str, int, int, str]]) -> list[tuple[bytes, bytes]]:
        """`anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`."""
        out = []
        for kind, limit, remaining, reset in limits:
            prefix = f"anthropic-ratelimit-{kind}-".encode()
            out += [
                (prefix + b"limit", str(limit).encode()),
                (prefix + b"remaining", str(remaining).encode()),
                (prefix + b"reset", reset.encode()),
            ]
        return out


SURFACE = AnthropicSurface()
