"""Settings refuse values that would switch a protection off, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_with(name: str, value: str) -> subprocess.CompletedProcess:
    """Loads the settings in a fresh interpreter, as a starting server would."""
    code = "from django.conf import settings; settings.TOLLGATE"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway.settings", name: value}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOLLGATE_KEY_CACHE_SIZE", "0"),
        ("TOLLGATE_AUTH_FAILURES_PER_MINUTE", "0"),
        ("TOLLGATE_AUTH_FAILURES_PER_MINUTE", "lots"),
        ("TOLLGATE_TRUSTED_PROXIES", "-1"),
    ],
)
def test_a_bad_key_or_auth_setting_refuses_to_start_and_names_itself(name, value):
    started = start_with(name, value)

    assert started.returncode != 0
    assert f"{name} must be" in started.stderr


def test_the_defaults_start():
    assert start_with("TOLLGATE_TRUSTED_PROXIES", "0").returncode == 0
