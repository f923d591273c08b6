"""/metrics on the real server: time to first byte, in-flight requests and streams, cache
tokens, refused requests by bounded labels, breaker state per route, the usage backlog."""

import re
import threading

import anthropic
import httpx
import pytest

from tests.e2e.test_routing import ASK, routes


def scrape(stage) -> str:
    return httpx.get(stage.gateway.url + "/metrics", timeout=10).text


def value(text: str, name: str, **labels) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_refused_requests_are_counted_by_status_and_error_type(stage):
    key = routes(stage, ("p1", "openai", "up-1", {}))
    before = scrape(stage)
    client = stage.client(key)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(**{**ASK, "model": "claude-nope"})
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**{**ASK, "max_tokens": 0})
    with pytest.raises(anthropic.AuthenticationError):
        stage.client("tg_" + "x" * 40).messages.create(**ASK)
    after = scrape(stage)

    for status, error_type in (
        ("404", "not_found_error"),
        ("400", "invalid_request_error"),
        ("401", "authentication_error"),
    ):
        labels = {"endpoint": "messages", "status": status, "error_type": error_type}
        was = value(before, "tollgate_refused_requests_total", **labels) or 0
        assert value(after, "tollgate_refused_requests_total", **labels) == was + 1
    assert "claude-nope" not in after  # a name a client typed is never a label


def test_time_to_first_byte_and_cache_tokens_are_measured(stage):
    key = routes(stage, ("p1", "anthropic", "up-1", {}))
    stage.upstream.script(
        "up-1", {"usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 70}}
    )
    stage.client(key).messages.create(**ASK)
    text = scrape(stage)
    count = value(text, "tollgate_time_to_first_byte_seconds_count", model="claude-test")
    assert count and count >= 1
    assert value(text, "tollgate_tokens_total", model="claude-test", direction="cache_read") >= 70


def test_an_open_stream_is_in_flight_until_it_ends(stage):
    key = routes(stage, ("p1", "openai", "up-1", {}))
    stage.upstream.script("up-1", {"chunk_delay": 0.4})
    started, done = threading.Event(), threading.Event()

    def stream():
        with stage.client(key).messages.stream(**ASK) as events:
            for _ in events:
                started.set()
        done.set()

    worker = threading.Thread(target=stream)
    worker.start()
    assert started.wait(10)
    during = scrape(stage)
    worker.join(20)
    after = scrape(stage)

    assert value(during, "tollgate_in_flight_streams") >= 1
    assert value(during, "tollgate_in_flight_requests", endpoint="messages") >= 1
    assert value(after, "tollgate_in_flight_streams") == 0
    assert value(after, "tollgate_in_flight_requests", endpoint="messages") == 0


def test_a_breaker_opening_shows_in_its_routes_state(stage):
    key = routes(
        stage, ("p1", "openai", "up-1", {"priority": 1}), ("p2", "openai", "up-2", {"priority": 2})
    )
    labels = {"model": "claude-test", "provider": "p1", "upstream_model": "up-1"}
    assert value(scrape(stage), "tollgate_breaker_state", **labels, state="closed") == 1
    stage.upstream.script("up-1", *[{"status": 503}] * 10)
    for _ in range(3):  # the test gateway opens a breaker after 3 failures
        stage.client(key).messages.create(**ASK)
    text = scrape(stage)
    assert value(text, "tollgate_breaker_state", **labels, state="open") == 1
    assert value(text, "tollgate_breaker_state", **labels, state="closed") == 0


def test_the_usage_backlog_is_shown(stage):
    text = scrape(stage)
    assert value(text, "tollgate_usage_spool_files", state="unsent") is not None
    assert value(text, "tollgate_usage_queue_batches") is not None
    assert re.search(r"^tollgate_usage_spool_files\{state=\"sent\"\} \d", text, re.MULTILINE)
