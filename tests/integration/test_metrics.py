"""`/metrics`: what `observe_request` and `observe_upstream_error` record, as a scraper sees it."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics

ROOT = Path(__file__).resolve().parents[2]


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
        "from gateway import metrics; metrics.observe_request(model='m', provider='p', "
        "status='ok', latency_s=0.2, overhead_ms=2.5, input_tokens=10)"
    )
    render = (
        "import sys; from gateway import metrics; sys.stdout.write(metrics.render()[0].decode())"
    )
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
