"""Reading an upstream's stream: SSE framing (bytes in, events out) and the parser contract.

Pure: the HTTP body is read by providers/adapters/base.py, which feeds its bytes to `SseFrames`
and every event to the protocol's `StreamParser` (`HttpAdapter.parse_stream` is that loop). A
protocol folder's `upstream_stream.py` implements a parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from core import ir

_decode = msgspec.json.Decoder()
# What a parser raises on an answer that is not the shape it expects (a string for an object, a
# missing key): the answer was unreadable, which is not the gateway's own failure.
UNREADABLE = (msgspec.DecodeError, AttributeError, KeyError, IndexError, TypeError, ValueError)


def _sse_event(block: bytes) -> tuple[str | None, bytes] | None:
    event: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value[:1] == b" " else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    return (event, b"\n".join(data)) if data else None


class SseFrames:
    """(event name, data) pairs from an SSE body fed chunk by chunk; comments and blank lines
    are skipped.

    Works on bytes, an event at a time (splitting on blank lines), rather than decoding line by
    line: forwarding a 200-event stream spent most of its time in text decoding otherwise.
    `feed` yields lazily, so a reader that stops early never frames the rest of a chunk.
    """

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, chunk: bytes) -> Iterator[tuple[str | None, bytes]]:
        self.buffer += chunk
        if b"\r" in self.buffer:  # CRLF framing (Gemini); a CR split from its LF waits a chunk
            self.buffer = self.buffer.replace(b"\r\n", b"\n")
        while (end := self.buffer.find(b"\n\n")) >= 0:
            block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            if (parsed := _sse_event(block)) is not None:
                yield parsed

    def close(self) -> Iterator[tuple[str | None, bytes]]:
        """The body ended: an event left without its blank line still counts."""
        rest = self.buffer.strip()
        if rest and (parsed := _sse_event(rest)) is not None:
            yield parsed


class StreamParser:
    """One upstream stream read into IR events; `HttpAdapter.parse_stream` is the loop driving it.

    `feed` turns one SSE event into IR events; `end` answers the end of the upstream's body
    (close what is open, or report a cut stream); `failure` answers an event the parser could
    not read (the stream stops there). `done` says the reply is over (its terminal event or its
    error were fed): the loop reads no further.
    """

    done = False

    def feed(self, name: str | None, data: bytes) -> list[ir.StreamEvent]:
        raise NotImplementedError

    def end(self) -> list[ir.StreamEvent]:
        return []

    def failure(self, exc: Exception) -> list[ir.StreamEvent]:
        return [ir.StreamError("api_error", "upstream sent an unreadable event", unreadable=True)]


class JsonChunks(StreamParser):
    """A stream whose events are JSON objects: a subclass writes only `feed_json`.

    Data that is not JSON ends the stream with `invalid`; JSON that is not an object is skipped.
    """

    invalid = "upstream sent an invalid stream chunk"

    def feed(self, name: str | None, data: bytes) -> list[ir.StreamEvent]:
        try:
            payload = self.decode(data)
        except msgspec.DecodeError:
            self.done = True
            return [ir.StreamError("api_error", self.invalid, unreadable=True)]
        return self.feed_json(name, payload) if isinstance(payload, dict) else []

    def decode(self, data: bytes) -> Any:
        return _decode.decode(data)

    def feed_json(self, name: str | None, payload: dict[str, Any]) -> list[ir.StreamEvent]:
        raise NotImplementedError
