"""IR stream events -> Anthropic server-sent events, with the framing rules SDKs depend on.

The writer owns block indices: dense, in start order, one block open at a time. It also
accumulates the final message, so the caller knows the usage and content whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from core import ir, redaction
from protocols.anthropic.encode import (
    citation_json,
    context_management_json,
    part_json,
    stop_details_json,
    usage_json,
)

_encoder = msgspec.json.Encoder()
PING = b'event: ping\ndata: {"type":"ping"}\n\n'


def sse(event: str, payload: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + _encoder.encode(payload) + b"\n\n"


class StreamWriter:
    """Turns IR events into SSE bytes; call `feed` per event, it returns bytes to send."""

    def __init__(self, *, message_id: str, model: str, input_estimate: int = 0):
        self.message_id = message_id
        self.model = model
        # Our count of the prompt, for upstreams that report input tokens late or never.
        self.input_estimate = input_estimate
        self.index = -1
        self.open: str | None = None  # kind of the open block
        self.started = False
        self.finished = False
        self.error_type: str | None = None
        self.usage = ir.Usage(input_tokens=input_estimate, estimated=True)
        self.stop_reason: str | None = None
        self.output_chars = 0
        self.blocks = 0
        # Response extras for the final message_delta: usage -> (usage fields, top-level fields).
        self.extras: Callable[[ir.Usage], tuple[dict, dict]] | None = None

    def start(
        self, usage: ir.Usage | None = None, service_tier: ir.ServiceTier | None = None
    ) -> bytes:
        if usage is not None:
            self.usage = usage
        elif self.input_estimate:
            self.usage = ir.Usage(input_tokens=self.input_estimate, estimated=True)
        self.started = True
        message = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_json(self.usage, service_tier),
        }
        return sse("message_start", {"type": "message_start", "message": message}) + PING

    def feed(self, event: ir.StreamEvent) -> bytes:
        if self.finished:
            return b""  # the stream ended (message_stop or error): nothing may follow
        if isinstance(event, ir.Passthrough):
            return self._passthrough(event)
        if isinstance(event, ir.TextDelta):
            if not event.text:
                return b""
            out = self._ensure("text", ir.Text(""))
            self.output_chars += len(event.text)
            return out + self._delta({"type": "text_delta", "text": event.text})
        if isinstance(event, ir.CitationDelta):
            if self.open != "text":
                return b""
            return self._delta(
                {"type": "citations_delta", "citation": citation_json(event.citation)}
            )
        if isinstance(event, ir.ToolInputDelta):
            if not event.partial_json or self.open not in ("tool_use", "server_tool_use"):
                return b""
            self.output_chars += len(event.partial_json)
            return self._delta({"type": "input_json_delta", "partial_json": event.partial_json})
        if isinstance(event, ir.ThinkingDelta):
            if not event.thinking:
                return b""
            out = self._ensure("thinking", ir.Thinking(""))
            self.output_chars += len(event.thinking)
            return out + self._delta({"type": "thinking_delta", "thinking": event.thinking})
        if isinstance(event, ir.SignatureDelta):
            if self.open != "thinking":
                return b""
            return self._delta({"type": "signature_delta", "signature": event.signature})
        if isinstance(event, ir.BlockStart):
            return self._start_block(event.part)
        if isinstance(event, ir.BlockStop):
            return self._stop_block()
        if isinstance(event, ir.StreamStart):
            return b"" if self.started else self.start(event.usage, event.service_tier)
        if isinstance(event, ir.StreamEnd):
            return self.end(
                event.stop_reason,
                event.usage,
                event.stop_sequence,
                event.stop_details,
                event.service_tier,
                event.applied_edits,
            )
        if isinstance(event, ir.StreamError):
            return self.error(event.error_type, event.message)
        return b""

    def keepalive(self) -> bytes:
        return PING

    def _passthrough(self, event: ir.Passthrough) -> bytes:
        name = event.event
        if name == "content_block_delta":  # forwarded as is: count its text
            self.output_chars += delta_chars(event.data)
        elif name == "error":
            self.error_type = _error_type(event.data)
        if name == "message_start":
            self.started = True
            if event.payload is not None:
                message = event.payload.setdefault("message", {})
                message["id"] = self.message_id
                message["model"] = self.model
                event.data = sse("message_start", event.payload)
        elif name == "content_block_start":
            self.blocks += 1
        elif name in ("message_stop", "error"):
            self.finished = True
        if event.usage is not None:
            self.usage = event.usage
        if event.stop_reason is not None:
            self.stop_reason = event.stop_reason
        if name == "message_delta" and self.extras is not None:
            payload = msgspec.json.decode(event.data.split(b"data:", 1)[1])
            self._add_extras(payload, self.usage)
            return sse("message_delta", payload)
        return event.data

    def _add_extras(self, event: dict, usage: ir.Usage) -> None:
        if self.extras is not None:
            usage_fields, top = self.extras(usage)
            event.setdefault("usage", {}).update(usage_fields)
            event.update(top)

    def _ensure(self, kind: str, shell: ir.Part) -> bytes:
        out = b"" if self.started else self.start()
        if self.open == kind:
            return out
        return out + self._start_block(shell)

    def _start_block(self, part: ir.Part) -> bytes:
        out = b"" if self.started else self.start()
        out += self._stop_block()
        self.index += 1
        self.blocks += 1
        self.open = part.__struct_config__.tag
        shell = part_json(part) or {"type": "text", "text": ""}
        if isinstance(part, ir.ToolUse | ir.ServerToolUse):
            shell["input"] = {}
        elif isinstance(part, ir.Thinking):
            shell = {"type": "thinking", "thinking": "", "signature": ""}
        event = {"type": "content_block_start", "index": self.index, "content_block": shell}
        return out + sse("content_block_start", event)

    def _stop_block(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _delta(self, delta: dict) -> bytes:
        event = {"type": "content_block_delta", "index": self.index, "delta": delta}
        return sse("content_block_delta", event)

    def end(
        self,
        stop_reason: str,
        usage: ir.Usage,
        stop_sequence: str | None = None,
        stop_details: ir.StopDetails | None = None,
        service_tier: ir.ServiceTier | None = None,
        applied_edits: list[ir.AppliedEdit] | None = None,
    ) -> bytes:
        out = (b"" if self.started else self.start()) + self._stop_block()
        if usage.estimated and not usage.input_tokens:
            usage.input_tokens = self.input_estimate
        self.usage = usage
        self.stop_reason = stop_reason
        self.finished = True
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        if stop_details is not None:  # reference 1.7.6
            delta["stop_details"] = stop_details_json(stop_details)
        usage_fields = usage_json(usage, service_tier, split=False)
        event = {"type": "message_delta", "delta": delta, "usage": usage_fields}
        if applied_edits is not None:  # where Anthropic puts it in a stream
            event["context_management"] = context_management_json(applied_edits)
        self._add_extras(event, usage)
        return out + sse("message_delta", event) + sse("message_stop", {"type": "message_stop"})

    def error(self, error_type: str, message: str) -> bytes:
        self.finished = True
        self.error_type = error_type
        # An upstream's message may echo a credential it was sent.
        error = {"type": error_type, "message": redaction.scrub(message)}
        return sse("error", {"type": "error", "error": error})


class _Delta(msgspec.Struct):
    text: str = ""
    thinking: str = ""
    partial_json: str = ""


class _DeltaEvent(msgspec.Struct):
    delta: _Delta


_delta_event = msgspec.json.Decoder(_DeltaEvent)


def delta_chars(sse: bytes) -> int:
    """Characters of text, thinking or tool input in a forwarded `content_block_delta` event:
    what a reply cut short is billed from (signatures and framing are not output)."""
    try:
        delta = _delta_event.decode(sse[sse.index(b"{") :]).delta
    except (ValueError, msgspec.DecodeError):
        return 0
    return len(delta.text) + len(delta.thinking) + len(delta.partial_json)


def _error_type(sse: bytes) -> str:
    """The `error.type` of a forwarded SSE `error` event."""
    try:
        payload = msgspec.json.decode(sse.split(b"data:", 1)[1])
        return str(payload["error"]["type"])
    except (IndexError, KeyError, TypeError, msgspec.DecodeError):
        return "api_error"
