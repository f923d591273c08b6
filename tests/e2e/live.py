"""Run the real gateway as a subprocess on a loopback port, against the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(db: dict) -> str:
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def gateway_env(**overrides: str) -> dict[str, str]:
    """A gateway process's environment: this test run's database, Redis and secrets."""
    return {
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "TOLLGATE_ENCRYPTION_KEYS": ",".join(settings.TOLLGATE_ENCRYPTION_KEYS),
        "DEBUG": "false",
        # Every test gateway's clients share one address (loopback): failed authentications of
        # unrelated tests must not add up to its limit (tests of the limit set their own).
        "TOLLGATE_AUTH_FAILURES_PER_MINUTE": "1000000",
        **overrides,
    }


class LiveGateway:
    """The gateway in a subprocess; `.url` is its base URL.

    `server`: "daphne" (the quick start's server, `make run`: `python -m gateway.devserver`,
    daphne with the connection limits), "production" (`make serve`:
    `python -m gateway.server`, uvicorn with our protocol, one worker) or "uvicorn" (plain).
    """

    def __init__(self, *, env: dict[str, str], server: str = "daphne"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.server = server
        self.process: subprocess.Popen | None = None
        self.log_path = Path(f"/tmp/tollgate-e2e-{self.port}.log")

    def command(self) -> list[str]:
        if self.server == "production":
            # Its own metrics directory: the server empties it at start.
            metrics = f"PROMETHEUS_MULTIPROC_DIR=/tmp/tollgate-metrics-{self.port}"
            return [
                "make",
                "--no-print-directory",
                "serve",
                f"PORT={self.port}",
                "WORKERS=1",
                metrics,
            ]
        if self.server == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                "gateway.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ]
        return [
            sys.executable,
            "-m",
            "gateway.devserver",  # daphne, as `make run` starts it
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "gateway.asgi:application",
        ]

    def start(self) -> LiveGateway:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a server that forks workers stops with them
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log_path.read_text()[-2000:]}")
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
