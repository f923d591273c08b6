"""`/metrics`: what `observe_request` and `observe_upstream_error` record, and the usage dead
letters the worker parked in the database, as a scraper sees it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from gateway.models import UsageDeadLetter
from gateway.usage import selectors
from gateway.usage.record import UsageRecord
from gateway.usage.spool import pack
from gateway.usage.tasks import record_usage_batch
from tests.integration.limited_calls import short_lived_connections

ROOT = Path(__file__).resolve().parents[2]
# /metrics reads the dead letters from the database, on a thread of its own: committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_lived_connections():
    with short_lived_connections():
        yield


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def get(path: str, method: str = "GET", headers: dict | None = None) -> httpx.Response:
    from gateway.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, path, headers=headers)


async def test_a_metrics_token_keeps_out_scrapers_without_it(settings):
    settings.TOLLGATE = {**settings.TOLLGATE, "METRICS_TOKEN": "scrape-me-0123"}

    for headers in (None, {"authorization": "Bearer wrong"}, {"authorization": "scrape-me-0123"}):
        refused = await get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["type"] == "authentication_error"
        assert "scrape-me" not in refused.text  # the token is never echoed
    allowed = await get("/metrics", headers={"authorization": "bearer scrape-me-0123"})

    assert allowed.status_code == 200
    assert "tollgate_requests_total" in allowed.text


async def test_an_observed_request_shows_up_in_metrics():
    # Metrics are process-wide: labels unique to this test keep its numbers exact.
    metrics.observe_request(
        model="claude-metrics-test",
        provider="metrics-provider",
        status="ok",
        latency_s=0.42,
        overhead_ms=1.7,
        input_tokens=120,
        output_tokens=30,
        cost=Decimal("0.0025"),
    )
    metrics.observe_request(
        model="claude-metrics-test",
        provider="metrics-provider",
        status="error",
        error_type="overloaded_error",
        latency_s=3.0,
    )
    metrics.observe_upstream_error(provider="metrics-provider", status=529)

    response = await get("/metrics")
    found = samples(response.text)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    labels = {"model": "claude-metrics-test", "provider": "metrics-provider"}

    def value(name: str, **extra: str) -> float:
        return found[(name, frozenset({**labels, **extra}.items()))]

    assert value("tollgate_requests_total", status="ok", error_type="") == 1
    assert value("tollgate_requests_total", status="error", error_type="overloaded_error") == 1
    assert value("tollgate_request_latency_seconds_count") == 2
    assert value("tollgate_request_latency_seconds_sum") == pytest.approx(3.42)
    assert value("tollgate_request_latency_seconds_bucket", le="0.5") == 1
    assert value("tollgate_tokens_total", direction="input") == 120
    assert value("tollgate_tokens_total", direction="output") == 30
    assert value("tollgate_cost_usd_total") == pytest.approx(0.0025)
    errors = (
        "tollgate_upstream_errors_total",
        frozenset({"provider": "metrics-provider", "status": "529"}.items()),
    )
    assert found[errors] == 1
    assert found[("tollgate_overhead_ms_count", frozenset())] >= 1
    assert ("tollgate_overhead_ms_bucket", frozenset({"le": "2.0"}.items())) in found


async def test_head_answers_without_a_body_and_post_is_refused():
    head = await get("/metrics", "HEAD")
    post = await get("/metrics", "POST")

    assert head.status_code == 200 and head.content == b""
    assert post.status_code == 405


def test_multiprocess_mode_sums_every_workers_numbers(tmp_path):
    """Two "workers" observe a request each; a third process answers for both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    observe = (
        "from core import metrics; metrics.observe_request(model='m', provider='p', "
        "status='ok', latency_s=0.2, overhead_ms=2.5, input_tokens=10)"
    )
    render = "import sys; from core import metrics; sys.stdout.write(metrics.render()[0].decode())"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", observe], env=env, cwd=ROOT, check=True, timeout=60)

    out = subprocess.run(
        [sys.executable, "-c", render],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    found = samples(out)

    labels = {"model": "m", "provider": "p"}
    ok = frozenset({**labels, "status": "ok", "error_type": ""}.items())
    assert found[("tollgate_requests_total", ok)] == 2
    assert (
        found[("tollgate_tokens_total", frozenset({**labels, "direction": "input"}.items()))] == 20
    )
    assert found[("tollgate_overhead_ms_count", frozenset())] == 2


def payload(records: list[UsageRecord]) -> str:
    return base64.b64encode(pack([msgspec.msgpack.encode(r) for r in records])).decode()


def refused_record(n: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"req_metrics_refused_{n}",
        started_at=1.8e9,
        finished_at=1.8e9,
        status="error",
        http_status=404,
        model="oa-echo\x00",  # as an old spool file could still hold it
    )


async def test_records_the_worker_parked_are_counted_at_metrics():
    assert samples((await get("/metrics")).text)[("tollgate_usage_dead_letters", frozenset())] == 0

    run = database_sync_to_async(lambda p: record_usage_batch.apply(args=[p]).get())
    await run(payload([refused_record(1), refused_record(2)]))
    await run(payload([refused_record(1)]))  # delivered again: parked once

    found = samples((await get("/metrics")).text)
    assert found[("tollgate_usage_dead_letters", frozenset())] == 2
    assert await database_sync_to_async(UsageDeadLetter.objects.count)() == 2


async def test_metrics_answer_without_the_dead_letters_while_the_database_is_down(monkeypatch):
    def unreachable():
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "dead_letters_count", unreachable)

    response = await get("/metrics")

    assert response.status_code == 200
    assert "tollgate_requests_total" in response.text
    assert "tollgate_usage_dead_letters" not in response.text
