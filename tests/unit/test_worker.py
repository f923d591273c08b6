"""The usage worker's supervisor: a worker that dies is started again; one asked to stop is
not, and the supervisor ends with its status."""

from __future__ import annotations

import signal
import sys
import threading
import time

import pytest

from gateway import worker
from gateway.worker import Supervisor

# Counts its starts in a file; dies at once the first two times, then runs until told to stop.
FLAKY = """
import sys, time
from pathlib import Path
starts = Path(sys.argv[1])
starts.write_text(starts.read_text() + "x" if starts.exists() else "x")
if len(starts.read_text()) < 3:
    sys.exit(1)
time.sleep(60)
"""


@pytest.fixture(autouse=True)
def quick_restarts(monkeypatch):
    monkeypatch.setattr(worker, "RESTART_MIN_SECONDS", 0.05)


def run_in_background(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(supervisor.run()))
    thread.start()
    return thread, status


def test_a_worker_that_dies_is_started_again_until_it_stays_up(tmp_path):
    starts = tmp_path / "starts"
    supervisor = Supervisor([sys.executable, "-c", FLAKY, str(starts)])

    thread, status = run_in_background(supervisor)
    deadline = time.monotonic() + 10
    while not starts.exists() or len(starts.read_text()) < 3:
        assert time.monotonic() < deadline, "the worker was not started again"
        time.sleep(0.05)
    time.sleep(0.3)
    supervisor.forward(signal.SIGTERM)
    thread.join(10)

    assert starts.read_text() == "xxx"
    assert status == [128 + signal.SIGTERM]  # stopped by the forwarded signal


def test_a_stop_while_waiting_to_restart_starts_nothing_more(tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "RESTART_MIN_SECONDS", 30)
    starts = tmp_path / "starts"
    supervisor = Supervisor([sys.executable, "-c", FLAKY, str(starts)])

    thread, status = run_in_background(supervisor)
    deadline = time.monotonic() + 10
    while not starts.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # it died and the supervisor waits to start it again
    supervisor.forward(signal.SIGINT)
    thread.join(5)

    assert not thread.is_alive()
    assert starts.read_text() == "x" and status == [1]
