"""docker-compose.yml and .dockerignore, read as Docker would (no Docker engine needed): every
long-running service is health-checked and restarted, the gateway, the worker and beat wait for a
one-shot `migrate`, the usage queue is durable, and secrets and local state stay out of the
image."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LONG_RUNNING = ("postgres", "redis", "web", "worker", "beat")
AFTER_MIGRATIONS = {
    "postgres": {"condition": "service_healthy"},
    "redis": {"condition": "service_healthy"},
    "migrate": {"condition": "service_completed_successfully"},
}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_a_long_running_service_restarts_and_is_health_checked(services, name):
    service = services[name]

    assert service["restart"] in ("always", "unless-stopped")
    check = service["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert "disable" not in check


def test_migrations_run_once_before_the_gateway_and_the_worker(services):
    migrate = services["migrate"]

    assert command_text(migrate).split()[-3:-1] == ["manage.py", "migrate"]
    assert migrate["restart"] == "no"  # a one-shot: compose waits for it to complete
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"] == AFTER_MIGRATIONS, name
        assert "migrate" not in command_text(services[name]), name


def test_the_worker_runs_supervised(services):
    assert command_text(services["worker"]).startswith("python -m gateway.worker")


def test_one_beat_queues_the_periodic_tasks_with_its_schedule_in_the_writable_var(services):
    beat = services["beat"]
    command = command_text(beat)

    assert command.startswith("python -m celery -A gateway beat")
    assert "--schedule=/app/var/" in command  # /app/var belongs to the image's user
    assert "deploy" not in beat  # no replicas: two beats would queue every task twice
    assert "celerybeat-schedule" in command_text({"command": beat["healthcheck"]["test"]})


def test_beat_runs_the_periodic_checks_and_sees_the_spool(services):
    import gateway.tasks  # noqa: F401  (what the worker's autodiscovery imports)
    from gateway.celery import app

    beat = services["beat"]
    assert command_text(beat).startswith("python -m celery -A gateway beat")
    assert "spool:/app/var/spool:ro" in beat["volumes"]
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"tollgate.alerts.expiring_keys", "tollgate.alerts.usage_backlog"} <= tasks
    assert {"tollgate.alerts.breaker_events", "tollgate.alerts.sweep"} <= tasks
    assert tasks <= set(app.tasks)  # every scheduled name is a registered task


def test_the_usage_queue_is_on_disk_fsynced_every_second(services):
    redis = services["redis"]
    command = command_text(redis).split()

    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_the_gateway_keeps_its_spool_on_a_volume(services):
    assert "spool:/app/var/spool" in services["web"]["volumes"]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: a pattern excludes a path or any directory above it."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch.fnmatch(candidate, pattern.rstrip("/").removeprefix("**/"))
        or fnmatch.fnmatch(candidate.rsplit("/", 1)[-1], pattern.removeprefix("**/"))
        for pattern in patterns
        for candidate in candidates
    )


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path", [".env", ".venv", ".venv/bin/python", "db.sqlite3", "var/spool/1-2-3.usage"]
)
def test_secrets_and_local_state_stay_out_of_the_image(dockerignore, path):
    assert ignored(path, dockerignore)


@pytest.mark.parametrize(
    "path", ["manage.py", "requirements.lock", "gateway/settings.py", "templates/base.html"]
)
def test_what_the_image_needs_goes_in(dockerignore, path):
    assert not ignored(path, dockerignore)
