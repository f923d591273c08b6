"""WireTransport against a loopback server scripted byte for byte: framing, pool, failures.

The server (`Upstream`) reads each request (head and content-length body), records it, and answers
with the next scripted reply; a reply is a coroutine given the connection's reader and writer that
says whether the connection stays open. Nothing inside the transport is mocked.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers import wire
from providers.wire import WireTransport

# A reply writes to the connection and returns whether the server keeps it open.
Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    raw: bytes
    connection: int  # 1 for the first connection the server accepted, 2 for the next...


class Upstream:
    """A loopback HTTP/1.1 server that answers with scripted raw bytes and counts connections."""

    def __init__(self) -> None:
        self.accepts = 0
        self.ended = 0  # connections whose handler finished (either side closed)
        self.requests: list[Received] = []
        self.replies: collections.deque[Reply] = collections.deque()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.close()
        for writer in self._writers:  # a handler still reading or stalled sees its end and returns
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self._tasks), 2)
        await self.server.wait_closed()

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with self._changed, asyncio.timeout(2):
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        self._writers.append(writer)
        self.accepts += 1
        number = self.accepts
        try:
            while (request := await _read_request(reader, number)) is not None:
                self.requests.append(request)
                await self._notify()
                if not self.replies or not await self.replies.popleft()(reader, writer):
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.ended += 1
            self._tasks.discard(asyncio.current_task())
            await self._notify()


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client hung up between requests
    request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, target, headers, body, head + body, connection)


def send(raw: bytes, *, then_close: bool = False) -> Reply:
    async def reply(reader, writer):
        writer.write(raw)
        await writer.drain()
        return not then_close

    return reply


def ok(body: bytes = b"ok", *headers: str) -> Reply:
    head = "".join(f"{header}\r\n" for header in headers)
    return send(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), head.encode()) + body
    )


def send_then_wait_for_hangup(raw: bytes) -> Reply:
    """Write `raw`, then stall until the client closes the connection."""

    async def reply(reader, writer):
        writer.write(raw)
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()
        return False

    return reply


def wire_client(url: str, timeout: httpx2.Timeout | float = 2.0, **limits) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=WireTransport(limits=httpx2.Limits(**{"max_connections": 10, **limits})),
        base_url=url,
        timeout=timeout,
        trust_env=False,
    )


@pytest.fixture
async def upstream():
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (certificate path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(folder / "cert.pem"), str(folder / "key.pem")


@pytest.fixture
async def tls_upstream(certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = Upstream()
    await server.start(tls=context)
    yield server
    await server.stop()


@pytest.fixture
async def client(upstream):
    async with wire_client(upstream.url) as client:
        yield client


# -- one exchange ---------------------------------------------------------------------------------


async def test_json_post_round_trips_status_headers_body_and_arrives_as_one_request(
    upstream, client
):
    answer = b'{"id":"msg_1","ok":true}'
    upstream.script(
        send(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Request-Id: r-7\r\n"
            b"Content-Length: %d\r\n\r\n" % len(answer) + answer
        )
    )

    response = await client.post(
        "/v1/messages?beta=true&x=1",
        json={"model": "m", "max_tokens": 5},
        headers={"x-api-key": "k"},
    )

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "r-7"
    assert response.json() == {"id": "msg_1", "ok": True}
    assert response.http_version == "HTTP/1.1"
    [request] = upstream.requests
    assert (request.method, request.target) == ("POST", "/v1/messages?beta=true&x=1")
    assert request.headers["host"] == f"127.0.0.1:{upstream.port}"
    assert request.headers["x-api-key"] == "k"
    assert json.loads(request.body) == {"model": "m", "max_tokens": 5}
    assert request.headers["content-length"] == str(len(request.body))
    assert request.raw.startswith(b"POST /v1/messages?beta=true&x=1 HTTP/1.1\r\n")
    assert request.raw.count(b"HTTP/1.1") == 1  # exactly one request line, head then body
    assert request.raw.endswith(b"\r\n\r\n" + request.body)


async def test_head_with_content_length_completes_without_waiting_for_a_body(upstream):
    upstream.script(send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"), ok(b"after"))
    async with wire_client(upstream.url, timeout=httpx2.Timeout(5, read=0.5)) as client:
        started = time.monotonic()
        head = await client.head("/thing")
        assert time.monotonic() - started < 0.4
        after = await client.get("/after")

    assert head.status_code == 200
    assert head.headers["content-length"] == "1234"
    assert head.content == b""
    assert after.content == b"after"
    assert upstream.accepts == 1  # the connection stayed in step for the next exchange


async def test_a_one_mebibyte_request_body_arrives_intact(upstream, client):
    body = bytes(range(256)) * 4096
    upstream.script(ok(b"got it"))

    response = await client.post("/upload", content=body)

    assert response.content == b"got it"
    [request] = upstream.requests
    assert request.headers["content-length"] == str(len(body))
    assert request.body == body


@pytest.mark.parametrize(
    "headers",
    [
        {"x-evil": "a\r\nX-Injected: 1"},
        {"x-evil": "a\nX-Injected: 1"},
        {"x-evil": "a\rb"},
        {"x-evil": "a\0b"},
        {"x-evil:x-injected": "1"},
    ],
    ids=["crlf", "bare-lf", "bare-cr", "nul", "colon-in-name"],
)
async def test_a_header_that_would_split_the_head_is_refused_before_anything_is_sent(
    upstream, client, headers
):
    with pytest.raises(httpx2.LocalProtocolError, match="illegal header"):
        await client.get("/", headers=headers)

    assert upstream.accepts == 0
    assert upstream.requests == []


# -- keep-alive -----------------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(upstream, client):
    upstream.script(ok(b"one"), ok(b"two"))

    first = await client.get("/1")
    second = await client.get("/2")

    assert (first.content, second.content) == (b"one", b"two")
    assert upstream.accepts == 1
    assert [r.connection for r in upstream.requests] == [1, 1]


async def test_a_connection_close_response_is_not_reused(upstream, client):
    # The server leaves the connection open: only the client honouring the header closes it.
    upstream.script(ok(b"one", "Connection: close"), ok(b"two"))

    first = await client.get("/1")
    await upstream.until(lambda: upstream.ended == 1)  # the client hung up connection 1
    second = await client.get("/2")

    assert (first.content, second.content) == (b"one", b"two")
    assert upstream.accepts == 2
    assert [r.connection for r in upstream.requests] == [1, 2]


async def test_an_idle_connection_closed_by_the_server_is_replaced(upstream, client):
    upstream.script(send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none", then_close=True))
    upstream.script(ok(b"two"))

    first = await client.get("/1")
    await upstream.until(lambda: upstream.ended == 1)
    await asyncio.sleep(0.05)  # let the client's loop see the FIN, as it would between requests
    second = await client.get("/2")

    assert (first.content, second.content) == (b"one", b"two")
    assert upstream.accepts == 2


def hang_up() -> Reply:
    """Close the connection without a byte of answer (an idle-timeout close racing a request)."""

    async def reply(reader, writer):
        return False

    return reply


async def test_a_request_that_meets_a_server_closing_its_idle_connection_is_sent_again(
    upstream, client
):
    upstream.script(ok(b"one"), hang_up(), ok(b"two"))

    first = await client.get("/1")
    second = await client.post("/2", content=b"payload")  # lands on the closing connection

    assert (first.content, second.content) == (b"one", b"two")
    assert upstream.accepts == 2
    assert [(r.target, r.body, r.connection) for r in upstream.requests[1:]] == [
        ("/2", b"payload", 1),
        ("/2", b"payload", 2),
    ]


async def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_resend(upstream, client):
    upstream.script(hang_up(), ok(b"never"))

    with pytest.raises(httpx2.RemoteProtocolError):
        await client.post("/1", content=b"payload")
    assert len(upstream.requests) == 1


async def test_a_reused_connection_closed_after_part_of_an_answer_is_not_resent(upstream, client):
    upstream.script(
        ok(b"one"), send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal", then_close=True)
    )
    await client.get("/1")
    response = await client.send(client.build_request("POST", "/2"), stream=True)
    with pytest.raises(httpx2.RemoteProtocolError):
        await response.aread()
    assert len(upstream.requests) == 2


async def test_an_expired_idle_connection_is_not_reused(upstream):
    upstream.script(ok(b"one"), ok(b"two"))
    async with wire_client(upstream.url, keepalive_expiry=0.05) as client:
        await client.get("/1")
        await asyncio.sleep(0.1)
        second = await client.get("/2")

    assert second.content == b"two"
    assert upstream.accepts == 2


# -- response bodies ------------------------------------------------------------------------------


async def test_a_chunked_body_streams_each_chunk_as_it_arrives(upstream, client):
    go_on = asyncio.Event()

    async def reply(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst \r\n")
        await writer.drain()
        await go_on.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        return True

    upstream.script(reply, ok(b"next"))

    response = await client.send(client.build_request("GET", "/stream"), stream=True)
    chunks = response.aiter_bytes()
    assert await anext(chunks) == b"first "  # the server is still holding the rest back
    go_on.set()
    assert [chunk async for chunk in chunks] == [b"second"]
    await response.aclose()
    assert (await client.get("/next")).content == b"next"
    assert upstream.accepts == 1


async def test_a_body_delimited_by_the_connection_closing_is_read_fully(upstream, client):
    async def reply(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"until close")
        await writer.drain()
        return False

    upstream.script(reply)
    upstream.script(ok(b"fresh"))

    response = await client.get("/legacy")
    after = await client.get("/after")

    assert response.content == b"no length, until close"
    assert after.content == b"fresh"
    assert upstream.accepts == 2


async def test_a_fast_server_and_a_slow_reader_get_the_whole_body_with_backpressure(upstream):
    body = bytes(range(251)) * (32 * 1024)  # about 8 MB, in a pattern that exposes misordering
    written = asyncio.Event()

    async def reply(reader, writer):
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for offset in range(0, len(body), 65536):
            writer.write(body[offset : offset + 65536])
            await writer.drain()
        written.set()
        return True

    upstream.script(reply, ok(b"next"))
    async with wire_client(upstream.url) as client:
        response = await client.send(client.build_request("GET", "/big"), stream=True)
        chunks = response.aiter_bytes()
        received = [await anext(chunks)]
        await asyncio.sleep(0.2)
        assert not written.is_set()  # the paused reader held the server back
        async for chunk in chunks:
            received.append(chunk)
            await asyncio.sleep(0.001)
        await response.aclose()
        after = await client.get("/next")

    assert written.is_set()
    assert b"".join(received) == body
    assert after.content == b"next"
    assert upstream.accepts == 1


async def test_a_connection_reused_after_a_paused_body_was_closed_unread_reads_again(upstream):
    # Just over the reader's high-water mark: the last byte pauses the socket and completes the
    # body at once, so the connection goes back to the pool with reading paused.
    body = b"x" * (256 * 1024 + 1)
    upstream.script(ok(body), ok(b"next"))
    async with wire_client(upstream.url, timeout=httpx2.Timeout(5, read=1)) as client:
        response = await client.send(client.build_request("GET", "/big"), stream=True)
        await asyncio.sleep(0.2)  # the whole body arrives in the client's buffers
        await response.aclose()
        after = await client.get("/next")

    assert after.content == b"next"


async def test_a_response_arriving_three_bytes_at_a_time_parses_the_same(upstream, client):
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )

    async def reply(reader, writer):
        for offset in range(0, len(raw), 3):  # splits names, values, sizes and the CRLFs
            writer.write(raw[offset : offset + 3])
            await writer.drain()
            await asyncio.sleep(0.001)
        return True

    upstream.script(reply, ok(b"next"))

    response = await client.get("/")
    after = await client.get("/next")

    assert response.headers["content-type"] == "text/plain"
    assert response.content == b"hello world"
    assert after.content == b"next"
    assert upstream.accepts == 1


async def test_an_interim_103_answer_is_skipped_for_the_final_one(upstream, client):
    async def reply(reader, writer):
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)  # the final answer comes in a later read
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal")
        await writer.drain()
        return True

    upstream.script(reply, ok(b"next"))

    response = await client.get("/")
    after = await client.get("/next")

    assert response.status_code == 200
    assert response.headers["x-final"] == "yes"
    assert "link" not in response.headers
    assert response.content == b"final"
    assert after.content == b"next"
    assert upstream.accepts == 1


# -- failures -------------------------------------------------------------------------------------


async def test_an_upgrade_nobody_asked_for_raises_remote_protocol_error(upstream, client, caplog):
    upstream.script(
        send_then_wait_for_hangup(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
    )

    with pytest.raises(httpx2.RemoteProtocolError):
        await client.get("/")

    # The parser's upgrade signal was handled, not left to escape the protocol callback.
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []


async def test_the_server_closing_mid_body_raises_remote_protocol_error(upstream):
    upstream.script(
        send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", then_close=True),
        ok(b"next"),
    )
    async with wire_client(upstream.url, max_connections=1) as client:
        with pytest.raises(
            httpx2.RemoteProtocolError, match="closed the connection mid-response"
        ) as cut:
            await client.get("/cut")
        after = await client.get("/next")

    assert isinstance(cut.value, httpx2.TransportError)  # what the adapters catch
    assert after.content == b"next"  # the broken connection gave its pool slot back
    assert upstream.accepts == 2


async def test_garbage_instead_of_a_response_raises_remote_protocol_error(upstream, client):
    upstream.script(send(b"SPDY/9 banana\r\n\r\n"))

    with pytest.raises(httpx2.RemoteProtocolError, match="malformed upstream response"):
        await client.get("/")


async def test_no_response_head_in_time_raises_read_timeout(upstream):
    upstream.script(send_then_wait_for_hangup(b""))
    async with wire_client(upstream.url, timeout=httpx2.Timeout(5, read=0.1)) as client:
        started = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            await client.get("/slow")
        elapsed = time.monotonic() - started

    assert 0.1 <= elapsed < 1
    await upstream.until(lambda: upstream.ended == 1)  # the timed-out connection was closed


async def test_a_read_timeout_changed_after_the_head_applies_to_the_next_chunk(upstream, client):
    upstream.script(
        send_then_wait_for_hangup(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        )
    )
    request = client.build_request("GET", "/stream", timeout=httpx2.Timeout(5))
    response = await client.send(request, stream=True)
    # What the adapters do once the first byte is in: the per-read timeout becomes the idle one.
    request.extensions["timeout"]["read"] = 0.1
    chunks = response.aiter_bytes()
    assert await anext(chunks) == b"first"

    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        await anext(chunks)
    assert time.monotonic() - started < 1
    await response.aclose()


async def test_a_port_nobody_listens_on_raises_connect_error_and_frees_the_slot():
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"
        async with wire_client(url, timeout=httpx2.Timeout(2, pool=0.2), max_connections=1) as c:
            for _ in range(2):  # a leaked slot would make the second attempt a PoolTimeout
                with pytest.raises(httpx2.ConnectError):
                    await c.get("/")


async def test_a_full_accept_queue_raises_connect_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        # One handshake fills a backlog-0 queue that nobody accepts; later SYNs are dropped.
        with socket.create_connection(listener.getsockname()):
            url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            async with wire_client(url, timeout=httpx2.Timeout(2, connect=0.2)) as client:
                started = time.monotonic()
                with pytest.raises(httpx2.ConnectTimeout):
                    await client.get("/")
                assert time.monotonic() - started < 1


# -- the pool -------------------------------------------------------------------------------------


async def test_with_one_connection_a_concurrent_request_waits_then_reuses_it(upstream):
    go_on = asyncio.Event()

    async def held(reader, writer):
        await go_on.wait()
        return await ok(b"first")(reader, writer)

    upstream.script(held, ok(b"second"))
    async with wire_client(upstream.url, max_connections=1) as client:
        first = asyncio.create_task(client.get("/1"))
        await upstream.until(lambda: len(upstream.requests) == 1)
        second = asyncio.create_task(client.get("/2"))
        await asyncio.sleep(0.05)
        assert len(upstream.requests) == 1  # the second request is waiting for the connection
        go_on.set()
        responses = await asyncio.gather(first, second)

    assert [r.content for r in responses] == [b"first", b"second"]
    assert upstream.accepts == 1
    assert [r.connection for r in upstream.requests] == [1, 1]


async def test_waiting_longer_than_the_pool_timeout_raises_pool_timeout(upstream):
    upstream.script(
        send_then_wait_for_hangup(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"),
        ok(b"third"),
    )
    async with wire_client(upstream.url, max_connections=1) as client:
        busy = await client.send(client.build_request("GET", "/1"), stream=True)
        started = time.monotonic()
        with pytest.raises(httpx2.PoolTimeout):
            await client.get("/2", timeout=httpx2.Timeout(5, pool=0.2))
        assert 0.2 <= time.monotonic() - started < 1
        await busy.aclose()
        third = await client.get("/3")

    assert third.content == b"third"
    assert [r.target for r in upstream.requests] == ["/1", "/3"]


def send_in_two(first: bytes, rest: bytes, pause: float = 0.05) -> Reply:
    """Write `first`, wait, then `rest`; the connection stays open."""

    async def reply(reader, writer):
        writer.write(first)
        await writer.drain()
        await asyncio.sleep(pause)
        writer.write(rest)
        await writer.drain()
        return True

    return reply


async def test_a_response_closed_just_before_its_end_keeps_its_connection(upstream):
    # A stream's reader stops at its last event; the terminating chunk is still on its way.
    upstream.script(
        send_in_two(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nlast.\r\n",
            b"0\r\n\r\n",
        ),
        ok(b"next"),
    )
    async with wire_client(upstream.url, max_connections=1) as c:
        response = await c.send(c.build_request("GET", "/1"), stream=True)
        assert await anext(response.aiter_bytes()) == b"last."
        await response.aclose()  # before the zero-length chunk arrived
        after = await c.get("/2")  # waits for the slot until the drain settles

    assert after.content == b"next"
    assert upstream.accepts == 1


async def test_a_response_closed_far_from_its_end_is_cut_not_read(upstream):
    remainder = b"x" * (1024 * 1024)
    upstream.script(
        send_in_two(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nhalf" % (4 + len(remainder)),
            remainder,
            pause=0.01,
        ),
        ok(b"next"),
    )
    async with wire_client(upstream.url, timeout=httpx2.Timeout(2, pool=0.9)) as c:
        response = await c.send(c.build_request("GET", "/1"), stream=True)
        assert await anext(response.aiter_bytes()) == b"half"
        await response.aclose()
        started = time.monotonic()
        await upstream.until(lambda: upstream.ended == 1)
        assert time.monotonic() - started < 0.5  # cut by the byte budget, not the deadline
        after = await c.get("/2")

    assert after.content == b"next"
    assert upstream.accepts == 2


async def test_a_response_given_up_with_abort_closes_its_connection_at_once(upstream):
    upstream.script(
        send_then_wait_for_hangup(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        ),
        ok(b"next"),
    )
    async with wire_client(upstream.url) as c:
        response = await c.send(c.build_request("GET", "/1"), stream=True)
        assert await anext(response.aiter_bytes()) == b"first"
        started = time.monotonic()
        response.extensions["abort"]()  # a client gone mid-reply: no drain, the close is news
        await response.aclose()
        await upstream.until(lambda: upstream.ended == 1)
        assert time.monotonic() - started < wire._DRAIN_SECONDS / 2
        after = await c.get("/2")

    assert after.content == b"next"
    assert upstream.accepts == 2


async def test_closing_a_response_early_closes_its_connection_and_frees_the_slot(upstream):
    upstream.script(
        send_then_wait_for_hangup(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"),
        ok(b"next"),
    )
    async with wire_client(
        upstream.url, timeout=httpx2.Timeout(2, pool=0.5), max_connections=1
    ) as c:
        response = await c.send(c.build_request("GET", "/1"), stream=True)
        assert await anext(response.aiter_bytes()) == b"half"
        await response.aclose()
        await upstream.until(lambda: upstream.ended == 1)  # the client hung up connection 1
        after = await c.get("/2")

    assert after.content == b"next"
    assert upstream.accepts == 2
    assert [r.connection for r in upstream.requests] == [1, 2]


async def test_a_waiter_cancelled_as_it_is_woken_passes_the_wake_up_on(upstream):
    upstream.script(ok(b"busy"), ok(b"third"))
    async with wire_client(upstream.url, max_connections=1) as client:
        busy = await client.send(client.build_request("GET", "/1"), stream=True)
        cancelled = asyncio.create_task(client.get("/2"))
        waiting = asyncio.create_task(client.get("/3", timeout=httpx2.Timeout(5, pool=1)))
        await asyncio.sleep(0.05)  # both queue for the one connection, /2 first
        await busy.aclose()  # the body is all in: frees the connection at once and wakes /2...
        cancelled.cancel()  # ...which is cancelled before it gets to run (a client hanging up)
        third = await waiting

    assert cancelled.cancelled()
    assert third.content == b"third"
    assert [r.target for r in upstream.requests] == ["/1", "/3"]


async def test_a_server_that_never_reads_the_body_raises_write_timeout_and_drops_the_rest():
    body = b"x" * (32 * 1024 * 1024)  # far more than the kernel buffers of both ends hold
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the handshake completes in the backlog; nobody reads yet
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        async with wire_client(url, timeout=httpx2.Timeout(2, write=0.2)) as client:
            with pytest.raises(httpx2.WriteTimeout):
                await client.post("/upload", content=body)
            accepted, _ = listener.accept()
            with accepted:
                accepted.setblocking(False)
                loop = asyncio.get_running_loop()
                received = 0
                while chunk := await asyncio.wait_for(loop.sock_recv(accepted, 1 << 20), 2):
                    received += len(chunk)

    # The connection ended without the client flushing the rest of a request it gave up on.
    assert received < len(body)


# -- TLS ------------------------------------------------------------------------------------------


async def test_tls_exchanges_round_trip_and_share_one_connection(tls_upstream, certificate):
    tls_upstream.script(ok(b"one"), ok(b"two"))
    transport = WireTransport(
        limits=httpx2.Limits(max_connections=10),
        ssl_context=ssl.create_default_context(cafile=certificate[0]),
    )
    async with httpx2.AsyncClient(
        transport=transport, base_url=tls_upstream.url, timeout=2, trust_env=False
    ) as client:
        first = await client.post("/1", content=b"over tls")
        second = await client.get("/2")

    assert (first.content, second.content) == (b"one", b"two")
    assert tls_upstream.requests[0].body == b"over tls"
    assert tls_upstream.accepts == 1


async def test_tls_to_an_untrusted_certificate_raises_connect_error(tls_upstream):
    async with wire_client(tls_upstream.url) as client:  # the default context: public CAs only
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get("/")

    assert tls_upstream.requests == []
