"""The usage worker, supervised: `python -m gateway.worker [celery worker options]`.

Runs `celery -A gateway worker <options>` as a child process and starts it again whenever it
exits without being asked to. The reason it exists: when Redis drops while the worker holds
unacknowledged batches, kombu's Redis transport tries to put them back on the broker that
just went away and raises an "Unrecoverable error" (seen with celery and kombu 5.7); the
worker exits and recording would stop until someone restarted it. Restarted, it reconnects
and the batches it held come back after CELERY_VISIBILITY_TIMEOUT (the gateway's spool sends
again what the broker lost).

SIGTERM and SIGINT are passed to the worker as SIGTERM (warm shutdown: the batches in hand are
finished first), SIGQUIT as SIGQUIT (cold), and the supervisor then exits with the worker's
status. While the
worker keeps dying within STABLE_SECONDS of its start, restarts back off from 1 s to 30 s.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

log = logging.getLogger("tollgate.worker")
RESTART_MIN_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0
# What the worker gets: SIGINT becomes a warm shutdown too (Celery reads SIGINT as a cold one,
# and a Ctrl-C in a terminal reaches the worker by itself already).
FORWARDED = {
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGINT: signal.SIGTERM,
    signal.SIGQUIT: signal.SIGQUIT,
}


class Supervisor:
    def __init__(self, command: list[str]):
        self.command = command
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def forward(self, signum: int, _frame=None) -> None:
        """Asked to stop: pass the signal on, and do not start the worker again."""
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(FORWARDED[signum])

    def run(self) -> int:
        pause = RESTART_MIN_SECONDS
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command)
            if self.stopping:  # a signal came while it was being started
                self.child.send_signal(signal.SIGTERM)
            status = self.child.wait()
            if status < 0:  # killed by a signal: report it the way a shell does
                status = 128 - status
            if self.stopping:
                return status
            lived = time.monotonic() - started
            if lived >= STABLE_SECONDS:
                pause = RESTART_MIN_SECONDS
            log.error(
                "usage worker exited with status %s after %.1f s; starting it again in %.0f s",
                status,
                lived,
                pause,
            )
            self._sleep(pause)
            if self.stopping:
                return status
            pause = min(RESTART_MAX_SECONDS, pause * 2)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s: %(levelname)s/supervisor] %(message)s"
    )
    supervisor = Supervisor([sys.executable, "-m", "celery", "-A", "gateway", "worker", *argv])
    for signum in FORWARDED:
        signal.signal(signum, supervisor.forward)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
