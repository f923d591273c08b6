"""Fixtures for every test: a clean Redis database and cold per-process caches."""

import pytest
import redis
from django.conf import settings

from accounts import keys
from gateway import redaction, state
from providers import breaker, routing


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Tests own Redis database 15 (pyproject.toml): start each session from empty."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


def _forget_process_state() -> None:
    routing.reset()
    keys._process_cache.clear()
    breaker._views.clear()
    state._Outage.until = 0.0  # a test that broke Redis must not make the next one skip it
    redaction.remember(())  # credentials a test's routing table registered


@pytest.fixture(autouse=True)
def _cold_caches():
    _forget_process_state()
    yield
    _forget_process_state()
