"""Real processes the durability tests stop and start: a Redis server and a Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.e2e.live import ROOT, free_port


class RedisServer:
    """`redis-server` on a free port; `persistent`: with an append-only file in `directory`,
    fsync'd every second as docker-compose.yml runs it (what it held survives a restart)."""

    def __init__(self, directory: Path, *, persistent: bool = True):
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--appendonly", "yes" if self.persistent else "no", "--save", ""]
        command += ["--appendfsync", "everysec", "--dir", str(self.directory)]
        command += ["--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(command)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        """Graceful: SIGTERM makes Redis flush its append-only file before exiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: no last write of the append-only file."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def queued(self) -> int:
        return redis.Redis.from_url(self.url).llen("celery")

    def unacknowledged(self) -> int:
        """Batches a worker took and has not acknowledged (kombu's ack emulation)."""
        return redis.Redis.from_url(self.url).hlen("unacked")


class CeleryWorker:
    """The usage worker as documented: `python -m gateway.worker` (Celery, supervised), with
    `--pool=solo` (one process) unless `pool` says otherwise (e.g. `["--concurrency=2"]` for
    Celery's default prefork pool, as `docker compose` runs it)."""

    def __init__(self, env: dict[str, str], log_path: Path, pool: list[str] | None = None):
        self.env = env
        self.log_path = log_path
        self.pool = ["--pool=solo"] if pool is None else pool
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [sys.executable, "-m", "gateway.worker", *self.pool]
        command += ["--loglevel=info", "--without-heartbeat", "--without-mingle"]
        command += ["--without-gossip", "-n", f"usage-{free_port()}@%h"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own, to kill all of it if it hangs
            )
        deadline = time.monotonic() + 30
        while b" ready." not in self.log_path.read_bytes()[offset:]:
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, "celery worker did not start\n" + self.log()
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Warm shutdown: the batch in hand is finished and acknowledged first."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]
