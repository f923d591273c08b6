"""Production never runs on development secrets; the quick start needs none; the documented
production settings pass Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FERNET_KEY = "Q1Uy1mT3vXUqZbqAjnW0qdcnX6gfFhZ8ZsT8yNQyV0A="
SECRET = "a-production-secret-key-of-more-than-fifty-characters-0123456789"
# What README, Running in production, asks an operator to set.
PRODUCTION = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/tollgate",
    "SECRET_KEY": SECRET,
    "TOLLGATE_ENCRYPTION_KEYS": FERNET_KEY,
    "ALLOWED_HOSTS": "gateway.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://gateway.example.com",
    "TOLLGATE_HTTPS": "true",
    "TOLLGATE_TRUST_X_FORWARDED_PROTO": "true",
    "SECURE_HSTS_SECONDS": "31536000",
}
SHOW_SECRETS = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.SECRET_KEY); print(settings.TOLLGATE_ENCRYPTION_KEYS[0])"
)


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """A process with only these variables (none of the test run's secrets)."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "gateway.settings", **env}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "TOLLGATE_ENCRYPTION_KEYS"])
def test_a_production_process_without_its_secret_refuses_to_start(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}

    result = run(["-c", SHOW_SECRETS], **env)

    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "TOLLGATE_ENCRYPTION_KEYS"])
def test_the_production_server_refuses_to_start_without_secrets_even_on_sqlite(missing):
    env = {"SECRET_KEY": SECRET, "TOLLGATE_ENCRYPTION_KEYS": FERNET_KEY, "PORT": "1"}
    del env[missing]

    result = run(["-m", "gateway.server"], **env)

    assert result.returncode != 0
    assert f"tollgate: {missing} must be set" in result.stderr


def test_an_encryption_key_that_is_not_a_fernet_key_is_refused():
    result = run(["-c", SHOW_SECRETS], **{**PRODUCTION, "TOLLGATE_ENCRYPTION_KEYS": "hunter2"})

    assert result.returncode != 0
    assert "not a Fernet key" in result.stderr


def test_the_quick_start_generates_its_own_secret_once_and_keeps_it():
    first = run(["-c", SHOW_SECRETS])
    second = run(["-c", SHOW_SECRETS])

    assert first.returncode == 0, first.stderr
    secret, fernet = first.stdout.split()
    assert (secret, fernet) == tuple(second.stdout.split())
    assert len(secret) >= 50 and "insecure" not in secret
    assert (ROOT / "var" / "quickstart" / "secret_key").stat().st_mode & 0o077 == 0


def test_the_documented_production_settings_pass_the_deployment_checks():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
