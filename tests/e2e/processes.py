"""Real processes the durability tests stop and start: a Redis server and a Celery worker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.e2e.live import ROOT, free_port


class RedisServer:
    """`redis-server` on a free port with an append-only file in `directory` (survives restarts)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--appendonly", "yes", "--dir", str(self.directory), "--save", ""]
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

    def queued(self) -> int:
        return redis.Redis.from_url(self.url).llen("celery")


class CeleryWorker:
    """`celery -A gateway worker --pool=solo`, the way production runs it (one process)."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [sys.executable, "-m", "celery", "-A", "gateway", "worker", "--pool=solo"]
        command += ["--loglevel=info", "--without-heartbeat", "--without-mingle"]
        command += ["--without-gossip", "-n", f"usage-{free_port()}@%h"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
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
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]
