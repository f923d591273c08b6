"""Fixtures for every test: a clean Redis database and cold per-process caches."""

import os
from pathlib import Path

import pytest
import redis
from django.conf import settings

from accounts import keys
from core import redaction, state
from providers import breaker, routing
from providers.adapters import counting as adapter_counting


def pytest_configure(config):
    """`make test` runs the suite on two workers (pytest-xdist). pytest-django gives each its
    own PostgreSQL test database; here each gets its own Redis database (15, 14, ...: its key
    caches, limits, breakers and Celery queue) and usage spool, in this process and in every
    command a test starts (servers get theirs from tests/e2e/live.py)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    index = int(worker.removeprefix("gw"))
    base, _, db = settings.REDIS_URL.rpartition("/")
    url = f"{base}/{int(db) - index}"
    if settings.CELERY_BROKER_URL == settings.REDIS_URL:
        settings.CELERY_BROKER_URL = url
    settings.REDIS_URL = url
    spool = Path(settings.TOLLGATE["SPOOL_DIR"]).parent / f"spool-{worker}"
    settings.TOLLGATE = {**settings.TOLLGATE, "SPOOL_DIR": spool}
    os.environ.update(REDIS_URL=url, TOLLGATE_SPOOL_DIR=str(spool))


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete():
    """Transactional tests (e2e, hostile) empty every table after each test. PostgreSQL's
    TRUNCATE of our ~30 tables costs 0.2 s (new files for each table) where DELETE of the few
    rows a test wrote costs milliseconds; Django's foreign keys are DEFERRABLE INITIALLY
    DEFERRED and the flush runs in one transaction, so the order of the deletes is free.
    Content types and permissions stay: the flush's post_migrate would only write them back."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        kept = {"django_content_type", "auth_permission"}  # what post_migrate writes back anyway
        return [f"DELETE FROM {self.quote_name(t)};" for t in tables if t not in kept]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


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
    adapter_counting._missing_counters.clear()  # routes whose server had no token counter


@pytest.fixture(autouse=True)
def _cold_caches():
    _forget_process_state()
    yield
    _forget_process_state()
