"""`make bench`: Tollgate against the fake upstream called directly, in one run, on loopback.

Every figure is printed next to its baseline measured in the same run (the fake upstream
answering the same payload directly), so the table shows what the gateway adds, not how fast
this machine happens to be today. `--quick` shortens every row (for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import environment as env

PROMPT = "Hello, how are you today? Please answer briefly."
RESULTS = Path(__file__).parent / "results"
# Anthropic clients (`/v1/messages`): (label, upstream surface, gateway model); bench/peer.py
# runs the same cases.
NON_STREAMING = [
    ("Anthropic pass-through", "anthropic", "bench-pass"),
    ("Anthropic -> OpenAI Chat", "openai", "bench-openai"),
]
STREAMING = [  # 200-token replies
    ("pass-through", "anthropic", "bench-pass-200"),
    ("OpenAI Chat translation", "openai", "bench-openai-200"),
]
# The OpenAI client surfaces on the same pipeline: (label, client surface, upstream surface,
# gateway model; its 200-token variant adds `-200`). Same protocol on both sides (never forwarded
# as sent: only Anthropic bodies are), then the translated pairs clients of each most often use.
OPENAI_CLIENTS = [
    ("Chat -> OpenAI Chat", "openai", "openai", "bench-openai"),
    ("Chat -> Anthropic", "openai", "anthropic", "bench-pass"),
    ("Responses -> OpenAI Responses", "responses", "responses", "bench-responses"),
    ("Responses -> OpenAI Chat", "responses", "openai", "bench-openai"),
]


def messages_body(model: str, prompt: str = PROMPT, stream: bool = False) -> str:
    body = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return json.dumps(body)


def chat_body(model: str, prompt: str = PROMPT, stream: bool = False) -> str:
    body = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return json.dumps(body)


def responses_body(model: str, prompt: str = PROMPT, stream: bool = False) -> str:
    body = {
        "model": model,
        "max_output_tokens": 256,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": prompt}]}],
    }
    if stream:
        body["stream"] = True
    return json.dumps(body)


# surface -> (path, body, auth header): what a client of that surface sends, to the gateway or,
# as the baseline, to the fake upstream speaking it.
SURFACES = {
    "anthropic": ("/v1/messages", messages_body, "x-api-key"),
    "openai": ("/v1/chat/completions", chat_body, "authorization"),
    "responses": ("/v1/responses", responses_body, "authorization"),
}


def request(surface: str, key: str, model: str, load: Load) -> tuple[str, dict, str]:
    """(path, headers, body) of one request in `surface`'s protocol."""
    path, body, header = SURFACES[surface]
    auth = {header: key if header == "x-api-key" else f"Bearer {key}"}
    return path, auth, body(model, load.prompt, load.stream)


@dataclass(frozen=True)
class Load:
    """How one measurement loads its target; the baseline and the gateway get the same."""

    conns: int
    prompt: str = PROMPT
    stream: bool = False
    duration: float | None = None  # None: the bench's own
    rate: float | None = None  # requests/s over all connections (open loop); None: closed loop


class Bench:
    def __init__(self, duration: float, quick: bool, timeout: float | None = None):
        self.duration = duration
        self.quick = quick
        self.timeout = timeout  # per request, for a gateway that may stall; None waits forever
        self.rows: list[list[str]] = []

    def load(self, url: str, headers: dict, body: str, load: Load) -> dict:
        spec = {"connections": load.conns, "duration": load.duration or self.duration}
        if self.timeout:
            spec["timeout"] = self.timeout
        if load.rate:
            spec["rate"] = load.rate
        return env.load({**spec, "url": url, "headers": headers, "body": body})

    def direct(self, upstream_url: str, surface: str, upstream_model: str, load: Load) -> dict:
        """The fake upstream answering the same payload directly: the baseline."""
        path, auth, payload = request(surface, "sk-bench", upstream_model, load)
        return self.load(upstream_url + path, auth, payload, load)

    def through(
        self, gateway_url: str, key: str, model: str, load: Load, client: str = "anthropic"
    ) -> dict:
        """The `client` surface's endpoint (`/v1/messages` by default) through a gateway."""
        path, auth, payload = request(client, key, model, load)
        return self.load(gateway_url + path, auth, payload, load)

    def pair(
        self,
        upstream_url: str,
        gateway_url: str,
        key: str,
        surface: str,
        model: str,
        upstream_model: str,
        load: Load,
        client: str = "anthropic",
    ) -> tuple[dict, dict]:
        direct = self.direct(upstream_url, surface, upstream_model, load)
        return direct, self.through(gateway_url, key, model, load, client)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])
        print(" | ".join(self.rows[-1]), flush=True)


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}"


def added(direct: float | None, through: float | None) -> str:
    if direct is None or through is None:
        return "-"
    return f"{(through - direct) * 1000:+.2f} ms"


def rate(direct: dict, through: dict) -> str:
    return (
        f"{through['rps']:.0f} rps vs {direct['rps']:.0f} direct "
        f"(x{through['rps'] / max(direct['rps'], 1):.2f})"
    )


def latency(label: str, field: str, direct: dict, through: dict) -> str:
    """`label through vs direct ms (+added)` for one latency field of a load result."""
    return (
        f"{label} {ms(through[field])} vs {ms(direct[field])} ms "
        f"({added(direct[field], through[field])})"
    )


def non_streaming(bench: Bench, up: str, gw: str, key: str) -> None:
    """Closed loop (every connection sends again as soon as it has its answer: throughput, and
    latency at saturation, which is queueing), then 32 connections at a fixed half of the
    gateway's own 32-connection throughput (open loop: what each request costs under load)."""
    print("\n## 1. Non-streaming /v1/messages, /v1/chat/completions, /v1/responses", flush=True)
    cases = [(label, "anthropic", surface, model) for label, surface, model in NON_STREAMING]
    for label, client, surface, model in cases + OPENAI_CLIENTS:
        capacity = 0.0
        for conns in (1, 32, 256):
            direct, through = bench.pair(
                up, gw, key, surface, model, "bench-echo", Load(conns), client
            )
            capacity = through["rps"] if conns == 32 else capacity
            bench.add(
                f"1 {label}",
                f"{conns} conn",
                rate(direct, through),
                latency("p50", "p50", direct, through),
                latency("p99", "p99", direct, through),
                f"errors {through['errors']}",
            )
        offered = max(50, int(capacity / 2 // 50 * 50))
        direct, through = bench.pair(
            up, gw, key, surface, model, "bench-echo", Load(32, rate=offered), client
        )
        bench.add(
            f"1 {label}",
            f"32 conn at {offered} rps",
            f"served {through['rps']:.0f} rps vs {direct['rps']:.0f} direct",
            latency("p50", "p50", direct, through),
            latency("p99", "p99", direct, through),
            f"errors {through['errors']}",
        )


def streaming(bench: Bench, up: str, gw: str, key: str) -> None:
    print("\n## 2. Streaming, 200-token reply", flush=True)
    cases = [(label, "anthropic", surface, model) for label, surface, model in STREAMING]
    cases += [(label, client, up_, model + "-200") for label, client, up_, model in OPENAI_CLIENTS]
    for label, client, surface, model in cases:
        direct, through = bench.pair(
            up, gw, key, surface, model, "bench-200tok", Load(1, stream=True), client
        )
        bench.add(
            f"2 stream {label}",
            "1 conn",
            latency("first byte", "ttfb_p50", direct, through),
            latency("last byte", "p50", direct, through),
            f"errors {through['errors']}",
        )


def payload_sweep(bench: Bench, up: str, gw: str, key: str) -> None:
    print("\n## 5. Payload size sweep (Anthropic -> OpenAI Chat, 1 connection)", flush=True)
    base = None
    for size_kb in (1, 100, 1000):
        prompt = ("lorem ipsum " * (size_kb * 1024 // 12 + 1))[: size_kb * 1024]
        direct, through = bench.pair(
            up, gw, key, "openai", "bench-openai", "bench-echo", Load(1, prompt=prompt)
        )
        extra = (through["p50"] or 0) - (direct["p50"] or 0)
        base = base or max(extra, 1e-6)
        bench.add(
            f"5 payload {size_kb} KB",
            "1 conn",
            latency("p50", "p50", direct, through),
            f"added per KB {extra * 1000 / size_kb:.4f} ms",
            f"errors {through['errors']}",
        )


def open_streams(bench: Bench, up: str, key: str, count: int) -> None:
    """`count` slow streams kept open on one process for several minutes, each connection
    starting a new stream as its last one ends: memory per open stream, and whether it stays
    flat after the first minute while thousands of streams come and go."""
    settle, duration = (30, 50) if bench.quick else (60, 150)
    print(f"\n## 3. {count} concurrent slow streams on one process, {duration} s", flush=True)
    gateway = env.Gateway(workers=1).start()
    try:
        idle = gateway.rss_mb()
        samples: list[tuple[float, float]] = []  # (seconds since the load began, RSS MB)
        stop = threading.Event()
        began = time.monotonic()

        def sample() -> None:
            while not stop.wait(1.0):
                samples.append((time.monotonic() - began, gateway.rss_mb()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = env.load(
            {
                "connections": count,
                "duration": duration,
                "ramp": 30,  # one stream's length (bench-slow: 30 chunks, 1 s apart)
                "warmup": 0,
                "url": gateway.url + "/v1/messages",
                "headers": {"x-api-key": key},
                "body": messages_body("bench-slow", stream=True),
            }
        )
        stop.set()
        sampler.join()
        steady = [rss for at, rss in samples if settle <= at <= duration] or [gateway.rss_mb()]
        peak = max(rss for _, rss in samples) if samples else steady[-1]
        bench.add(
            f"3 open streams x{count}",
            f"1 process, {duration} s",
            f"RSS idle {idle:.0f} MB, at {settle} s {steady[0]:.0f} MB, peak {peak:.0f} MB",
            f"per 100 streams {(steady[0] - idle) / count * 100:.1f} MB",
            f"drift after {settle} s {steady[-1] - steady[0]:+.1f} MB",
            f"streams completed {result['completed']}, errors {result['errors']}",
        )
    finally:
        gateway.stop()


def servers(bench: Bench, up: str, key: str) -> None:
    """daphne (the reference server), uvicorn (production) and granian, one process each,
    translation path: latency at one connection, throughput at 32."""
    print("\n## 6. ASGI server, one process each (Anthropic -> OpenAI Chat)", flush=True)
    for server in ("daphne", "uvicorn", "granian"):
        gateway = env.Gateway(workers=1, server=server).start()
        try:
            direct_one, one = bench.pair(
                up, gateway.url, key, "openai", "bench-openai", "bench-echo", Load(1)
            )
            direct, through = bench.pair(
                up, gateway.url, key, "openai", "bench-openai", "bench-echo", Load(32)
            )
        finally:
            gateway.stop()
        bench.add(
            f"6 server {server}",
            "1 / 32 conn",
            latency("1 conn p50", "p50", direct_one, one),
            f"32 conn {rate(direct, through)}",
            f"errors {one['errors'] + through['errors']}",
        )


def _settled() -> int:
    """The row count once it has stopped moving for half a second."""
    count = env.usage_rows()
    time.sleep(0.5)
    return count


def usage(bench: Bench, gw: str, key: str) -> None:
    """Records the worker lands while the gateway is under full load, and the drain after."""
    print("\n## 4. Usage recording under full load (32 connections)", flush=True)
    # What the earlier rows queued (no worker ran then) is dropped, not landed: this row measures
    # its own records, and a backlog (of this run or an interrupted one) would be counted as
    # drain time. Records the gateway hands over meanwhile are landed before the load starts.
    time.sleep(2 * 0.2)  # the gateway's recorders flush every 0.2 s
    env.discard_queued_usage()
    worker = env.Worker().start()
    try:
        deadline = time.monotonic() + 120
        while (env.queue_depth() or env.usage_rows() != _settled()) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)
        before = env.usage_rows()
        result = env.load(
            {
                "connections": 32,
                "duration": bench.duration * 2,
                "warmup": 0,
                "url": gw + "/v1/messages",
                "headers": {"x-api-key": key},
                "body": messages_body("bench-openai"),
            }
        )
        during = env.usage_rows() - before
        sent = result["completed"] + result["errors"]
        stopped = time.monotonic()
        while env.usage_rows() - before < sent and time.monotonic() - stopped < 60:
            time.sleep(0.25)
        drained = time.monotonic() - stopped
        landed = env.usage_rows() - before
        bench.add(
            "4 usage records",
            "32 conn",
            f"{during / (bench.duration * 2):.0f} records/s landed during load vs "
            f"{result['rps']:.0f} requests/s served",
            f"all {landed}/{sent} landed {drained:.1f} s after the load stopped",
            f"queue depth at end {env.queue_depth()}",
        )
    finally:
        worker.stop()


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cores} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rows (smoke run)")
    parser.add_argument("--rows", default="1,2,3,4,5,6", help="which rows to run")
    parser.add_argument("--workers", type=int, default=2, help="gateway workers (rows 1, 2, 5)")
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    bench = Bench(duration=1.5 if args.quick else 5.0, quick=args.quick)
    print(f"# Tollgate benchmark — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    with env.exclusive():
        env.prepare_database()
        with env.upstream() as upstream:
            key = env.configure(upstream.url)
            if rows & {"1", "2", "4", "5"}:
                gateway = env.Gateway(workers=args.workers).start()
                print(
                    f"gateway: make serve WORKERS={args.workers} (gateway.server: uvicorn, uvloop)"
                )
                try:
                    if "1" in rows:
                        non_streaming(bench, upstream.url, gateway.url, key)
                    if "2" in rows:
                        streaming(bench, upstream.url, gateway.url, key)
                    if "5" in rows:
                        payload_sweep(bench, upstream.url, gateway.url, key)
                    if "4" in rows:
                        usage(bench, gateway.url, key)
                finally:
                    gateway.stop()
            if "3" in rows:
                open_streams(bench, upstream.url, key, 200 if args.quick else 1000)
            if "6" in rows:
                servers(bench, upstream.url, key)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.txt").write_text("\n".join(" | ".join(r) for r in bench.rows) + "\n")


if __name__ == "__main__":
    main()
