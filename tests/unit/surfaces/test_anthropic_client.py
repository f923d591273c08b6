"""The Anthropic Messages client surface: golden files (literal JSON in, literal IR or JSON
out, per direction), the error shape and the rate-limit headers.

Golden cases live in `tests/golden/anthropic_client/`: `decode_*` ({body, headers?,
expected_ir, expected_ask, expected_dropped, expected_withheld}; top-level IR and Ask fields
left out are empty; `expected_dropped` is `SURFACE.dropped`, which Anthropic computes late),
`encode_*` ({ir_response, extras?, expected}) and `stream_*` ({events, input_estimate?,
expected_frames, expected_state}: frames are {event, data} with the `data:` line parsed). A
`passthrough` event gives `data` as the upstream's `data:` line, a string, framed here as the
Anthropic adapter frames it; every such event but `message_start` must come out byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from core import client_json, ir
from core.errors import (
    ApiError,
    AuthenticationFailed,
    BillingError,
    GatewayError,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    TimeoutError_,
)
from protocols.anthropic.surface import SURFACE
from tests.unit.adapters.goldens import cases, without_omitted_nulls

FOLDER = "anthropic_client"
MESSAGE_ID = "msg_test"
MODEL = "claude-test"
EMPTY = (None, [], {}, False, "")


def decode(body: dict[str, Any], headers: dict[bytes, bytes] | None = None):
    raw = msgspec.json.encode(body)
    return SURFACE.decode(raw, client_json.decode_object(raw), headers or {})


def top_level(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """`actual` without the empty top-level fields `expected` leaves out; nested nulls too."""
    kept = {k: v for k, v in actual.items() if k in expected or v not in EMPTY}
    return without_omitted_nulls(kept, expected)


def merge_of(extras: dict[str, Any] | None):
    return (lambda usage: (extras["usage"], extras["top"])) if extras else None


# --- Golden files -----------------------------------------------------------------------------
def test_golden_folder_covers_all_three_directions():
    assert cases(FOLDER, "decode") and cases(FOLDER, "encode") and cases(FOLDER, "stream")


@pytest.mark.parametrize("case", cases(FOLDER, "decode"))
def test_decode_golden(case: dict[str, Any]):
    headers = {k.encode(): v.encode() for k, v in case.get("headers", {}).items()}
    decoded = decode(case["body"], headers)
    request = msgspec.to_builtins(decoded.request)
    assert request.pop("raw") and request.pop("raw_json") == case["body"]
    assert top_level(request, case["expected_ir"]) == case["expected_ir"]
    ask = msgspec.to_builtins(decoded.ask)
    assert top_level(ask, case["expected_ask"]) == case["expected_ask"]
    assert SURFACE.dropped(decoded) == case["expected_dropped"]
    assert decoded.withheld == case["expected_withheld"]


@pytest.mark.parametrize("case", cases(FOLDER, "encode"))
def test_encode_golden(case: dict[str, Any]):
    response = msgspec.convert(case["ir_response"], ir.Response)
    decoded = decode(
        {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}
    )
    out = SURFACE.response(
        response,
        response_id=MESSAGE_ID,
        model=MODEL,
        extras=merge_of(case.get("extras")),
        decoded=decoded,
    )
    assert out == case["expected"]


def stream_event(event: dict[str, Any]) -> ir.StreamEvent:
    """One IR event of a golden; a pass-through one framed as the Anthropic adapter does."""
    if event["type"] != "passthrough":
        return msgspec.convert(event, ir.StreamEvent)
    name, data = event["event"], event["data"].encode()
    usage = msgspec.convert(event["usage"], ir.Usage) if "usage" in event else None
    return ir.Passthrough(
        data=b"event: " + name.encode() + b"\ndata: " + data + b"\n\n",
        event=name,
        usage=usage,
        stop_reason=event.get("stop_reason"),
        payload=json.loads(data) if name == "message_start" else None,
    )


def frames(data: bytes) -> list[dict[str, Any]]:
    """Every frame is `event: <name>`, one `data:` line whose `type` is the name, a blank line."""
    text = data.decode()
    assert text.endswith("\n\n") or not text
    out = []
    for frame in text.split("\n\n")[:-1]:
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        payload = json.loads(data_line.removeprefix("data: "))
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        assert payload["type"] == name
        out.append({"event": name, "data": payload})
    return out


@pytest.mark.parametrize("case", cases(FOLDER, "stream"))
def test_stream_golden(case: dict[str, Any]):
    writer = SURFACE.stream_writer(
        response_id=MESSAGE_ID,
        model=MODEL,
        input_estimate=case.get("input_estimate", 0),
        decoded=decode(
            {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}
        ),
    )
    events = [stream_event(e) for e in case["events"]]
    forwarded = [
        e.data for e in events if isinstance(e, ir.Passthrough) and e.event != "message_start"
    ]
    data = b"".join(writer.feed(e) for e in events)
    assert frames(data) == case["expected_frames"]
    assert all(raw in data for raw in forwarded)
    state = {
        "stop_reason": writer.stop_reason,
        "output_chars": writer.output_chars,
        "usage": msgspec.to_builtins(writer.usage),
        "finished": writer.finished,
        "error_type": writer.error_type,
    }
    assert state == case["expected_state"]


# --- The surface object -----------------------------------------------------------------------
def test_surface_names_and_message_ids():
    assert (SURFACE.name, SURFACE.endpoint) == ("anthropic", "messages")
    first, second = SURFACE.new_id(), SURFACE.new_id()
    assert first.startswith("msg_") and first != second


# --- Errors and rate-limit headers ------------------------------------------------------------
@pytest.mark.parametrize(
    ("err", "status", "kind"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (AuthenticationFailed("invalid x-api-key"), 401, "authentication_error"),
        (BillingError("budget spent"), 402, "billing_error"),
        (PermissionDenied("not for this key"), 403, "permission_error"),
        (NotFound("model `x` not found"), 404, "not_found_error"),
        (RequestTooLarge("too big"), 413, "request_too_large"),
        (RateLimited("too many requests"), 429, "rate_limit_error"),
        (ApiError("oops"), 500, "api_error"),
        (TimeoutError_("slow"), 504, "timeout_error"),
        (Overloaded("busy"), 529, "overloaded_error"),
    ],
)
def test_errors_take_anthropic_statuses_and_types(err: GatewayError, status: int, kind: str):
    got_status, body = SURFACE.error(err, "req_1")
    assert got_status == status
    assert msgspec.json.decode(body) == {
        "type": "error",
        "error": {"type": kind, "message": err.message},
        "request_id": "req_1",
    }


def test_error_message_is_scrubbed_of_known_credentials():
    from core import redaction

    redaction.remember(["sk-live-0123456789"])
    try:
        _, body = SURFACE.error(ApiError("bad key sk-live-0123456789"), "req_1")
    finally:
        redaction.remember([])
    assert msgspec.json.decode(body)["error"]["message"] == "bad key <redacted>"


def test_limit_headers_are_anthropics_with_rfc_3339_resets():
    headers = SURFACE.limit_headers(
        [
            ("requests", 50, 49, "2026-03-01T12:00:07Z"),
            ("tokens", 30000, 28512, "2026-03-01T12:00:03Z"),
        ]
    )
    assert headers == [
        (b"anthropic-ratelimit-requests-limit", b"50"),
        (b"anthropic-ratelimit-requests-remaining", b"49"),
        (b"anthropic-ratelimit-requests-reset", b"2026-03-01T12:00:07Z"),
        (b"anthropic-ratelimit-tokens-limit", b"30000"),
        (b"anthropic-ratelimit-tokens-remaining", b"28512"),
        (b"anthropic-ratelimit-tokens-reset", b"2026-03-01T12:00:03Z"),
    ]
    assert SURFACE.limit_headers([]) == []


def test_nothing_is_written_after_the_stream_ended():
    writer = SURFACE.stream_writer(
        response_id="msg_x",
        model="m",
        input_estimate=0,
        decoded=None,  # type: ignore[arg-type]
    )
    assert writer.error("api_error", "boom").startswith(b"event: error")
    assert writer.feed(ir.TextDelta("late")) == b"" and writer.output_chars == 0
