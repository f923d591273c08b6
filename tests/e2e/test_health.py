"""`/healthz` and `/readyz` on the real server."""

import httpx
import pytest

from tests.e2e.live import LiveGateway

# The gateway process reads the test database: it exists only if a test here asks for it
# (pytest-django sets up databases for the tests collected), even when run alone.
pytestmark = pytest.mark.django_db(transaction=True)


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


def test_readyz_says_what_the_quick_start_uses_instead_of_redis(live_gateway, tmp_path):
    env = {**live_gateway.env, "REDIS_URL": "", "TOLLGATE_SPOOL_DIR": str(tmp_path)}
    env.pop("CELERY_BROKER_URL", None)
    quick = LiveGateway(env=env).start()
    try:
        ready = httpx.get(quick.url + "/readyz", timeout=10)
    finally:
        quick.stop()
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("not used: ") and "this process" in checks["redis"]
    assert checks["broker"].startswith("not used: ")
