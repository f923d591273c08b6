"""The hostile suite: what one tenant (or anyone without a key) may try, and what it must get.

Every case runs against both servers users start: daphne (`make run`) and the production
server (`make serve`: `python -m gateway.server`, uvicorn with our protocol). The gateways
here keep the production breaker settings (5 failures, 30 s cool-down), so a test that one
tenant's requests leave a route open for the next tenant cannot pass by waiting.

A case states the attempt and asserts the promise: a clear 4xx in the API's error shape (never
a 500), no effect on other tenants, and the server healthy afterwards (`assert_healthy`).
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Stage
from tests.e2e.live import LiveGateway, gateway_env
from tests.fake_upstream.server import FakeUpstream

SERVERS = ("daphne", "production")


@pytest.fixture(scope="session")
def hostile_upstream():
    with FakeUpstream() as upstream:
        yield upstream


def start_gateway(server: str, tmp_path_factory, **settings: str) -> LiveGateway:
    """One of the two servers with the suite's environment, plus these TOLLGATE_* settings."""
    env = gateway_env(
        TOLLGATE_STREAM_PING_SECONDS="0.5",
        TOLLGATE_ROUTES_CACHE_SECONDS="0",
        TOLLGATE_SPOOL_DIR=str(tmp_path_factory.mktemp(f"hostile-spool-{server}")),
        **settings,
    )
    return LiveGateway(env=env, server=server).start()


@pytest.fixture(scope="session", params=SERVERS)
def hostile_gateway(request, django_db_setup, tmp_path_factory):
    server = start_gateway(request.param, tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture
def hostile(hostile_gateway, hostile_upstream, transactional_db) -> Stage:
    """A stage on one of the two servers (the test runs once per server)."""
    hostile_upstream.reset()
    return Stage(hostile_gateway, hostile_upstream)


def assert_error_shape(response: httpx.Response, status: int, error_type: str) -> dict:
    """The Anthropic error shape with this status and type; returns the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error", body
    assert body["error"]["type"] == error_type, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return body["error"]


def assert_healthy(stage: Stage) -> None:
    """The server still answers at once."""
    answer = httpx.get(stage.gateway.url + "/healthz", timeout=2)
    assert answer.status_code == 200, answer.text
