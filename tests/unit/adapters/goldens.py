"""The golden-file harness every adapter test shares: literal IR in, literal upstream JSON out,
and back. Cases live in `tests/golden/<adapter>/`, one per file: `request_*`
({ir_request, expected_upstream, target?}), `response_*` ({upstream_response, expected_ir,
ir_request?}) and `stream_*` (upstream chunks or events, expected_events, ir_request?).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway import ir
from providers.adapters.base import Adapter, Target

GOLDEN = Path(__file__).parents[2] / "golden"
DEFAULT_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
}


def make_request(data: dict[str, Any] | None = None, **overrides: Any) -> ir.Request:
    return msgspec.convert({**(data or DEFAULT_REQUEST), **overrides}, ir.Request)


def cases(folder: str, prefix: str) -> list[Any]:
    """The cases of one kind, loaded at collection time, each named after its file."""
    return [
        pytest.param(json.loads(path.read_text()), id=path.stem)
        for path in sorted((GOLDEN / folder).glob(f"{prefix}_*.json"))
    ]


def check_request(adapter: Adapter, case: dict, make_target: Callable[..., Target]) -> None:
    upstream = adapter.build_request(
        make_request(case["ir_request"]), make_target(**case.get("target", {}))
    )
    assert {"url": upstream.url, "headers": upstream.headers, "body": upstream.body} == (
        case["expected_upstream"]
    )


def check_response(adapter: Adapter, case: dict, make_target: Callable[..., Target]) -> None:
    request = make_request(case.get("ir_request"))
    response = adapter.parse_response(case["upstream_response"], request, make_target())
    assert msgspec.to_builtins(response) == case["expected_ir"]


async def data_lines(chunks: list[Any]) -> AsyncIterator[tuple[str | None, bytes]]:
    """SSE without event names (OpenAI Chat, Gemini): a string is sent as is (`[DONE]`), an
    object as its JSON."""
    for item in chunks:
        yield None, item.encode() if isinstance(item, str) else json.dumps(item).encode()


async def named_events(events: list[dict]) -> AsyncIterator[tuple[str | None, bytes]]:
    """SSE whose event name is the payload's `type` (OpenAI Responses)."""
    for payload in events:
        yield payload["type"], json.dumps(payload).encode()


async def parse_events(
    adapter: Adapter,
    pairs: AsyncIterator[tuple[str | None, bytes]],
    request: ir.Request,
    target: Target,
) -> list[dict]:
    return [msgspec.to_builtins(e) async for e in adapter.parse_stream(pairs, request, target)]
