"""Anthropic SSE events -> IR stream events, for an Anthropic upstream. Pure.

The inverse of stream.py (reference 1.7): `feed` takes one event (its name and decoded
payload) and returns the IR events it means; `end` closes a stream the upstream left without
`message_stop`. Block indices are dropped (the client's encoder numbers blocks itself); a block
of a type the IR has no part for is skipped with all its deltas. The stream loop's parsers
(protocols/stream.py) are below: `TranslatedStream` for a client of another protocol,
`PassthroughStream` for an Anthropic client, whose events are forwarded as they arrive.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ir
from protocols.anthropic.upstream_response import (
    citation_from,
    part_from,
    service_tier_from,
    stop_details_from,
    stop_reason_from,
    usage_from,
)
from protocols.stream import JsonChunks, StreamParser

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def _shell(block: dict[str, Any]) -> tuple[Any, list[ir.StreamEvent]]:
    """A `content_block_start` shell as the IR part opening the block, and the deltas for any
    content the shell already holds (result blocks come whole; other shells are empty)."""
    part = part_from(block)
    if isinstance(part, ir.Text):
        return ir.Text(""), [ir.TextDelta(part.text)] if part.text else []
    if isinstance(part, ir.Thinking):
        return ir.Thinking(""), [ir.ThinkingDelta(part.thinking)] if part.thinking else []
    if isinstance(part, ir.ToolUse | ir.ServerToolUse):
        given, part.input = part.input, {}
        return part, [ir.ToolInputDelta(_encode.encode(given).decode())] if given else []
    return part, []


class AnthropicStream:
    """One upstream stream read into IR events; `done` once it ended or failed."""

    def __init__(self) -> None:
        self.usage = ir.Usage()
        self.service_tier: ir.ServiceTier | None = None
        self.stop_reason: ir.StopReason = "end_turn"
        self.stop_sequence: str | None = None
        self.stop_details: ir.StopDetails | None = None
        self.skipping = False  # inside a block the IR has no part for
        self.done = False

    def feed(self, name: str | None, payload: Any) -> list[ir.StreamEvent]:
        if not isinstance(payload, dict):
            return []
        kind = name or payload.get("type")
        handle = self._HANDLERS.get(kind) if isinstance(kind, str) else None
        return handle(self, payload) if handle is not None else []  # ping, and newer events

    def end(self) -> list[ir.StreamEvent]:
        if self.done:
            return []
        self.done = True
        return [ir.StreamError("api_error", "upstream stream ended unexpectedly")]

    def _message_start(self, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
        self.usage = usage_from(usage)
        self.service_tier = service_tier_from(usage)
        upstream_id = message.get("id")
        return [
            ir.StreamStart(
                usage=usage_from(usage),  # a copy: the stream's own keeps growing
                upstream_id=upstream_id if isinstance(upstream_id, str) else None,
                service_tier=self.service_tier,
            )
        ]

    def _content_block_start(self, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        part, deltas = _shell(payload.get("content_block"))
        self.skipping = part is None
        return [] if part is None else [ir.BlockStart(part), *deltas]

    def _content_block_delta(self, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        delta = payload.get("delta")
        if self.skipping or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            return [ir.TextDelta(delta["text"])]
        if kind == "thinking_delta":
            return [ir.ThinkingDelta(delta["thinking"])]
        if kind == "signature_delta":
            return [ir.SignatureDelta(delta["signature"])]
        if kind == "input_json_delta":
            return [ir.ToolInputDelta(delta["partial_json"])]
        if kind == "citations_delta" and (cited := citation_from(delta.get("citation"))):
            return [ir.CitationDelta(cited)]
        return []

    def _content_block_stop(self, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        skipped, self.skipping = self.skipping, False
        return [] if skipped else [ir.BlockStop()]

    def _message_delta(self, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        self.usage = usage_from(usage, self.usage)  # cumulative totals (reference 1.7.2)
        self.service_tier = service_tier_from(usage) or self.service_tier
        self.stop_reason = stop_reason_from(delta.get("stop_reason"))
        sequence = delta.get("stop_sequence")
        self.stop_sequence = sequence if isinstance(sequence, str) else None
        self.stop_details = stop_details_from(delta.get("stop_details"))
        return []

    def _message_stop(self, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        self.done = True
        return [
            ir.StreamEnd(
                stop_reason=self.stop_reason,
                usage=self.usage,
                stop_sequence=self.stop_sequence,
                stop_details=self.stop_details,
                service_tier=self.service_tier,
            )
        ]

    def _error(self, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        self.done = True
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        kind, message = error.get("type"), error.get("message")
        return [
            ir.StreamError(
                kind if isinstance(kind, str) else "api_error",
                message if isinstance(message, str) else "",
            )
        ]

    _HANDLERS = {
        "message_start": _message_start,
        "content_block_start": _content_block_start,
        "content_block_delta": _content_block_delta,
        "content_block_stop": _content_block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
        "error": _error,
    }


class TranslatedStream(JsonChunks):
    """An Anthropic stream read into IR events (`AnthropicStream` above), for a
    client speaking another protocol."""

    def __init__(self) -> None:
        self.stream = AnthropicStream()

    def feed_json(self, name: str | None, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        events = self.stream.feed(name, payload)
        self.done = self.stream.done
        return events

    def end(self) -> list[ir.StreamEvent]:
        return self.stream.end()


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
