"""HeadHoldingTransport: a response head leaves with its first body bytes, or alone at tick end."""

from __future__ import annotations

import asyncio

from gateway.server import HeadHoldingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """The socket side: what was written, in which calls."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str):
        return f"info:{name}"


def wrap() -> tuple[HeadHoldingTransport, Recorder]:
    socket = Recorder()
    return HeadHoldingTransport(socket, asyncio.get_running_loop()), socket


async def test_head_and_body_written_in_one_tick_go_out_in_one_write():
    transport, socket = wrap()
    transport.write(HEAD)
    assert socket.writes == []
    transport.write(b"{}")
    assert socket.writes == [HEAD + b"{}"]  # at once, not at the end of the tick
    await asyncio.sleep(0)
    assert socket.writes == [HEAD + b"{}"]


async def test_a_head_with_no_body_in_its_tick_goes_out_alone_at_the_tick_end():
    transport, socket = wrap()
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert socket.writes == [HEAD]
    transport.write(b"{}")
    assert socket.writes == [HEAD, b"{}"]


async def test_body_chunks_are_never_held():
    transport, socket = wrap()
    transport.write(HEAD)
    transport.write(b"5\r\nfirst\r\n")
    transport.write(b"6\r\nsecond\r\n")
    assert socket.writes == [HEAD + b"5\r\nfirst\r\n", b"6\r\nsecond\r\n"]


async def test_close_sends_a_held_head_first_and_abort_drops_it():
    transport, socket = wrap()
    transport.write(HEAD)
    transport.close()
    assert socket.writes == [HEAD] and socket.closed

    transport, socket = wrap()
    transport.write(HEAD)
    transport.abort()
    await asyncio.sleep(0)
    assert socket.writes == [] and socket.aborted


async def test_everything_else_is_the_real_transport():
    transport, _ = wrap()
    assert transport.get_extra_info("peername") == "info:peername"
