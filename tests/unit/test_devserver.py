"""gateway/devserver.py: daphne's channel with the connection limits, driven through Twisted's
in-memory transport and a fake clock; and the `send` that waits for a paused client."""

from __future__ import annotations

import asyncio

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import http

from gateway import connection_guard as guard
from gateway.devserver import LISTEN_BACKLOG, GuardedChannel, Server

LIMITS = guard.ConnectionLimits(
    max_head_bytes=4096,
    head_timeout=10.0,
    body_timeout=5.0,
    body_min_rate=1000,
    max_body_bytes=10_000,
    send_timeout=60.0,
    keepalive_timeout=75.0,
    max_pending=2,
)
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"


class Transport(StringTransport):
    def __init__(self) -> None:
        super().__init__()
        self.write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Answering(http.Request):
    """A request answered at once (daphne's would start the application here)."""

    def process(self) -> None:
        self.write(b"ok")
        self.finish()


class Unanswered(http.Request):
    def process(self) -> None:
        pass


class Connection:
    def __init__(self, pending: guard.Pending | None = None, request=Answering) -> None:
        self.clock = Clock()
        if pending is None:
            pending = guard.Pending(LIMITS.max_pending)
        self.channel = GuardedChannel(LIMITS, pending)
        self.channel.callLater = self.clock.callLater
        self.channel.seconds = self.clock.seconds
        self.channel.requestFactory = request
        self.channel.timeOut = LIMITS.keepalive_timeout
        self.transport = Transport()
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    @property
    def status(self) -> int:
        return int(self.transport.value().split(b" ", 2)[1])


def test_a_header_line_past_the_limit_is_431():
    connection = Connection()

    connection.send(b"GET /healthz HTTP/1.1\r\nX-Filler: " + b"a" * 5000)

    assert connection.status == 431
    assert connection.transport.write_closed  # half-closed: the client reads its answer


def test_many_header_lines_past_the_limit_are_431_not_twisteds_bare_400():
    connection = Connection()

    connection.send(b"GET /healthz HTTP/1.1\r\n")
    for i in range(50):
        connection.send(b"X-Filler-%d: %s\r\n" % (i, b"a" * 100))

    assert connection.status == 431
    assert connection.transport.value().count(b"HTTP/1.1") == 1


def test_a_malformed_head_is_an_anthropic_shaped_400_not_twisteds_bare_one():
    connection = Connection()

    connection.send(b"GET /healthz HTTP/1.1\r\n" + b"X: y\r\n" * 600)  # over 500 headers

    assert connection.status == 400
    assert b'"type":"invalid_request_error"' in connection.transport.value()
    assert connection.transport.value().count(b"HTTP/1.1") == 1


def test_a_silent_connection_is_408_after_the_head_timeout_then_closed_after_the_linger():
    connection = Connection()

    connection.clock.advance(LIMITS.head_timeout)
    assert connection.status == 408 and not connection.transport.disconnected

    connection.clock.advance(guard.LINGER_SECONDS)
    assert connection.transport.disconnected


def test_a_head_trickled_in_is_408_at_the_head_timeout_from_the_connection_opening():
    connection = Connection()

    for _ in range(9):
        connection.send(b"G")
        connection.clock.advance(1)
    assert connection.transport.value() == b""
    connection.clock.advance(1)

    assert connection.status == 408


def test_a_body_that_pauses_past_the_body_timeout_is_408():
    connection = Connection()
    connection.send(POST + b"Content-Length: 100\r\n\r\n{")

    connection.clock.advance(LIMITS.body_timeout)

    assert connection.status == 408
    assert b"request body too slow" in connection.transport.value()


def test_a_body_below_the_minimum_rate_is_408_though_it_never_pauses():
    connection = Connection()
    connection.send(POST + b"Content-Length: 5000\r\n\r\n")

    for _ in range(8):  # a byte a second: never a 5 s pause, 1 byte/s against 1000
        connection.send(b" ")
        connection.clock.advance(1)

    assert connection.status == 408


def test_a_body_declared_over_the_limit_is_413_before_a_100_continue():
    connection = Connection()

    connection.send(POST + b"Expect: 100-continue\r\nContent-Length: 20000\r\n\r\n")

    assert connection.status == 413
    assert b"100 Continue" not in connection.transport.value()


def test_a_chunked_body_past_the_limit_is_413():
    connection = Connection()
    connection.send(POST + b"Transfer-Encoding: chunked\r\n\r\n")

    connection.send(b"2710\r\n" + b" " * 10_000 + b"\r\n1\r\n ")

    assert connection.status == 413


def test_an_ordinary_request_leaves_no_deadline_once_answered():
    connection = Connection()

    connection.send(GET)

    assert connection.status == 200 and connection.channel.deadline is None
    connection.clock.advance(LIMITS.head_timeout * 2)  # idle, kept alive: no 408
    assert connection.transport.value().count(b"HTTP/1.1") == 1


def test_past_the_waiting_bound_the_oldest_connection_is_dropped():
    pending = guard.Pending(2)
    first, second = Connection(pending), Connection(pending)

    third = Connection(pending)

    assert first.transport.disconnected
    assert not second.transport.disconnected and not third.transport.disconnected


def test_a_connection_whose_request_is_whole_no_longer_waits_and_waits_again_once_answered():
    pending = guard.Pending(1)
    busy = Connection(pending, request=Unanswered)
    busy.send(GET)

    Connection(pending)
    assert not busy.transport.disconnected

    busy.channel.requests[0].finish()  # answered: idle, kept alive
    Connection(pending)
    assert busy.transport.disconnected


async def test_a_paused_client_makes_send_wait_until_it_reads():
    connection = Connection()
    connection.channel.pauseProducing()

    waiting = asyncio.ensure_future(connection.channel.drained())
    await asyncio.sleep(0.01)
    assert not waiting.done()

    connection.channel.resumeProducing()
    await asyncio.wait_for(waiting, 1)


def test_a_client_that_reads_nothing_for_the_send_timeout_is_dropped():
    connection = Connection()
    connection.channel.pauseProducing()

    connection.clock.advance(LIMITS.send_timeout)

    assert connection.transport.disconnected


def test_a_client_that_reads_within_the_send_timeout_is_kept():
    connection = Connection()
    connection.send(GET)
    connection.channel.pauseProducing()
    connection.clock.advance(LIMITS.send_timeout / 2)
    connection.channel.resumeProducing()

    connection.clock.advance(LIMITS.send_timeout)

    assert not connection.transport.disconnected


class Replying:
    """daphne's side of a request (`WebRequest`): it writes what the application sends."""

    def __init__(self, channel: GuardedChannel) -> None:
        self.channel = channel
        self.replies: list[dict] = []

    def handle_reply(self, message: dict) -> None:
        self.replies.append(message)


@pytest.fixture
def server() -> Server:
    server = Server(application=None, endpoints=["tcp:port=8000:interface=127.0.0.1"])
    server.connections = {}
    return server


async def test_the_applications_send_waits_while_the_client_reads_nothing(server):
    connection = Connection()
    protocol = Replying(connection.channel)
    server.connections[protocol] = {}
    connection.channel.pauseProducing()
    body = {"type": "http.response.body", "body": b"x", "more_body": True}

    sending = asyncio.ensure_future(server.handle_reply(protocol, body))
    await asyncio.sleep(0.01)
    assert not sending.done() and protocol.replies == []

    connection.channel.resumeProducing()
    await asyncio.wait_for(sending, 1)
    assert protocol.replies == [body]


async def test_a_send_waiting_on_a_client_that_leaves_returns(server):
    connection = Connection()
    protocol = Replying(connection.channel)
    server.connections[protocol] = {}
    connection.channel.pauseProducing()
    sending = asyncio.ensure_future(server.handle_reply(protocol, {"type": "http.response.body"}))
    await asyncio.sleep(0.01)

    connection.channel.connectionLost(None)
    server.connections[protocol]["disconnected"] = 1.0  # as daphne's WebRequest records it

    await asyncio.wait_for(sending, 1)
    assert protocol.replies == []


def test_the_server_listens_with_uvicorns_backlog(server):
    assert server.endpoints == [f"tcp:port=8000:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"]
