"""A small HTTP/1.1 load generator on raw asyncio sockets (run as its own process).

`python -m bench.load SPEC_JSON` prints one JSON result: completed requests, errors, rate and
latency percentiles (total, and time to first body byte). Connections are kept alive; each
connection sends its next request when the previous response has been read in full. With
`timeout` in the spec, a response not read in full within that many seconds counts as an error
(status `timeout`) and its connection is closed. With `rate`, the connections send on a fixed
schedule at that many requests/s in all (open loop), for latency at a given load rather than at
saturation. With `ramp`, connection i of n sends its first request i/n * ramp seconds in, so
long streams end and restart spread out instead of in waves.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import uvloop


async def read_response(reader: asyncio.StreamReader) -> tuple[int, float | None, int]:
    """Read one response; return status, time of the first body byte, body size."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    first: float | None = None
    size = 0
    if b"transfer-encoding: chunked" in lower:
        while True:
            line = await reader.readuntil(b"\r\n")
            length = int(line.split(b";")[0], 16)
            if first is None:
                first = time.perf_counter()
            if length == 0:
                await reader.readuntil(b"\r\n")
                return status, first, size
            await reader.readexactly(length + 2)
            size += length
    start = lower.find(b"content-length:")
    length = int(lower[start + 15 : lower.index(b"\r\n", start)]) if start >= 0 else 0
    if length:
        await reader.readexactly(length)
        first = time.perf_counter()
    return status, first, length


def request_bytes(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def connection(
    spec: dict, payload: bytes, results: dict, deadline: float, offset: float = 0.0
) -> None:
    """One kept-alive connection. With `rate` in the spec (requests/s over all connections),
    requests go out on a fixed schedule and each latency counts from its scheduled time, so
    a response that comes back late also charges the requests it held up."""
    parts = urlsplit(spec["url"])
    timeout = spec.get("timeout")
    interval = spec["connections"] / spec["rate"] if spec.get("rate") else 0.0
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**22)
    except OSError:
        results["errors"] += 1
        return
    if spec.get("ramp"):  # connections start one after another over `ramp` seconds
        await asyncio.sleep(offset * spec["ramp"])
    scheduled = time.perf_counter() + offset * interval
    try:
        while time.perf_counter() < deadline and results["sent"] < spec.get("max_requests", 1e12):
            if interval:
                if (wait := scheduled - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                began, scheduled = scheduled, scheduled + interval
            else:
                began = time.perf_counter()
            results["sent"] += 1
            writer.write(payload)
            if timeout:
                try:
                    status, first, _ = await asyncio.wait_for(read_response(reader), timeout)
                except TimeoutError:
                    results["errors"] += 1
                    results["statuses"]["timeout"] = results["statuses"].get("timeout", 0) + 1
                    return
            else:
                status, first, _ = await read_response(reader)
            done = time.perf_counter()
            if status != 200:
                results["errors"] += 1
                results["statuses"][str(status)] = results["statuses"].get(str(status), 0) + 1
                continue
            results["latencies"].append(done - began)
            if first is not None:
                results["ttfb"].append(first - began)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        results["errors"] += 1
    finally:
        writer.close()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(spec: dict) -> dict:
    payload = request_bytes(spec["url"], spec["body"].encode(), spec.get("headers", {}))
    results = {"sent": 0, "errors": 0, "statuses": {}, "latencies": [], "ttfb": []}
    warmup = spec.get("warmup", 0.5)
    if warmup:
        warm = {**results, "latencies": [], "ttfb": [], "statuses": {}}
        end = time.perf_counter() + warmup
        await asyncio.gather(
            *(connection(spec, payload, warm, end) for _ in range(spec["connections"]))
        )
    began = time.perf_counter()
    deadline = began + spec["duration"]
    n = spec["connections"]
    await asyncio.gather(
        *(connection(spec, payload, results, deadline, offset=i / n) for i in range(n))
    )
    elapsed = time.perf_counter() - began
    lat, ttfb = results["latencies"], results["ttfb"]
    return {
        "completed": len(lat),
        "errors": results["errors"],
        "statuses": results["statuses"],
        "rps": len(lat) / elapsed,
        "p50": percentile(lat, 0.5),
        "p99": percentile(lat, 0.99),
        "ttfb_p50": percentile(ttfb, 0.5),
        "ttfb_p99": percentile(ttfb, 0.99),
    }


def main() -> None:
    spec = json.load(sys.stdin)
    print(json.dumps(uvloop.run(run(spec))))


if __name__ == "__main__":
    main()
