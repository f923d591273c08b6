"""A change made in another process reaches a running gateway, with Redis and without it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import override_settings

from accounts import config_version, keys
from accounts.models import ConfigVersion, Tenant
from accounts.services import api_key_create
from core import state
from core.errors import AuthenticationFailed
from providers import routing
from providers.services import config_apply

PROJECT_DIR = Path(__file__).resolve().parents[2]
DOCUMENT = {
    "providers": [{"name": "demo-x", "kind": "demo"}],
    "models": [{"name": "claude-one", "routes": [{"provider": "demo-x", "upstream_model": "d"}]}],
}


def apply_in_another_process(tmp_path: Path, data: dict, redis_url: str) -> None:
    path = tmp_path / "change.yaml"
    path.write_text(yaml.safe_dump(data))
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    result = subprocess.run(
        [sys.executable, "manage.py", "gateway_apply", str(path)],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def models_seen() -> set[str]:
    # async_to_sync: the table's database reads run on this thread, with its connection.
    return set(async_to_sync(routing.current)().models)


def seen_within(name: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if name in models_seen():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def fresh_table():
    routing.reset()
    yield
    routing.reset()


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "quick-start"])
def test_a_cli_change_reaches_a_running_process(
    transactional_db, tmp_path, settings, fresh_table, with_redis
):
    settings.TOLLGATE = {**settings.TOLLGATE, "ROUTES_CACHE_SECONDS": 0.2}
    redis_url = settings.REDIS_URL if with_redis else ""
    config_apply(data=DOCUMENT)
    with override_settings(REDIS_URL=redis_url):
        state.sync_redis.cache_clear()
        assert "claude-two" not in models_seen()

        document = {"models": [{"name": "claude-two", "routes": DOCUMENT["models"][0]["routes"]}]}
        apply_in_another_process(tmp_path, document, redis_url)

        assert seen_within("claude-two", 5)
    state.sync_redis.cache_clear()


def test_every_change_moves_the_database_stamp(transactional_db):
    before = config_version.config_stamp()
    config_apply(data=DOCUMENT)
    after = config_version.config_stamp()
    config_apply(data={"models": [{"name": "claude-one", "display_name": "One"}]})
    assert before != after != config_version.config_stamp()
    assert ConfigVersion.objects.get().version >= 2


def test_a_key_revoked_by_the_cli_is_refused_by_a_quick_start_process(
    transactional_db, settings, tmp_path
):
    settings.TOLLGATE = {**settings.TOLLGATE, "KEY_CACHE_SECONDS": 0.2}
    tenant = Tenant.objects.create(name="acme")
    key, secret = api_key_create(tenant=tenant, name="k")
    keys._process_cache.clear()
    with override_settings(REDIS_URL=""):
        state.sync_redis.cache_clear()
        async_to_sync(keys.authenticate)(secret)  # warm: cached by this process

        database = connection.settings_dict
        url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        result = subprocess.run(
            [sys.executable, "manage.py", "revoke_api_key", key.prefix],
            cwd=PROJECT_DIR,
            env={**os.environ, "DATABASE_URL": url + database["NAME"], "REDIS_URL": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        time.sleep(0.3)

        with pytest.raises(AuthenticationFailed):
            async_to_sync(keys.authenticate)(secret)
    state.sync_redis.cache_clear()
    keys._process_cache.clear()
