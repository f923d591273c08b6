"""Coalescer: events already received go out in one send; nothing waits for company."""

from __future__ import annotations

import asyncio

import pytest

from gateway.api.coalesce import MAX_PENDING_BYTES, Coalescer


class Sink:
    def __init__(self) -> None:
        self.sends: list[bytes] = []

    async def __call__(self, data: bytes) -> None:
        self.sends.append(data)


async def pump(events, out: Coalescer) -> None:
    """The shape of the streaming loop in gateway/api/messages.py."""
    while True:
        try:
            event = await out.before_waiting(anext(events))
        except StopAsyncIteration:
            break
        out.add(event)
        if out.full:
            await out.flush()
    await out.flush()


async def test_events_ready_together_go_out_in_one_send():
    async def ready():
        for part in (b"a", b"b", b"c"):
            yield part

    sink = Sink()
    await pump(ready(), Coalescer(sink))
    assert sink.sends == [b"abc"]


async def test_buffered_events_are_sent_before_the_source_waits():
    gate = asyncio.Event()
    sink = Sink()

    async def bursty():
        yield b"1"
        yield b"2"
        await gate.wait()  # the network has nothing more yet
        yield b"3"

    task = asyncio.create_task(pump(bursty(), Coalescer(sink)))
    await asyncio.sleep(0.01)
    assert sink.sends == [b"12"]  # out before the wait, not held for "3"
    gate.set()
    await task
    assert sink.sends == [b"12", b"3"]


async def test_a_source_that_never_waits_is_still_written_in_bounded_pieces():
    piece = b"x" * 1024

    async def firehose():
        for _ in range(100):
            yield piece

    sink = Sink()
    await pump(firehose(), Coalescer(sink))
    assert b"".join(sink.sends) == piece * 100
    assert len(sink.sends) > 1
    assert max(len(s) for s in sink.sends) <= MAX_PENDING_BYTES + len(piece)


async def test_cancellation_while_waiting_reaches_the_source():
    closed = asyncio.Event()
    gate = asyncio.Event()

    async def hanging():
        try:
            yield b"1"
            await gate.wait()
            yield b"never"
        finally:
            closed.set()

    sink = Sink()
    events = hanging()
    task = asyncio.create_task(pump(events, Coalescer(sink)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await events.aclose()
    assert closed.is_set()
    assert sink.sends == [b"1"]


async def test_cancellation_during_the_flush_is_delivered_to_the_waiting_source():
    release = asyncio.Event()
    seen: list[str] = []

    async def slow_send(data: bytes) -> None:
        await release.wait()  # a client reading slowly: the write blocks

    async def source():
        yield b"1"
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("source cancelled")
            raise
        yield b"2"

    events = source()
    out = Coalescer(slow_send)
    task = asyncio.create_task(pump(events, out))
    await asyncio.sleep(0.01)  # pump is blocked inside the flush, the source is mid-sleep
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["source cancelled"]
    await events.aclose()  # not left "already running"


async def test_a_result_without_waiting_sends_nothing():
    sink = Sink()
    out = Coalescer(sink)
    out.add(b"held")

    async def immediate():
        return 42

    assert await out.before_waiting(immediate()) == 42
    assert sink.sends == []
