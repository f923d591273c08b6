"""IR stream events -> OpenAI Chat Completions chunks (`data: {chunk}\\n\\n`, reference 2.6).

The writer owns what OpenAI clients depend on: one `id`, `created` and `model` on every chunk;
a first chunk with the role; tool calls numbered 0, 1, ... by `index`, with `id`, `type` and
`function.name` on the first fragment of each and argument pieces after; a finish chunk with
an empty delta; the usage chunk (`choices: []`) only when the client asked for it or for
gateway extras; `data: [DONE]`. A failure after the start is a `data: {"error": ...}` frame
(the SDK raises APIError on it) and no `[DONE]`. Like the Anthropic writer it accumulates
usage, stop reason and output size for the gateway, whatever happens to the stream.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ir
from protocols.openai_chat.client_encode import (
    SERVICE_TIER,
    finish_reason,
    now,
    url_citation,
    usage_json,
)
from protocols.openai_errors import shape
from protocols.surface import Extras

_encoder = msgspec.json.Encoder()
PING = b": ping\n\n"
DONE = b"data: [DONE]\n\n"


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + _encoder.encode(payload) + b"\n\n"


class StreamWriter:
    """Turns IR events into chunk bytes; call `feed` per event, it returns bytes to send."""

    def __init__(
        self,
        *,
        response_id: str,
        model: str,
        input_estimate: int = 0,
        include_usage: bool = False,
        created: int | None = None,
    ):
        self.response_id = response_id
        self.model = model
        self.created = now() if created is None else created
        self.include_usage = include_usage
        # Our count of the prompt, for upstreams that report input tokens late or never.
        self.input_estimate = input_estimate
        self.usage = ir.Usage(input_tokens=input_estimate, estimated=True)
        self.stop_reason: str | None = None
        self.output_chars = 0
        self.started = False
        self.finished = False
        self.error_type: str | None = None  # the gateway's type of a failure written
        self.extras: Extras | None = None
        self.service_tier: str | None = None
        self.open: str | None = None  # kind of the open IR block
        self.calls = 0  # tool calls started: the next one's `index`
        self.text_chars = 0  # characters of content so far, for annotation offsets
        self.block_from = 0  # where the open text block began in the content

    # --- framing ------------------------------------------------------------------------------
    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = self._head()
        chunk["choices"] = [choice]
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI sends it on every chunk but the last
        return frame(chunk)

    def _head(self) -> dict[str, Any]:
        head: dict[str, Any] = {
            "id": self.response_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }
        if self.service_tier is not None:
            head["service_tier"] = self.service_tier
        head["system_fingerprint"] = None
        return head

    def start(self, usage: ir.Usage | None = None, tier: ir.ServiceTier | None = None) -> bytes:
        if usage is not None:
            self.usage = usage
        if tier is not None:
            self.service_tier = SERVICE_TIER[tier]
        self.started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _ensure_started(self) -> bytes:
        return b"" if self.started else self.start()

    # --- events -------------------------------------------------------------------------------
    def feed(self, event: ir.StreamEvent) -> bytes:
        if self.finished or isinstance(event, ir.Passthrough):
            return b""  # pass-through serves only the Anthropic surface
        if isinstance(event, ir.StreamStart):
            return b"" if self.started else self.start(event.usage, event.service_tier)
        if isinstance(event, ir.TextDelta):
            return self._content("content", event.text, "text")
        if isinstance(event, ir.ThinkingDelta):
            return self._content("reasoning_content", event.thinking, "thinking")
        if isinstance(event, ir.ToolInputDelta):
            return self._arguments(event.partial_json)
        if isinstance(event, ir.CitationDelta):
            return self._citation(event.citation)
        if isinstance(event, ir.BlockStart):
            return self._block(event.part)
        if isinstance(event, ir.BlockStop):
            self.open = None
            return b""
        if isinstance(event, ir.StreamEnd):
            if event.service_tier is not None:
                self.service_tier = SERVICE_TIER[event.service_tier]
            return self.end(event.stop_reason, event.usage)
        if isinstance(event, ir.StreamError):
            return self.error(event.error_type, event.message)
        return b""  # signatures: opaque to Chat clients

    def _content(self, field: str, text: str, kind: str) -> bytes:
        if not text:
            return b""
        out = self._ensure_started()
        if self.open != kind:
            self.open = kind
            self.block_from = self.text_chars
        self.output_chars += len(text)
        if kind == "text":
            self.text_chars += len(text)
        return out + self._chunk({field: text})

    def _block(self, part: Any) -> bytes:
        out = self._ensure_started()
        self.open = part.__struct_config__.tag
        self.block_from = self.text_chars
        if not isinstance(part, ir.ToolUse):
            return out  # text and thinking speak through their deltas; server tools not at all
        function = {"name": part.name, "arguments": ""}
        call = {"index": self.calls, "id": part.id, "type": "function", "function": function}
        self.calls += 1
        return out + self._chunk({"tool_calls": [call]})

    def _arguments(self, piece: str) -> bytes:
        if not piece or self.open != "tool_use":
            return b""  # a server tool's input is not the client's business
        self.output_chars += len(piece)
        call = {"index": self.calls - 1, "function": {"arguments": piece}}
        return self._chunk({"tool_calls": [call]})

    def _citation(self, citation: ir.Citation) -> bytes:
        if self.open != "text":
            return b""
        note = url_citation(citation, self.block_from, self.text_chars)
        return self._chunk({"annotations": [note]})

    def end(self, stop_reason: str, usage: ir.Usage) -> bytes:
        out = self._ensure_started()
        if usage.estimated and not usage.input_tokens:
            usage.input_tokens = self.input_estimate
        self.usage = usage
        self.stop_reason = stop_reason
        self.finished = True
        out += self._chunk({}, finish_reason(stop_reason))
        if self.include_usage or self.extras is not None:
            out += frame(self._usage_chunk(usage))
        return out + DONE

    def _usage_chunk(self, usage: ir.Usage) -> dict[str, Any]:
        """The last chunk: no choices, the usage, and the extras the client asked for."""
        chunk = self._head()
        chunk["choices"] = []
        chunk["usage"] = usage_json(usage)
        if self.extras is not None:
            usage_fields, top = self.extras(usage)
            chunk["usage"].update(usage_fields)
            chunk.update(top)
        return chunk

    def error(self, error_type: str, message: str) -> bytes:
        """A failure after the stream started: an `error` frame ends it (no `[DONE]`)."""
        self.finished, self.error_type = True, error_type
        _, body = shape(error_type, 500, message)  # scrubbed of credentials there
        return frame({"error": body})

    def keepalive(self) -> bytes:
        return PING
