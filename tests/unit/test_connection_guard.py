"""connection_guard: the waiting-connection bound, the body clock, the refusals, the settings."""

from __future__ import annotations

import os
import subprocess
import sys

import msgspec
import pytest
from django.conf import settings
from environ import ImproperlyConfigured

from gateway import connection_guard as guard
from gateway.settings import _at_least
from tests.e2e.live import ROOT

LIMITS = guard.ConnectionLimits(
    max_head_bytes=4096,
    head_timeout=10.0,
    body_timeout=30.0,
    body_min_rate=1000,
    max_body_bytes=1 << 20,
    send_timeout=60.0,
    keepalive_timeout=75.0,
    max_pending=2,
)


class Connection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dropped = False

    def drop(self) -> None:
        self.dropped = True


def test_past_the_bound_the_oldest_waiting_connection_is_dropped():
    pending = guard.Pending(2)
    first, second, third = Connection("first"), Connection("second"), Connection("third")

    for connection in (first, second, third):
        pending.add(connection)

    assert (first.dropped, second.dropped, third.dropped) == (True, False, False)
    assert len(pending) == 2


def test_a_connection_that_stopped_waiting_is_never_dropped():
    pending = guard.Pending(1)
    busy, newcomer = Connection("busy"), Connection("newcomer")
    pending.add(busy)

    pending.discard(busy)  # its request is whole
    pending.add(newcomer)

    assert not busy.dropped and not newcomer.dropped
    assert len(pending) == 1


def test_discarding_a_connection_that_never_waited_is_harmless():
    pending = guard.Pending(1)
    pending.discard(Connection("stranger"))
    assert len(pending) == 0


def test_a_body_may_pause_for_the_body_timeout_after_its_last_chunk():
    # 100 seconds in, 200,000 bytes received: the rate allows 30 + 200 s; the pause, 30 s.
    assert LIMITS.body_deadline(started=0.0, last_chunk=100.0, received=200_000) == 130.0


def test_a_body_below_the_minimum_rate_is_due_even_while_its_bytes_keep_coming():
    # A byte a second never pauses 30 s, but 0.1 bytes/s of allowance is far below 1000.
    deadline = LIMITS.body_deadline(started=0.0, last_chunk=99.0, received=100)
    assert deadline == pytest.approx(30.1)


@pytest.mark.parametrize(
    ("err", "status", "reason", "error_type"),
    [
        (
            guard.head_too_large(LIMITS),
            431,
            "Request Header Fields Too Large",
            "invalid_request_error",
        ),
        (guard.head_timeout(LIMITS), 408, "Request Timeout", "invalid_request_error"),
        (guard.body_timeout(LIMITS), 408, "Request Timeout", "invalid_request_error"),
        (guard.body_too_large(LIMITS), 413, "Request Entity Too Large", "request_too_large"),
    ],
)
def test_a_refusal_is_a_whole_closing_response_in_anthropic_error_shape(
    err, status, reason, error_type
):
    head, _, body = guard.refusal(err).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])

    assert lines[0] == f"HTTP/1.1 {status} {reason}"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    payload = msgspec.json.decode(body)
    assert payload["type"] == "error"
    assert payload["error"] == {"type": error_type, "message": err.message}
    assert payload["request_id"] == headers["request-id"]


@pytest.mark.parametrize("target", [b"/v1/responses", b"/v1/chat/completions?x=1"])
def test_a_refusal_on_an_openai_surface_is_in_openai_error_shape(target):
    err = guard.body_too_large(LIMITS)
    head, _, body = guard.refusal(err, target).partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert msgspec.json.decode(body)["error"] == {
        "message": err.message,
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }
    assert headers["x-request-id"] == headers["request-id"]
    assert int(headers["content-length"]) == len(body)


def test_limits_come_from_the_settings(monkeypatch):
    monkeypatch.setitem(settings.TOLLGATE, "HEADER_TIMEOUT_SECONDS", 3.5)
    monkeypatch.setitem(settings.TOLLGATE, "MAX_PENDING_CONNECTIONS", 7)

    limits = guard.ConnectionLimits.from_settings()

    assert limits.head_timeout == 3.5
    assert limits.max_pending == 7
    assert limits.max_head_bytes == 64 * 1024  # the default


def test_the_waiting_bound_is_lowered_to_half_the_open_file_limit(monkeypatch):
    monkeypatch.setitem(settings.TOLLGATE, "MAX_PENDING_CONNECTIONS", 1000)
    monkeypatch.setattr(guard.resource, "getrlimit", lambda _: (256, 4096))

    assert guard.ConnectionLimits.from_settings().max_pending == 128


@pytest.mark.parametrize(
    ("value", "kind", "minimum"),
    [
        ("lots", int, 4096),
        ("100", int, 4096),  # a 100-byte head cap: no ordinary request would fit
        ("0", float, 0.1),
        ("nan", float, 0.1),
        ("inf", float, 0.1),
        ("-5", int, 1),
        ("1.5", int, 1),
    ],
)
def test_a_limit_setting_refuses_garbage_and_too_little(monkeypatch, value, kind, minimum):
    monkeypatch.setenv("TOLLGATE_TEST_LIMIT", value)

    with pytest.raises(ImproperlyConfigured, match="TOLLGATE_TEST_LIMIT must be"):
        _at_least("TOLLGATE_TEST_LIMIT", 10, minimum, kind)


def test_a_limit_setting_takes_its_default_when_unset_or_empty(monkeypatch):
    monkeypatch.setenv("TOLLGATE_TEST_LIMIT", "")
    assert _at_least("TOLLGATE_TEST_LIMIT", 10.0, 0.1) == 10.0
    monkeypatch.setenv("TOLLGATE_TEST_LIMIT", "2.5")
    assert _at_least("TOLLGATE_TEST_LIMIT", 10.0, 0.1) == 2.5


@pytest.mark.parametrize("server", ["gateway.server", "gateway.devserver"])
def test_a_bad_limit_stops_each_server_before_it_listens(server):
    env = {**os.environ, "TOLLGATE_HEADER_TIMEOUT_SECONDS": "soon"}
    started = subprocess.run(
        [sys.executable, "-m", server, "-p", "1", "gateway.asgi:application"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert started.returncode != 0
    assert "TOLLGATE_HEADER_TIMEOUT_SECONDS must be a number, not 'soon'" in started.stderr


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/v1/responses/?x=1"])
def test_a_refusal_on_an_openai_path_is_in_openais_error_shape(path):
    err = guard.body_too_large(LIMITS)
    head, _, body = guard.refusal(err, path).partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert head.startswith(b"HTTP/1.1 413 ")
    assert msgspec.json.decode(body) == {
        "error": {
            "message": err.message,
            "type": "invalid_request_error",
            "param": None,
            "code": "request_too_large",
        }
    }
    assert headers["x-request-id"] == headers["request-id"]
    assert b'"type":"error"' in guard.refusal(err, b"/v1/messages")
