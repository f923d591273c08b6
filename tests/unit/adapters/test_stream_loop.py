"""The one stream loop (`HttpAdapter.parse_stream`) and its parser contract."""

from __future__ import annotations

from core import ir
from protocols.stream import JsonChunks, StreamParser
from providers.adapters.base import HttpAdapter


class _Lines(StreamParser):
    """A parser that turns each event into a text delta; `stop` ends it, `bad` is unreadable."""

    def __init__(self) -> None:
        self.ended = False

    def feed(self, name, data):
        if data == b"bad":
            raise KeyError("bad")
        if data == b"stop":
            self.done = True
        return [ir.TextDelta(data.decode())]

    def end(self):
        self.ended = True
        return [ir.StreamEnd("end_turn", ir.Usage())]


class _Adapter(HttpAdapter):
    kind = "test"

    def __init__(self, parser: StreamParser):
        self.parser = parser

    def stream_parser(self, request, target):
        return self.parser


async def _events(*datas: bytes):
    for data in datas:
        yield None, data


async def _run(parser: StreamParser, *datas: bytes) -> list[ir.StreamEvent]:
    return [e async for e in _Adapter(parser).parse_stream(_events(*datas), None, None)]


async def test_the_body_s_end_is_told_to_the_parser_after_every_event():
    parser = _Lines()
    out = await _run(parser, b"a", b"b")
    assert out == [ir.TextDelta("a"), ir.TextDelta("b"), ir.StreamEnd("end_turn", ir.Usage())]


async def test_a_reply_that_is_over_stops_the_reading_and_is_not_ended_again():
    parser = _Lines()
    out = await _run(parser, b"a", b"stop", b"after")
    assert out == [ir.TextDelta("a"), ir.TextDelta("stop")] and not parser.ended


async def test_an_unreadable_event_ends_the_stream_with_an_unreadable_error():
    parser = _Lines()
    out = await _run(parser, b"a", b"bad", b"after")
    assert out == [
        ir.TextDelta("a"),
        ir.StreamError("api_error", "upstream sent an unreadable event", unreadable=True),
    ]
    assert not parser.ended


class _Objects(JsonChunks):
    def feed_json(self, name, payload):
        return [ir.TextDelta(payload["text"])]


async def test_json_chunks_skip_non_objects_and_stop_at_invalid_json():
    out = await _run(_Objects(), b"[1]", b'{"text": "x"}', b"{nope", b'{"text": "y"}')
    assert out == [
        ir.TextDelta("x"),
        ir.StreamError("api_error", "upstream sent an invalid stream chunk", unreadable=True),
    ]
