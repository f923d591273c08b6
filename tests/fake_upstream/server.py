"""`FakeUpstream`: the fake upstream in a subprocess on a free loopback port, for tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0


class FakeUpstream:
    """Start with `with FakeUpstream() as upstream:` (or `start()` / `stop()`).

    `url` is the base URL (`http://127.0.0.1:PORT`); `script`, `requests` and `reset` wrap the
    `/_control/*` API.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, max_records: int = 10_000
    ) -> None:
        self.host = host
        self.max_records = max_records
        self.port = port or _free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the server
        self._client = httpx.Client(base_url=self.url, timeout=10.0)

    def start(self) -> Self:
        command = [
            sys.executable,
            "-m",
            "tests.fake_upstream",
            "--host",
            self.host,
            "--max-records",
            str(self.max_records),
        ]
        self._process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_healthy()
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self._client.close()
        self._log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def script(self, model: str, *replies: dict[str, Any], endpoint: str = "generate") -> None:
        """Queue scripted replies (scenario dicts) for requests naming this upstream model;
        `endpoint="count"` scripts its token-counting endpoint instead."""
        request = {"model": model, "replies": replies, "endpoint": endpoint}
        response = self._client.post("/_control/script", json=request)
        response.raise_for_status()

    def requests(self, model: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests for `model` (all when None), newest last."""
        params = {"model": model} if model is not None else {}
        response = self._client.get("/_control/requests", params=params)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._client.post("/_control/reset").raise_for_status()

    def output(self) -> str:
        """What the server wrote to stdout/stderr so far (for failure messages)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"fake upstream exited on start:\n{self.output()}")
            try:
                if self._client.get("/_control/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"fake upstream did not answer on {self.url} in time")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
