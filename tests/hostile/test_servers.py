"""The servers themselves, before any key is read: what one connection may cost (issue 12, 4).

Real sockets against both servers users start: `make run` (gateway/devserver.py, daphne) and
`make serve` (gateway/server.py, uvicorn). The size cases run on the suite's gateways, with the
production limits; the cases that wait for a limit run on this module's gateways (`guarded`),
started with the same settings but short timeouts and a small bound, so each takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stage
from tests.e2e.live import LiveGateway
from tests.hostile.conftest import SERVERS, assert_healthy, start_gateway

SHORT_LIMITS = {
    "TOLLGATE_HEADER_TIMEOUT_SECONDS": "1",
    "TOLLGATE_BODY_TIMEOUT_SECONDS": "1",
    "TOLLGATE_SEND_TIMEOUT_SECONDS": "4",
    "TOLLGATE_KEEPALIVE_TIMEOUT_SECONDS": "2",
    "TOLLGATE_MAX_PENDING_CONNECTIONS": "50",
}
OVERSIZED = 8 * 1024 * 1024  # what a hostile client offers; the servers stop at 64 KiB
LONG_STREAM_BYTES = 32 * 1024 * 1024  # more than every buffer between upstream and client


@pytest.fixture(scope="module", params=SERVERS)
def guarded_gateway(request, django_db_setup, tmp_path_factory):
    server = start_gateway(request.param, tmp_path_factory, **SHORT_LIMITS)
    yield server
    server.stop()


@pytest.fixture
def guarded(guarded_gateway, hostile_upstream, transactional_db) -> Stage:
    """A stage on one of the two servers, with SHORT_LIMITS."""
    hostile_upstream.reset()
    return Stage(guarded_gateway, hostile_upstream)


# --- raw HTTP ---------------------------------------------------------------------------------


def connect(gateway: LiveGateway, *, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer:  # a small window: the client itself buffers almost nothing
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", gateway.port))
    sock.settimeout(10)
    return sock


def read_answer(sock: socket.socket, timeout: float = 10) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and when its first byte came (when it
    closed, if it sent nothing)."""
    sock.settimeout(timeout)
    data, first = b"", None
    try:
        while chunk := sock.recv(1 << 20):
            first = first or time.monotonic()
            data += chunk
    except ConnectionResetError:
        pass
    return data, first or time.monotonic()


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {name.lower(): value for name, value in fields}
    return int(lines[0].split()[1]), headers, body


def assert_refusal(response: bytes, status: int) -> dict:
    """The server's own answer: this status, Anthropic's error shape, and the connection
    closed with it."""
    code, headers, body = parse(response)
    assert code == status, response[:300]
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["request_id"] == headers["request-id"]
    return payload["error"]


def send_until_answered(sock: socket.socket, data: bytes, piece: int = 64 * 1024) -> None:
    """Send `data` in pieces, as a client that does not wait for the server; stop as soon as an
    answer is waiting or the server stops reading."""
    sock.setblocking(False)
    try:
        for start in range(0, len(data), piece):
            sent = 0
            chunk = data[start : start + piece]
            deadline = time.monotonic() + 5
            while sent < len(chunk) and time.monotonic() < deadline:
                try:
                    sock.recv(1, socket.MSG_PEEK)
                    return  # an answer (or the close) is there
                except BlockingIOError:
                    pass
                try:
                    sent += sock.send(chunk[sent:])
                except BlockingIOError:
                    time.sleep(0.01)
            if sent < len(chunk):
                return  # the server stopped reading
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        sock.setblocking(True)


def healthz_seconds(stage: Stage) -> float:
    started = time.monotonic()
    assert httpx.get(stage.gateway.url + "/healthz", timeout=5).status_code == 200
    return time.monotonic() - started


def oversized_head(shape: str) -> bytes:
    if shape == "one long header":
        return b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * OVERSIZED
    if shape == "many headers":
        line = b"X-Filler-%05d: " + b"a" * 200 + b"\r\n"
        return b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
            line % i for i in range(OVERSIZED // len(line))
        )
    return b"GET /healthz?q=" + b"a" * OVERSIZED  # a request line that never ends


# --- the head ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["one long header", "many headers", "long url"])
def test_an_oversized_request_head_is_431_at_once_and_healthz_still_answers(hostile, shape):
    sock = connect(hostile.gateway)
    started = time.monotonic()

    send_until_answered(sock, oversized_head(shape))
    answer, answered = read_answer(sock)

    error = assert_refusal(answer, 431)
    assert "65536" in error["message"]
    assert answered - started < 2  # after 64 KiB, not 8 MiB
    assert healthz_seconds(hostile) < 0.5
    assert_healthy(hostile)


@pytest.mark.parametrize(
    "garbage",
    [b"NOT HTTP\r\n\r\n", b"GET / HTTP/1.1\r\nNo-Colon-Here\r\n\r\n", b"\x16\x03\x01\x02\x00\x01"],
    ids=["request line", "header line", "tls hello"],
)
def test_a_malformed_request_is_an_anthropic_shaped_400_and_the_server_stays_up(hostile, garbage):
    sock = connect(hostile.gateway)
    sock.sendall(garbage + b"\r\n\r\n")

    answer, _ = read_answer(sock)

    assert_refusal(answer, 400)
    assert_healthy(hostile)


def test_a_connection_that_never_sends_is_closed_with_408_within_the_head_timeout(guarded):
    sock = connect(guarded.gateway)
    opened = time.monotonic()

    answer, answered = read_answer(sock)

    assert_refusal(answer, 408)
    assert 0.9 <= answered - opened < 3.5


def test_a_head_sent_a_byte_at_a_time_is_408_within_the_head_timeout(guarded):
    sock = connect(guarded.gateway)
    opened = time.monotonic()
    trickle = threading.Thread(
        target=send_slowly, args=(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", 0.1)
    )
    trickle.start()

    answer, answered = read_answer(sock)
    trickle.join()

    error = assert_refusal(answer, 408)
    assert "head" in error["message"]
    assert 0.9 <= answered - opened < 3.5  # bytes kept coming: only the whole head's time counts


def send_slowly(sock: socket.socket, data: bytes, interval: float) -> None:
    try:
        for i in range(len(data) * 10):
            sock.send(data[i : i + 1] if i < len(data) else b"a")
            time.sleep(interval)
    except OSError:
        return  # the server closed the connection


def test_a_kept_alive_connection_idle_past_the_keepalive_timeout_is_closed_without_an_answer(
    guarded,
):
    sock = connect(guarded.gateway)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = sock.recv(65536)
    answered = time.monotonic()

    rest, closed = read_answer(sock)  # nothing sent: when it closed

    assert parse(first)[0] == 200
    assert rest == b""  # an idle connection is closed, not answered
    assert 1.5 <= closed - answered < 5  # TOLLGATE_KEEPALIVE_TIMEOUT_SECONDS=2


def test_a_head_begun_after_a_kept_alive_answer_must_end_within_the_head_timeout(guarded):
    sock = connect(guarded.gateway)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = sock.recv(65536)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and then nothing
    begun = time.monotonic()

    answer, answered = read_answer(sock)

    assert parse(first)[0] == 200
    assert_refusal(answer, 408)
    assert 0.9 <= answered - begun < 3.5


# --- the body ---------------------------------------------------------------------------------

BODY_HEAD = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def test_a_body_that_stops_is_408_within_the_body_timeout(guarded):
    sock = connect(guarded.gateway)
    sock.sendall(BODY_HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"model":')
    stopped = time.monotonic()

    answer, answered = read_answer(sock)

    error = assert_refusal(answer, 408)
    assert "body" in error["message"]
    assert 0.9 <= answered - stopped < 3.5


def test_a_body_trickled_a_byte_at_a_time_is_408_even_though_it_never_pauses(guarded):
    sock = connect(guarded.gateway)
    sock.sendall(BODY_HEAD + b"Content-Length: 100000\r\n\r\n")
    started = time.monotonic()
    trickle = threading.Thread(target=send_slowly, args=(sock, b'{"model":"x"', 0.2))
    trickle.start()

    answer, answered = read_answer(sock)
    trickle.join()

    assert_refusal(answer, 408)
    assert answered - started < 2.5  # under 4096 bytes/s after the first second


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(hostile):
    sock = connect(hostile.gateway)
    sock.sendall(BODY_HEAD + b"Content-Length: 40000000000\r\n\r\n")

    answer, _ = read_answer(sock)

    code, _, body = parse(answer)
    assert code == 413
    assert json.loads(body)["error"]["type"] == "request_too_large"
    assert_healthy(hostile)


def test_a_chunked_body_over_the_limit_is_refused_once_it_passes_the_limit(guarded):
    sock = connect(guarded.gateway)
    sock.sendall(BODY_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"

    send_until_answered(sock, chunk * 64, piece=len(chunk))  # 64 MiB, twice the 32 MiB limit
    answer, _ = read_answer(sock)

    code, _, body = parse(answer)
    assert code == 413
    assert json.loads(body)["error"]["type"] == "request_too_large"


# --- many connections -------------------------------------------------------------------------


def test_connections_that_never_send_beyond_the_bound_drop_the_oldest_and_healthz_answers(
    guarded,
):
    idle = [connect(guarded.gateway) for _ in range(200)]  # TOLLGATE_MAX_PENDING_CONNECTIONS=50

    seconds = healthz_seconds(guarded)
    dropped = sum(1 for sock in idle if read_answer(sock)[0] == b"")

    assert seconds < 0.5
    assert dropped >= 150  # closed at once, without an answer; the rest got 408 after 1 s
    assert_healthy(guarded)


@pytest.mark.parametrize(
    "stalled",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",  # a head that never ends
        BODY_HEAD + b"Content-Length: 1000\r\n\r\n{",  # a body that never ends
    ],
    ids=["heads", "bodies"],
)
def test_a_flood_of_stalled_requests_is_shed_while_healthz_answers(guarded, stalled):
    flood = []
    for _ in range(300):
        flood.append(sock := connect(guarded.gateway))
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # dropped already
            sock.sendall(stalled)
    sent = time.monotonic()

    seconds = healthz_seconds(guarded)
    answers = [read_answer(sock) for sock in flood]

    assert seconds < 0.5
    assert all(answered - sent < 3.5 for _, answered in answers)  # none held past the timeout
    dropped = sum(1 for answer, _ in answers if answer == b"")
    assert dropped >= 250  # the oldest, past TOLLGATE_MAX_PENDING_CONNECTIONS=50
    assert all(parse(answer)[0] == 408 for answer, _ in answers if answer)
    assert_healthy(guarded)


# --- streams to clients that do not read ------------------------------------------------------


def long_stream(**faults) -> dict:
    text = "x" * LONG_STREAM_BYTES
    return {"blocks": [{"type": "text", "text": text}], "text_chunk_size": 16384, **faults}


def open_stream(stage: Stage, key: str) -> socket.socket:
    """A streamed request from a client with a 4 KiB receive window that reads only the head."""
    body = json.dumps(
        {
            "model": "claude-test",
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "a long one"}],
        }
    ).encode()
    sock = connect(stage.gateway, receive_buffer=4096)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Api-Key: %s\r\nAnthropic-Version: 2023-06-01\r\nContent-Length: %d\r\n\r\n"
    )
    sock.sendall(head % (key.encode(), len(body)) + body)
    assert sock.recv(256).startswith(b"HTTP/1.1 200")
    return sock


def server_rss_bytes(gateway: LiveGateway) -> int:
    """VmRSS of the serving Python processes (for `make serve`: below make, in its group)."""
    listed = subprocess.run(
        ["pgrep", "-g", str(gateway.process.pid)], capture_output=True, text=True
    ).stdout.split()
    total = 0
    for pid in listed:
        status = Path(f"/proc/{pid}/status")
        try:
            if "python" not in Path(f"/proc/{pid}/exe").resolve().name:
                continue
            rss = next(line for line in status.read_text().splitlines() if line[:6] == "VmRSS:")
        except (OSError, StopIteration):
            continue
        total += int(rss.split()[1]) * 1024
    return total


def upstream_records(stage: Stage, model: str) -> list[dict]:
    return stage.upstream.requests(model)


def test_clients_that_never_read_a_long_stream_keep_memory_flat_and_pause_the_upstream(guarded):
    """Per stalled stream a server holds its socket buffer (64 KiB), one ASGI message (at most
    32 KiB of events) and the upstream read in progress (64 KiB): well under 1 MiB (measured:
    0.1 MiB on daphne, 0.7 MiB on uvicorn, for the four). A server that buffers holds the
    whole 32 MiB of each (daphne before this limit: 45 MiB in these 2.5 s, and growing). The
    threshold, 16 MiB, is far from both."""
    key = guarded.one_route("anthropic", "claude-long")
    with guarded.client(key).messages.stream(  # warm: connection pools, adapters, imports
        model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as warm:
        warm.until_done()
    guarded.upstream.script("claude-long", *[long_stream() for _ in range(4)])
    before = server_rss_bytes(guarded.gateway)

    clients = [open_stream(guarded, key) for _ in range(4)]
    deadline = time.monotonic() + 2.5  # within TOLLGATE_SEND_TIMEOUT_SECONDS=4
    while time.monotonic() < deadline:
        records = upstream_records(guarded, "claude-long")
        if any(record["completed"] for record in records):
            break  # the upstream was read to its end: nothing paused it
        time.sleep(0.1)
    grown = server_rss_bytes(guarded.gateway) - before

    assert len(records) == 5 and not any(r["completed"] for r in records[1:])
    assert grown < 16 * 1024 * 1024, f"server grew {grown / 2**20:.0f} MiB"
    for sock in clients:
        sock.close()
    assert_healthy(guarded)


def test_a_client_that_pauses_reading_gets_the_whole_stream_once_it_reads(guarded):
    key = guarded.one_route("anthropic", "claude-paused")
    guarded.upstream.script("claude-paused", long_stream())
    sock = open_stream(guarded, key)
    time.sleep(1.5)  # not reading, for less than the send timeout

    received, _ = read_until_final_chunk(sock)

    assert received.endswith(b"\r\n0\r\n\r\n") and b"event: message_stop" in received
    assert len(received) > LONG_STREAM_BYTES
    assert upstream_records(guarded, "claude-paused")[0]["completed"]


def read_until_final_chunk(sock: socket.socket) -> tuple[bytes, float]:
    sock.settimeout(30)
    data = bytearray()
    while not data.endswith(b"\r\n0\r\n\r\n"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    return bytes(data), time.monotonic()


def test_a_client_that_reads_nothing_is_dropped_after_the_send_timeout_and_its_upstream_ends(
    guarded,
):
    key = guarded.one_route("anthropic", "claude-stalled")
    # A pause between chunks makes the fake upstream watch for the gateway leaving.
    guarded.upstream.script("claude-stalled", long_stream(chunk_delay=0.001))
    sock = open_stream(guarded, key)
    opened = time.monotonic()

    deadline = opened + 10
    while time.monotonic() < deadline:
        record = upstream_records(guarded, "claude-stalled")[0]
        if record["disconnected"] or record["completed"]:
            break
        time.sleep(0.2)
    left = time.monotonic() - opened

    assert record["disconnected"] and not record["completed"]
    assert 3.5 <= left < 8  # TOLLGATE_SEND_TIMEOUT_SECONDS=4
    received, _ = read_answer(sock)
    assert b"event: message_stop" not in received  # cut, not finished
    assert_healthy(guarded)
