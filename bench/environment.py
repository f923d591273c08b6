"""Everything a benchmark run starts on loopback: database, fake upstream, gateway, load."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from tests.e2e.live import free_port
from tests.fake_upstream.server import FakeUpstream

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DB_NAME = "tollgate_bench"
SPOOL = ROOT / "bench" / "results" / "spool"  # the benchmark's own, never a developer's
SECRET_KEY = "bench-only-secret-key-0123456789-0123456789-0123456789"
FERNET_KEY = "Q1Uy1mT3vXUqZbqAjnW0qdcnX6gfFhZ8ZsT8yNQyV0A="


def bench_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": "redis://127.0.0.1:6379/14",
        "SECRET_KEY": SECRET_KEY,
        "TOLLGATE_ENCRYPTION_KEYS": FERNET_KEY,
        "TOLLGATE_SPOOL_DIR": str(SPOOL),
        **extra,
    }


@contextmanager
def exclusive() -> Iterator[None]:
    """One benchmark run at a time: runs share the database, Redis db 14 and the cores, and a
    second run's `configure` would point the first one's providers at its own fake upstream."""
    lock = ROOT / "bench" / "results" / ".lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("waiting for another benchmark run to finish", flush=True)
            fcntl.flock(file, fcntl.LOCK_EX)
        yield


def prepare_database() -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            c.execute(f"CREATE DATABASE {DB_NAME}")
    manage("migrate", "--no-input", "-v0")


def manage(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=bench_env(),
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def configure(upstream_url: str) -> str:
    """Providers and models the rows use; returns a fresh key."""
    config = {
        "providers": [
            {
                "name": "bench-anthropic",
                "kind": "anthropic",
                "base_url": upstream_url,
                "api_key": "sk-bench",
            },
            {
                "name": "bench-openai",
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "api_key": "sk-bench",
            },
            {
                "name": "bench-responses",
                "kind": "openai_responses",
                "base_url": upstream_url + "/v1",
                "api_key": "sk-bench",
            },
        ],
        "models": [
            {
                "name": name,
                "pricing_per_mtok": {"input": 3, "output": 15},
                "routes": [{"provider": provider, "upstream_model": upstream}],
            }
            for name, provider, upstream in [
                ("bench-pass", "bench-anthropic", "bench-echo"),
                ("bench-openai", "bench-openai", "bench-echo"),
                ("bench-pass-200", "bench-anthropic", "bench-200tok"),
                ("bench-openai-200", "bench-openai", "bench-200tok"),
                ("bench-responses", "bench-responses", "bench-echo"),
                ("bench-responses-200", "bench-responses", "bench-200tok"),
                ("bench-slow", "bench-openai", "bench-30tok-1000ms"),
            ]
        ],
        "tenants": [{"name": "bench"}],
    }
    path = ROOT / "bench" / "results" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(config))  # JSON is YAML
    manage("gateway_apply", str(path))
    return manage("create_api_key", "--tenant", "bench", "--name", "bench").strip().splitlines()[-1]


class Gateway:
    """The gateway as production runs it: `make serve` (uvicorn workers, uvloop, httptools)."""

    def __init__(self, workers: int, server: str = "uvicorn"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.server = server
        self.log = open(ROOT / "bench" / "results" / f"gateway-{server}.log", "wb")  # noqa: SIM115

    def start(self) -> Gateway:
        if self.server == "granian":
            command = [
                str(BIN / "granian"),
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--loop",
                "uvloop",
                "--no-ws",
                "--log-level",
                "warning",  # no access log, as uvicorn runs with --no-access-log
                "gateway.asgi:application",
            ]
        elif self.server == "daphne":
            command = [
                str(BIN / "python"),
                "-m",
                "gateway.devserver",  # daphne, as `make run` starts it
                "-v",
                "0",  # no access log, as uvicorn runs with --no-access-log
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "gateway.asgi:application",
            ]
        else:
            command = [
                "make",
                "--no-print-directory",
                "serve",
                f"PORT={self.port}",
                f"WORKERS={self.workers}",
            ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=bench_env(LOG_LEVEL="WARNING"),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("gateway did not start; see bench/results/gateway-*.log")

    def pids(self) -> list[int]:
        """The serving Python processes (make -> python -m gateway.server -> workers), found by
        the process group the server was started in."""
        out = subprocess.run(
            ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        pids = []
        for pid in map(int, out):
            try:
                if "python" in os.readlink(f"/proc/{pid}/exe"):
                    pids.append(pid)
            except OSError:
                continue  # gone meanwhile
        return pids

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            total += int(
                next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
            )
        return total / 1024

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
        self.log.close()


class Worker:
    """The Celery worker that lands usage records, as production runs it."""

    def __init__(self):
        self.log = open(ROOT / "bench" / "results" / "worker.log", "wb")  # noqa: SIM115

    def start(self) -> Worker:
        self.process = subprocess.Popen(
            [
                str(BIN / "python"),
                "-m",
                "gateway.worker",
                "--loglevel=WARNING",
                "--concurrency=1",
            ],
            cwd=ROOT,
            env=bench_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
        self.log.close()


def usage_rows() -> int:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}") as c:
        return c.execute("SELECT count(*) FROM gateway_usagerecord").fetchone()[0]


def discard_queued_usage() -> None:
    """Empty the benchmark's own usage queue (Redis db 14's Celery list); never a developer's."""
    import redis

    redis.Redis.from_url(bench_env()["REDIS_URL"]).delete("celery")


def queue_depth() -> int:
    """Usage batches waiting in the broker, plus spool files not yet handed over."""
    import redis

    files = len(list(SPOOL.glob("*.usage"))) if SPOOL.exists() else 0
    return redis.Redis.from_url(bench_env()["REDIS_URL"]).llen("celery") + files


def load(spec: dict) -> dict:
    """Run the load generator in its own process and return its JSON result."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.load"],
        cwd=ROOT,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def upstream() -> FakeUpstream:
    return FakeUpstream(max_records=0)  # tuned for speed: no request bookkeeping
