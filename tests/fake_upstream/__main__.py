"""Serve the fake upstream: `python -m tests.fake_upstream --port 9100`."""

from __future__ import annotations

import argparse

import uvicorn

from .app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument(
        "--max-records",
        type=int,
        default=10_000,
        help="requests kept for /_control/requests (0: none, for benchmarks)",
    )
    args = parser.parse_args()
    config = uvicorn.Config(
        create_app(args.max_records),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,  # scripted hangs must not hold up a stop
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
