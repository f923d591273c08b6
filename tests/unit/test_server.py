"""gateway/server.py: HeadHoldingTransport (a response head leaves with its first body bytes,
or alone at tick end) and HttpProtocol's connection limits, driven through a fake transport."""

from __future__ import annotations

import asyncio

from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway import connection_guard as guard
from gateway.server import HeadHoldingTransport, HttpProtocol

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


async def test_write_eof_sends_a_held_head_first():
    transport, socket = wrap()
    socket.eof_at = None
    socket.write_eof = lambda: setattr(socket, "eof_at", len(socket.writes))
    transport.write(HEAD)

    transport.write_eof()

    assert socket.writes == [HEAD] and socket.eof_at == 1


# --- HttpProtocol: the connection limits on httptools' callbacks ---------------------------

LIMITS = guard.ConnectionLimits(
    max_head_bytes=4096,
    head_timeout=0.05,
    body_timeout=0.05,
    body_min_rate=1_000_000,
    max_body_bytes=10_000,
    send_timeout=0.05,
    keepalive_timeout=5.0,
    max_pending=2,
)
AFTER = 0.15  # seconds: past every timeout above
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


class Socket(Recorder):
    """An asyncio transport, as the protocol sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.eof = False
        self.reading = True

    def write_eof(self) -> None:
        self.eof = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)

    @property
    def sent(self) -> bytes:
        return b"".join(self.writes)


class App:
    """An ASGI application that reads the whole body, then answers 200 unless told to hang."""

    def __init__(self, *, answer: bool = True) -> None:
        self.answer = answer
        self.received: list[dict] = []

    async def __call__(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if self.answer and message["type"] != "http.disconnect":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        else:
            await asyncio.Event().wait()  # an answer that never comes


def server_state(limits: guard.ConnectionLimits = LIMITS) -> ServerState:
    state = ServerState()
    state.tollgate_guard = (limits, guard.Pending(limits.max_pending))
    return state


def connect(app=None, state: ServerState | None = None) -> tuple[HttpProtocol, Socket]:
    config = Config(app=app or App(), lifespan="off", proxy_headers=False)
    config.load()
    protocol = HttpProtocol(config, state or server_state(), {}, asyncio.get_running_loop())
    socket = Socket()
    protocol.connection_made(socket)
    return protocol, socket


def status(sent: bytes) -> int:
    return int(sent.split(b" ", 2)[1])


async def test_a_head_past_the_limit_is_431_and_nothing_after_it_is_parsed():
    protocol, socket = connect()

    protocol.data_received(b"GET /healthz HTTP/1.1\r\nX-Filler: " + b"a" * 5000)
    protocol.data_received(b"\r\n\r\n" + GET)
    await asyncio.sleep(0)

    assert status(socket.sent) == 431
    assert socket.sent.count(b"HTTP/1.1") == 1
    assert socket.eof and not socket.closed  # lingering, so the client reads its answer


async def test_a_head_is_measured_across_reads():
    protocol, socket = connect()

    protocol.data_received(b"GET /healthz HTTP/1.1\r\n")
    for _ in range(5):
        protocol.data_received(b"X-Filler: " + b"a" * 990 + b"\r\n")
    await asyncio.sleep(0)

    assert status(socket.sent) == 431


async def test_a_silent_connection_is_408_after_the_head_timeout():
    _, socket = connect()

    await asyncio.sleep(AFTER)

    assert status(socket.sent) == 408
    assert b"request head not received" in socket.sent


async def test_an_ordinary_request_leaves_no_timer_armed():
    protocol, socket = connect()

    protocol.data_received(GET)

    assert protocol.deadline is None and protocol.send_stall is None
    await asyncio.sleep(AFTER)
    assert status(socket.sent) == 200 and not socket.closed


async def test_a_stalled_body_is_408_and_the_application_hears_a_disconnect():
    app = App()
    protocol, socket = connect(app)

    protocol.data_received(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    await asyncio.sleep(AFTER)

    assert status(socket.sent) == 408
    assert app.received[-1] == {"type": "http.disconnect"}


async def test_a_body_past_the_limit_is_413():
    protocol, socket = connect(App(answer=False))
    head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

    protocol.data_received(head + b"2710\r\n" + b" " * 10_000 + b"\r\n1\r\n ")
    await asyncio.sleep(0)

    assert status(socket.sent) == 413


async def test_past_the_waiting_bound_the_oldest_connection_is_dropped():
    state = server_state()
    (first, first_socket), (_, second_socket) = connect(state=state), connect(state=state)

    _, third_socket = connect(state=state)

    assert first_socket.aborted
    assert not second_socket.aborted and not third_socket.aborted
    first.connection_lost(None)


async def test_a_connection_whose_request_is_whole_no_longer_waits():
    state = server_state()
    busy, busy_socket = connect(App(answer=False), state)
    busy.data_received(GET)

    connect(state=state), connect(state=state)

    assert not busy_socket.aborted


async def test_a_kept_alive_connection_waits_again_after_its_answer():
    state = server_state()
    kept, kept_socket = connect(state=state)
    kept.data_received(GET)
    await asyncio.sleep(0.01)  # answered

    connect(state=state), connect(state=state)

    assert status(kept_socket.sent) == 200 and kept_socket.aborted


async def test_a_malformed_request_is_one_anthropic_shaped_400():
    protocol, socket = connect()

    protocol.data_received(b"NOT HTTP AT ALL " + b"a" * 5000)  # malformed, and over the cap
    await asyncio.sleep(0)

    assert status(socket.sent) == 400 and socket.sent.count(b"HTTP/1.1") == 1
    assert b'"type":"invalid_request_error"' in socket.sent and socket.eof


async def test_a_client_that_reads_nothing_for_the_send_timeout_is_dropped():
    protocol, socket = connect()

    protocol.pause_writing()
    await asyncio.sleep(AFTER)

    assert socket.aborted


async def test_a_client_that_reads_within_the_send_timeout_is_kept():
    protocol, socket = connect()
    protocol.data_received(GET)

    protocol.pause_writing()
    await asyncio.sleep(0.01)
    protocol.resume_writing()
    await asyncio.sleep(AFTER)

    assert not socket.aborted and protocol.send_stall is None
