"""`python -m gateway.devserver`: daphne, as `make run` serves the quick start, with the limits of
gateway/connection_guard.py.

daphne is Twisted's HTTPChannel under an ASGI bridge. Twisted answers a head over 16 KiB with a
bare 400 and times out only a connection silent for a minute, so a head or body trickled a byte
at a time is read for ever; daphne's ASGI `send` puts each body into the socket's write buffer
without waiting, so a client that never reads a stream makes the process hold all of it. This
is daphne's own command line and `Server` (same options), with `GuardedChannel` applying the
limits and a `send` that waits while the client's socket buffer is full: the application, and
with it the read from the upstream, pauses until the client reads.
"""

# isort: off
import daphne.server  # first: it installs the asyncio reactor that Twisted must run on

# isort: on
import asyncio
import os

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory
from twisted.internet import reactor
from twisted.web import http

from core.errors import GatewayError
from gateway import connection_guard as guard


class GuardedChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with the connection limits.

    Twisted reads a whole request (head, then body into `Request.content`) before daphne starts
    the application, so every limit on the way in is enforced here, where no application runs
    yet. While a response is written, the transport calls `pauseProducing` when its buffer is
    full (over 64 KiB) and `resumeProducing` once drained; `drained` lets the ASGI `send` wait.
    """

    def __init__(self, limits: guard.ConnectionLimits, pending: guard.Pending) -> None:
        super().__init__()
        self.limits, self.pending = limits, pending
        self.MAX_LENGTH = limits.max_head_bytes  # one line of a head (LineReceiver)
        self.totalHeadersSize = limits.max_head_bytes  # checked first below, to answer 431
        self.body_bytes = self.body_counted = 0  # received; received when the clock started
        self.body_started = self.body_seen = 0.0
        self.deadline = None  # of the head or body being read
        self.send_stall = None  # armed while the transport's buffer is full
        self.writable: asyncio.Event | None = None
        self.refused = self.lost = False
        self.seconds = reactor.seconds  # the clock of `callLater` (tests give both a fake)

    # --- the way in: head, body, waiting ----------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()
        self.pending.add(self)
        self.deadline = self.callLater(self.limits.head_timeout, self.head_timed_out)

    def dataReceived(self, data: bytes) -> None:
        if self.refused:
            return  # lingering after a refusal: what the client still sends is dropped
        super().dataReceived(data)
        if self.refused or self.lost or self._handlingRequest:
            return
        if self.line_mode:
            if self.deadline is None and (self._buffer or self.requests):  # a head begun
                self.deadline = self.callLater(self.limits.head_timeout, self.head_timed_out)
            return
        self.body_seen = now = self.seconds()
        if self.deadline is None:
            self.body_started = now
            self.deadline = self.callLater(self.limits.body_timeout, self.body_timed_out)

    def lineReceived(self, line: bytes) -> None:
        if self.refused:
            return
        if self._receivedHeaderSize + len(line) > self.limits.max_head_bytes:
            self.refuse(guard.head_too_large(self.limits))
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.refuse(guard.head_too_large(self.limits))

    def allHeadersReceived(self) -> None:
        if self.length is not None and self.length > self.limits.max_body_bytes:
            self.refuse(guard.body_too_large(self.limits))  # before any 100 Continue
            return
        self.cancel_deadline()
        self.body_bytes = self.body_counted = 0
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if self.refused:
            return
        if not self._handlingRequest:  # a body (chunk framing included)
            self.body_bytes += len(data)
            if self.body_bytes > self.limits.max_body_bytes:
                self.refuse(guard.body_too_large(self.limits))
                return
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        self.cancel_deadline()
        self.pending.discard(self)
        super().allContentReceived()

    def requestDone(self, request) -> None:
        super().requestDone(request)
        if self.persistent and not (self.refused or self.lost or self._handlingRequest):
            self.pending.add(self)  # kept alive: waiting for the next request

    def _respondToBadRequestAndDisconnect(self) -> None:  # Twisted's bare 400, for any flaw
        self.refuse(guard.malformed())

    def head_timed_out(self) -> None:
        self.deadline = None
        self.refuse(guard.head_timeout(self.limits))

    def body_timed_out(self) -> None:
        self.deadline = None
        if self.line_mode or self._handlingRequest:
            return
        now = self.seconds()
        if self._waitingForTransport:  # the client is not reading our answers: nor are we
            self.body_started = self.body_seen = now
            self.body_counted = self.body_bytes
        received = self.body_bytes - self.body_counted
        deadline = self.limits.body_deadline(self.body_started, self.body_seen, received)
        if deadline > now:
            self.deadline = self.callLater(deadline - now, self.body_timed_out)
        else:
            self.refuse(guard.body_timeout(self.limits))

    def cancel_deadline(self) -> None:
        if self.deadline is not None:
            if self.deadline.active():
                self.deadline.cancel()
            self.deadline = None

    def refuse(self, err: GatewayError) -> None:
        """Answer `err`, read no more, and close once the client has had time to read it.

        Only ever called before the application starts (see the class docstring), so no
        response is under way."""
        if self.refused:
            return
        self.refused = True
        self.pending.discard(self)
        self.cancel_deadline()
        self.setTimeout(None)
        # The request target, once its line was read (Twisted keeps it until the request ends).
        self.transport.write(guard.refusal(err, getattr(self, "_path", None)))
        self.transport.loseWriteConnection()
        self.deadline = self.callLater(guard.LINGER_SECONDS, self.transport.abortConnection)

    def drop(self) -> None:
        """Close at once, without an answer: the oldest waiting connection when one more
        arrives past the limit, or a client that read nothing for `send_timeout`."""
        self.pending.discard(self)
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        self.lost = True
        self.pending.discard(self)
        self.cancel_deadline()
        if self.send_stall is not None and self.send_stall.active():
            self.send_stall.cancel()
        if self.writable is not None:
            self.writable.set()  # a waiting `send` returns; daphne then drops what it sends
        super().connectionLost(reason)

    # --- the way out: backpressure ----------------------------------------------------------

    def pauseProducing(self) -> None:
        super().pauseProducing()
        if self.writable is None:
            self.writable = asyncio.Event()
        self.writable.clear()
        if self.send_stall is None or not self.send_stall.active():
            self.send_stall = self.callLater(self.limits.send_timeout, self.drop)

    def resumeProducing(self) -> None:
        super().resumeProducing()
        if self.writable is not None:
            self.writable.set()
        if self.send_stall is not None and self.send_stall.active():
            self.send_stall.cancel()
        self.send_stall = None

    async def drained(self) -> None:
        """Wait while the client's socket buffer is full (and the connection open)."""
        while self._waitingForTransport and not self.lost and self.writable is not None:
            await self.writable.wait()


class GuardedFactory(HTTPFactory):
    """daphne's factory, building `GuardedChannel`s that share one process's limits."""

    def __init__(self, server: daphne.server.Server) -> None:
        super().__init__(server)
        self.limits = guard.ConnectionLimits.from_settings()
        self.pending = guard.Pending(self.limits.max_pending)
        self.timeOut = self.limits.keepalive_timeout  # Twisted's idle timeout: keep-alive

    def protocol(self) -> http._GenericHTTPChannelProtocol:
        return http._GenericHTTPChannelProtocol(GuardedChannel(self.limits, self.pending))


# Connections the kernel queues before the server accepts them: Twisted's default, 50, drops
# the connections of a burst beyond it (their clients retry a second later); uvicorn uses 2048.
LISTEN_BACKLOG = 2048


class Server(daphne.server.Server):
    """daphne's server with `GuardedFactory`, a `send` that honours backpressure and uvicorn's
    listen backlog."""

    def __init__(self, *args, endpoints: list[str] | None = None, **kwargs) -> None:
        endpoints = [
            f"{endpoint}:backlog={LISTEN_BACKLOG}"
            if endpoint.startswith(("tcp:", "unix:")) and "backlog=" not in endpoint
            else endpoint
            for endpoint in endpoints or []
        ]
        super().__init__(*args, endpoints=endpoints, **kwargs)

    # daphne's `run` builds its factory inline (`self.http_factory = HTTPFactory(self)`);
    # this property puts ours in its place.
    @property
    def http_factory(self) -> GuardedFactory:
        return self._guarded_factory

    @http_factory.setter
    def http_factory(self, daphne_factory: HTTPFactory) -> None:
        self._guarded_factory = GuardedFactory(self)

    async def handle_reply(self, protocol, message) -> None:
        channel = getattr(protocol, "channel", None)  # gone once the request has finished
        if channel is not None and channel._waitingForTransport:
            await channel.drained()
        await super().handle_reply(protocol, message)


class Command(CommandLineInterface):
    """daphne's command line, serving with `Server`."""

    server_class = Server


def main() -> None:
    """`python -m gateway.devserver -b HOST -p PORT gateway.asgi:application`, as `make run`
    runs it; any daphne option works."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    guard.ConnectionLimits.from_settings()  # a bad TOLLGATE_* value stops us here
    Command.entrypoint()


if __name__ == "__main__":
    main()
