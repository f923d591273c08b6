"""`/healthz` and `/readyz` on the real server."""

import httpx

from tests.e2e.live import LiveGateway


def test_healthz_and_readyz_answer_when_everything_is_up(live_gateway):
    assert httpx.get(live_gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(live_gateway.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "broker": "ok"},
    }


def test_readyz_names_an_unreachable_broker(live_gateway, tmp_path):
    env = {
        **live_gateway.env,
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        "TOLLGATE_SPOOL_DIR": str(tmp_path),
    }
    broken = LiveGateway(env=env).start()
    try:
        ready = httpx.get(broken.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
        assert body["checks"]["broker"].startswith("error")
        assert httpx.get(broken.url + "/healthz").status_code == 200  # alive, just not ready
    finally:
        broken.stop()
