"""The OpenAI Chat Completions client surface (`POST /v1/chat/completions`): the `Surface`
(protocols/surface.py) an OpenAI SDK client is served through.

Each piece is its own module: `client_schema` (the accepted body), `client_decode` and
`client_messages` (body -> IR), `client_encode` (IR answer -> `chat.completion`),
`client_stream` (IR events -> chunks), errors and rate-limit headers in protocols/openai_errors.py.
"""

from __future__ import annotations

from typing import Any

from core import ids, ir
from core.errors import GatewayError
from protocols import openai_errors
from protocols.openai_chat import client_decode, client_encode
from protocols.openai_chat.client_stream import StreamWriter
from protocols.surface import Decoded, Extras


class ChatSurface:
    name = "openai_chat"
    endpoint = "chat_completions"
    request_id_header = openai_errors.REQUEST_ID_HEADER

    def new_id(self) -> str:
        return ids.chat_completion_id()

    def decode(self, raw: bytes, wire: dict[str, Any], headers: dict[bytes, bytes]) -> Decoded:
        return client_decode.decode(raw, wire, headers)

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
        return client_encode.completion_json(
            response, response_id=response_id, model=model, extras=extras
        )

    def stream_writer(
        self, *, response_id: str, model: str, input_estimate: int, decoded: Decoded
    ) -> StreamWriter:
        return StreamWriter(
            response_id=response_id,
            model=model,
            input_estimate=input_estimate,
            include_usage=decoded.ask.stream_usage,
        )

    def error(self, err: GatewayError, request_id: str) -> tuple[int, bytes]:
        return openai_errors.error(err, request_id)

    def limit_headers(self, limits: list[tuple[str, int, int, str]]) -> list[tuple[bytes, bytes]]:
        return openai_errors.limit_headers(limits)


SURFACE = ChatSurface()
