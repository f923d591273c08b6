"""The OpenAI Responses client surface (`POST /v1/responses`): the `Surface` the gateway serves
to the official `openai` SDK (`responses.create`, `responses.stream`) and the Codex CLI.

Each direction is one module: client_decode.py (with client_schema.py and client_items.py),
client_encode.py, client_stream.py; errors and rate-limit headers are OpenAI's, shared with
Chat Completions (protocols/openai_errors.py).
"""

from __future__ import annotations

from typing import Any

from core import ids, ir
from core.errors import GatewayError
from protocols import openai_errors
from protocols.openai_responses import client_decode, client_encode
from protocols.openai_responses.client_stream import StreamWriter
from protocols.surface import Decoded, Extras


class ResponsesSurface:
    name = client_decode.SURFACE_NAME
    endpoint = "responses"
    request_id_header = openai_errors.REQUEST_ID_HEADER

    def new_id(self) -> str:
        return ids.response_id()

    def decode(self, raw: bytes, wire: dict[str, Any], headers: dict[bytes, bytes]) -> Decoded:
        return client_decode.decode(wire, raw)

    def dropped(self, decoded: Decoded) -> list[str]:
        return decoded.dropped

    def response(
        self,
        response: ir.Response,
        *,
        response_id: str,
        model: str,
        extras: Extras | None,
        decoded: Decoded,
    ) -> dict[str, Any]:
        return client_encode.response_json(
            response, response_id=response_id, model=model, extras=extras, request=decoded.request
        )

    def stream_writer(
        self, *, response_id: str, model: str, input_estimate: int, decoded: Decoded
    ) -> StreamWriter:
        return StreamWriter(
            response_id=response_id,
            model=model,
            input_estimate=input_estimate,
            request=decoded.request,
        )

    def error(self, err: GatewayError, request_id: str) -> tuple[int, bytes]:
        return openai_errors.error(err, request_id)

    def limit_headers(self, limits: list[tuple[str, int, int, str]]) -> list[tuple[bytes, bytes]]:
        return openai_errors.limit_headers(limits)


SURFACE = ResponsesSurface()
