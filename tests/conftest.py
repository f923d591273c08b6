"""Fixtures for every test: a clean Redis database and cold per-process caches."""

import pytest
import redis
from django.conf import settings

from accounts import keys
from providers import breaker, routing


@pytest.fixture(scope="session", autouse=True)
def _clean_redis():
    """Tests own Redis database 15 (pyproject.toml): start each session from empty."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _cold_caches():
    routing.reset()
    keys._process_cache.clear()
    breaker._views.clear()
    yield
    routing.reset()
    keys._process_cache.clear()
    breaker._views.clear()
