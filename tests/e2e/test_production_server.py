"""The same end-to-end tests again, through the production server: `make serve`.

The rest of tests/e2e drives daphne (the reference server). Production runs uvicorn with our
protocol (gateway/server.py: a response head leaves with its first body bytes), uvloop and its
own worker process, started here exactly as a user starts it. The tests below are the suite's
own, collected a second time in this module, where `stage` points at that server; plus what
only this server changes: several responses on one kept-alive connection, and many at once.
"""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest

from tests.e2e.conftest import Stage
from tests.e2e.live import LiveGateway
from tests.e2e.test_messages import (  # noqa: F401 -- collected again against `make serve`
    test_bad_field_is_400_naming_the_field,
    test_openai_compatible_upstream_answers_in_anthropic_format,
    test_openai_tool_calls_come_back_as_tool_use_blocks,
    test_oversized_body_is_413,
    test_unknown_v1_path_is_anthropic_shaped_404,
    test_upstream_errors_are_mapped_and_fall_back,
    test_wrong_or_missing_key_is_401_with_request_id,
)
from tests.e2e.test_streaming import (  # noqa: F401
    assert_grammar,
    route,
    sse_events,
    test_client_disconnect_cancels_the_upstream_request,
    test_error_before_the_first_byte_is_a_json_error,
    test_event_sequence_follows_the_anthropic_grammar,
    test_ping_keeps_a_silent_stream_alive,
    test_sdk_stream_final_message_equals_the_non_streaming_answer,
    test_upstream_cut_mid_stream_gives_an_error_event,
)


@pytest.fixture(scope="module")
def production_gateway(live_gateway):
    server = LiveGateway(env=live_gateway.env, server="production").start()
    yield server
    server.stop()


@pytest.fixture
def stage(production_gateway, fake_upstream, transactional_db):
    fake_upstream.reset()
    return Stage(production_gateway, fake_upstream)


def test_it_is_the_production_server(stage):
    pgid = stage.gateway.process.pid
    listed = subprocess.run(["pgrep", "-a", "-g", str(pgid)], capture_output=True, text=True)
    assert any("-m gateway.server" in line for line in listed.stdout.splitlines())
    assert httpx.get(stage.gateway.url + "/healthz").headers["server"] == "uvicorn"


def test_one_kept_alive_connection_carries_json_streams_and_errors_in_turn(stage):
    key = route(stage, "openai", "gpt-keepalive")
    body = {
        "model": "claude-test",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=stage.gateway.url, headers=headers, timeout=30) as client:
        for _ in range(5):
            answer = client.post("/v1/messages", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["type"] == "message"
            assert int(answer.headers["content-length"]) == len(answer.content)

            streamed = client.post("/v1/messages", json={**body, "stream": True})
            assert streamed.status_code == 200
            assert_grammar(sse_events(streamed))

            refused = client.post("/v1/messages", json={**body, "max_tokens": "many"})
            assert refused.status_code == 400
            assert refused.json()["error"]["type"] == "invalid_request_error"
        sockets = {id(c) for c in client._transport._pool.connections}
    assert len(sockets) == 1


def test_many_concurrent_streams_and_answers_all_arrive_whole(stage):
    key = route(stage, "openai", "gpt-concurrent")
    texts = asyncio.run(ask_concurrently(stage.async_client(key)))
    assert len(texts) == 50
    assert len(set(texts)) == 1 and texts[0]


async def ask_concurrently(client) -> list[str]:
    ask = {
        "model": "claude-test",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Tell me about Lima"}],
    }

    async def streamed() -> str:
        async with client.messages.stream(**ask) as stream:
            return (await stream.get_final_message()).content[0].text

    async def answered() -> str:
        return (await client.messages.create(**ask)).content[0].text

    return await asyncio.gather(*(f() for _ in range(25) for f in (streamed, answered)))
