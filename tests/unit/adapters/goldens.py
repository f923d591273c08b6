"""The golden-file harness every adapter test shares: literal IR in, literal upstream JSON out,
and back. Cases live in `tests/golden/<adapter>/`, one per file: `request_*`
({ir_request, expected_upstream, target?}), `response_*` ({upstream_response, expected_ir,
ir_request?}), `stream_*` (upstream chunks or events, expected_events, ir_request?) and
`error_*` ({upstream_status, upstream_headers?, upstream_body, expected}: what the client gets
and what the route is told, core/errors.py). In `expected_ir` and `expected_events` a field
the file leaves out must be null: a new optional field costs no file its meaning.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest

from core import ir
from core.target import Target
from providers.adapters.base import Adapter, HttpAdapter

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
    expected = case["expected_ir"]
    assert without_omitted_nulls(msgspec.to_builtins(response), expected) == expected


def check_events(events: list[dict], expected: list[dict]) -> None:
    if len(events) != len(expected):
        assert events == expected  # shows both
    assert [without_omitted_nulls(e, x) for e, x in zip(events, expected, strict=True)] == expected


def without_omitted_nulls(actual: Any, expected: Any) -> Any:
    """`actual` without the null fields `expected` leaves out (non-null ones stay, and fail),
    at every depth (a usage object inside an event too, and a new optional usage field)."""
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        return [without_omitted_nulls(a, x) for a, x in zip(actual, expected, strict=True)]
    if not isinstance(actual, dict) or not isinstance(expected, dict):
        return actual
    return {
        k: without_omitted_nulls(v, expected[k]) if k in expected else v
        for k, v in actual.items()
        if k in expected or v is not None
    }


def check_error(adapter: HttpAdapter, case: dict) -> None:
    body = case["upstream_body"]
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = httpx2.Headers(case.get("upstream_headers", {}))
    err = adapter.parse_error(case["upstream_status"], raw, headers)
    seen = {
        "status": err.status,
        "type": err.type,
        "message": err.message,
        "fallback": err.fallback,
        "retryable": err.retryable,
        "provider_fault": err.provider_fault,
        "transient": err.transient,
        "retry_after": err.retry_after,
    }
    assert seen == case["expected"]


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
