"""`make bench-peer`: rows 1 and 2 of `make bench` for Tollgate and LiteLLM proxy, side by side.

LiteLLM proxy is the peer: one worker, no database, in front of the same fake upstream as
Tollgate, driven by the same load generator and set against the same direct-to-upstream
baseline, all measured in one run. It runs from its own virtualenv beside ours
(`.venv/peer-litellm`), which this script fills once: `litellm` at LITELLM_VERSION plus the
modules its proxy imports at start-up (`bench/peer-requirements.txt`). `--quick` shortens every
row (for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import environment as env
from bench.__main__ import (
    NON_STREAMING,
    RESULTS,
    STREAMING,
    Bench,
    Load,
    latency,
    machine,
    messages_body,
    rate,
)
from tests.e2e.live import free_port

LITELLM_VERSION = "1.110.2"
PEER_VENV = env.ROOT / ".venv" / "peer-litellm"
REQUIREMENTS = Path(__file__).parent / "peer-requirements.txt"
MASTER_KEY = "sk-peer-bench"
# Tollgate's bench models (bench/environment.py) as LiteLLM routes to the same fake upstream.
MODELS = {
    "bench-pass": "anthropic/bench-echo",
    "bench-openai": "openai/bench-echo",
    "bench-pass-200": "anthropic/bench-200tok",
    "bench-openai-200": "openai/bench-200tok",
}
FLOOD = 256  # connections; a gateway that had errors at the step before is not flooded
TIMEOUT = 60.0  # seconds a response may take before it counts as an error


def install() -> Path:
    """LiteLLM's virtualenv, created and filled once (again when a pin changes); its bin/."""
    wanted = f"litellm=={LITELLM_VERSION}\n{REQUIREMENTS.read_text()}"
    marker = PEER_VENV / ".installed"
    if marker.exists() and marker.read_text() == wanted:
        return PEER_VENV / "bin"
    where = PEER_VENV.relative_to(env.ROOT)
    print(f"installing LiteLLM {LITELLM_VERSION} into {where} (once, a few minutes)", flush=True)
    began = time.monotonic()
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    subprocess.run(["python3", "-m", "venv", str(PEER_VENV)], check=True)
    log = PEER_VENV / "install.log"
    with log.open("wb") as out:
        pip = subprocess.run(
            [
                str(PEER_VENV / "bin" / "pip"),
                "install",
                f"litellm=={LITELLM_VERSION}",
                "-r",
                str(REQUIREMENTS),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if pip.returncode:
        raise SystemExit(f"pip install failed; the end of {log}:\n{tail(log)}")
    marker.write_text(wanted)
    print(f"installed in {time.monotonic() - began:.0f} s", flush=True)
    return PEER_VENV / "bin"


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class LiteLLM:
    """LiteLLM proxy without a database, as its CLI runs it: `litellm --config`, uvicorn, uvloop."""

    def __init__(self, bin_dir: Path, upstream_url: str, workers: int):
        self.bin_dir = bin_dir
        self.upstream_url = upstream_url
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = RESULTS / "litellm.log"

    def write_config(self) -> Path:
        bases = {"anthropic": self.upstream_url, "openai": self.upstream_url + "/v1"}
        config = {
            "model_list": [
                {
                    "model_name": name,
                    "litellm_params": {
                        "model": route,
                        "api_base": bases[route.split("/")[0]],
                        "api_key": "sk-bench",
                    },
                }
                for name, route in MODELS.items()
            ],
            "litellm_settings": {
                "telemetry": False,
                # /v1/messages to an OpenAI model calls the Responses API unless told otherwise;
                # Chat Completions is the upstream call Tollgate makes and the baseline measures.
                "use_chat_completions_url_for_anthropic_messages": True,
            },
            "general_settings": {"master_key": MASTER_KEY},
        }
        path = RESULTS / "litellm-config.yaml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    def start(self) -> LiteLLM:
        RESULTS.mkdir(exist_ok=True)
        command = [str(self.bin_dir / "litellm"), "--config", str(self.write_config())]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--num_workers", str(self.workers), "--telemetry", "False"]
        environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        environ.update(
            LITELLM_LOG="ERROR",  # also uvicorn's level: no access log, as Tollgate runs
            LITELLM_OFFLINE_MODE="true",  # bundled cost map and catalogs, no fetches
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            # The fake streams 200 identical chunks; past 100 LiteLLM ends the stream as a loop.
            REPEATED_STREAMING_CHUNK_LIMIT="1000",
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=RESULTS,  # it reads a .env from its working directory
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"LiteLLM exited at start-up; the end of its log:\n{tail(self.log_path)}"
                )
            try:
                if httpx.get(self.url + "/health/liveliness", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"LiteLLM did not start in 180 s; see {self.log_path}")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()


def probe(url: str, key: str) -> None:
    """One request per bench model, so a wrong route fails here rather than as a row of errors.

    A 200-token stream must arrive whole: its status alone says nothing of a stream that broke.
    """
    for model in MODELS:
        stream = model.endswith("-200")
        response = httpx.post(
            url + "/v1/messages",
            content=messages_body(model, stream=stream),
            headers={"x-api-key": key, "content-type": "application/json"},
            timeout=30,
        )
        whole = not stream or (
            response.text.count("tok ") >= 200 and "message_stop" in response.text
        )
        if response.status_code != 200 or not whole:
            raise RuntimeError(f"{url} {model}: {response.status_code} {response.text[-600:]}")


@dataclass
class Side:
    """One gateway of the comparison."""

    name: str
    url: str
    key: str
    process: subprocess.Popen
    log: Path
    duration: float | None = None  # None: the bench's own

    def through(self, bench: Bench, model: str, conns: int, stream: bool = False) -> dict | None:
        """Its load result, or None when its process has exited."""
        if self.process.poll() is not None:
            return None
        return bench.through(
            self.url, self.key, model, Load(conns, stream=stream, duration=self.duration)
        )


def errors(result: dict) -> str:
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(result["statuses"].items()))
    return f"errors {result['errors']}" + (f" ({statuses})" if statuses else "")


def versus(
    bench: Bench,
    head: tuple[str, ...],
    direct: dict,
    results: dict[str, dict],
    fields: list[tuple[str, str]],
    rps: bool = False,
) -> None:
    """The first side against the second: requests/s ratio, and what each adds to latency."""
    if len(results) < 2:
        return
    (first, one), (second, two) = list(results.items())[:2]
    cells = []
    if rps:
        cells.append(f"requests/s x{one['rps'] / two['rps']:.2f}" if two["rps"] else "requests/s -")
    for label, field in fields:
        if direct[field] is None or one[field] is None or two[field] is None:
            cells.append(f"{label} added -")
            continue
        a, b = (one[field] - direct[field]) * 1000, (two[field] - direct[field]) * 1000
        ratio = f" (x{a / b:.2f})" if a > 0 and b > 0 else ""
        cells.append(f"{label} added {a:.2f} vs {b:.2f} ms{ratio}")
    bench.add(*head, f"{first} vs {second}", *cells)


def non_streaming(bench: Bench, up: str, sides: list[Side], steps: tuple[int, ...]) -> None:
    print("\n## 1. Non-streaming /v1/messages", flush=True)
    for label, surface, model in NON_STREAMING:
        failed: set[str] = set()  # sides with errors at the step before
        for conns in steps:
            head = (f"1 {label}", f"{conns} conn")
            direct = bench.direct(up, surface, "bench-echo", Load(conns))
            results = {}
            for side in sides:
                if conns >= FLOOD and side.name in failed:
                    bench.add(*head, side.name, "skipped: errors at fewer connections")
                    continue
                result = side.through(bench, model, conns)
                if result is None:
                    bench.add(*head, side.name, f"not running, see {side.log}")
                    continue
                results[side.name] = result
                if result["errors"]:
                    failed.add(side.name)
                bench.add(
                    *head,
                    side.name,
                    rate(direct, result),
                    latency("p50", "p50", direct, result),
                    latency("p99", "p99", direct, result),
                    errors(result),
                )
            versus(bench, head, direct, results, [("p50", "p50"), ("p99", "p99")], rps=True)


def streaming(bench: Bench, up: str, sides: list[Side]) -> None:
    print("\n## 2. Streaming, 200-token reply", flush=True)
    fields = [("first byte", "ttfb_p50"), ("last byte", "p50")]
    for label, surface, model in STREAMING:
        head = (f"2 stream {label}", "1 conn")
        direct = bench.direct(up, surface, "bench-200tok", Load(1, stream=True))
        results = {}
        for side in sides:
            result = side.through(bench, model, 1, stream=True)
            if result is None:
                bench.add(*head, side.name, f"not running, see {side.log}")
                continue
            results[side.name] = result
            cells = [latency(name, field, direct, result) for name, field in fields]
            bench.add(*head, side.name, *cells, errors(result))
        versus(bench, head, direct, results, fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rows (smoke run)")
    parser.add_argument("--workers", type=int, default=2, help="Tollgate workers, as make bench")
    parser.add_argument("--peer-workers", type=int, default=1, help="LiteLLM workers")
    args = parser.parse_args()
    bench = Bench(duration=1.5 if args.quick else 5.0, quick=args.quick, timeout=TIMEOUT)
    bin_dir = install()
    header = [
        f"# Tollgate vs LiteLLM proxy — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}",
        f"Tollgate: make serve WORKERS={args.workers} (gateway.server: uvicorn, uvloop)",
        f"LiteLLM proxy {LITELLM_VERSION}: litellm --config --num_workers {args.peer_workers} "
        "(uvicorn, uvloop, h11), no database, master key",
    ]
    print("\n".join(header), flush=True)
    with env.exclusive(), env.upstream() as upstream, ExitStack() as running:
        env.prepare_database()
        key = env.configure(upstream.url)
        tollgate = env.Gateway(workers=args.workers).start()
        running.callback(tollgate.stop)
        litellm = LiteLLM(bin_dir, upstream.url, args.peer_workers).start()
        running.callback(litellm.stop)
        sides = [
            Side("Tollgate", tollgate.url, key, tollgate.process, Path(tollgate.log.name)),
            # At tens of requests/s a row needs a longer run for a steady figure.
            Side(
                "LiteLLM",
                litellm.url,
                MASTER_KEY,
                litellm.process,
                litellm.log_path,
                duration=bench.duration * 2,
            ),
        ]
        for side in sides:
            probe(side.url, side.key)
        non_streaming(bench, upstream.url, sides, (1, 32) if args.quick else (1, 32, FLOOD))
        streaming(bench, upstream.url, sides)
    rows = [" | ".join(r) for r in bench.rows]
    (RESULTS / "peer-latest.txt").write_text("\n".join(header + rows) + "\n")


if __name__ == "__main__":
    main()
