"""The OpenAI Chat Completions client surface: golden files (literal JSON in, literal IR or
JSON out, per direction) plus hostile inputs, which must always end in InvalidRequest with a
message naming the JSON path, never in another exception.

Golden cases live in `tests/golden/openai_chat_client/`: `decode_*` ({body, headers?,
expected_ir, expected_ask, expected_dropped, expected_withheld}; top-level IR and Ask fields
left out are empty), `encode_*` ({ir_response, extras?, expected}) and `stream_*` ({events,
include_usage, input_estimate?, expected_chunks, expected_state}: chunks are the `data:`
payloads, `"[DONE]"` as the string).
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
    InvalidAnswer,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    TimeoutError_,
)
from protocols import openai_errors as client_errors
from protocols.openai_chat.client_stream import StreamWriter
from protocols.openai_chat.surface import SURFACE
from tests.unit.adapters.goldens import cases, without_omitted_nulls

FOLDER = "openai_chat_client"
CREATED = 1700000000
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
EMPTY = (None, [], {}, False, "")


def decode(body: dict[str, Any], headers: dict[bytes, bytes] | None = None):
    raw = msgspec.json.encode(body)
    return SURFACE.decode(raw, client_json.decode_object(raw), headers or {})


def base(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}], **extra}


def error_of(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidRequest) as caught:
        decode(body)
    return caught.value.message


def top_level(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """`actual` without the empty top-level fields `expected` leaves out; nested nulls too."""
    kept = {k: v for k, v in actual.items() if k in expected or v not in EMPTY}
    return without_omitted_nulls(kept, expected)


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
    assert decoded.dropped == case["expected_dropped"]
    assert decoded.withheld == case["expected_withheld"]


@pytest.mark.parametrize("case", cases(FOLDER, "encode"))
def test_encode_golden(case: dict[str, Any]):
    from protocols.openai_chat.client_encode import completion_json

    response = msgspec.convert(case["ir_response"], ir.Response)
    extras = case.get("extras")
    merge = (lambda usage: (extras["usage"], extras["top"])) if extras else None
    out = completion_json(
        response, response_id="chatcmpl-test", model="gpt-test", extras=merge, created=CREATED
    )
    assert out == case["expected"]


def frames(data: bytes) -> list[Any]:
    """The `data:` payloads of a chunk stream; every frame is `data: ...` and a blank line."""
    text = data.decode()
    assert text.endswith("\n\n") or not text
    out = []
    for frame in text.split("\n\n")[:-1]:
        assert frame.startswith("data: ") and "\n" not in frame
        payload = frame.removeprefix("data: ")
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


@pytest.mark.parametrize("case", cases(FOLDER, "stream"))
def test_stream_golden(case: dict[str, Any]):
    writer = StreamWriter(
        response_id="chatcmpl-test",
        model="gpt-test",
        created=CREATED,
        include_usage=case["include_usage"],
        input_estimate=case.get("input_estimate", 0),
    )
    events = msgspec.convert(case["events"], list[ir.StreamEvent])
    assert frames(b"".join(writer.feed(e) for e in events)) == case["expected_chunks"]
    state = {
        "stop_reason": writer.stop_reason,
        "output_chars": writer.output_chars,
        "usage": msgspec.to_builtins(writer.usage),
        "finished": writer.finished,
    }
    assert state == case["expected_state"]


# --- The surface object -----------------------------------------------------------------------
def test_surface_names_and_ids():
    assert (SURFACE.name, SURFACE.endpoint) == ("openai_chat", "chat_completions")
    first, second = SURFACE.new_id(), SURFACE.new_id()
    assert first.startswith("chatcmpl-") and len(first) == 38 and first != second


def test_surface_response_uses_the_client_model_and_id():
    response = ir.Response(content=[ir.Text("Hi")], stop_reason="end_turn", usage=ir.Usage(1, 1))
    wire = {"model": "my-alias", "messages": [{"role": "user", "content": "x"}]}
    decoded = SURFACE.decode(b"", wire, {})
    out = SURFACE.response(
        response, response_id="chatcmpl-abc", model="my-alias", extras=None, decoded=decoded
    )
    assert (out["id"], out["model"], out["object"]) == (
        "chatcmpl-abc",
        "my-alias",
        "chat.completion",
    )
    assert isinstance(out["created"], int) and out["created"] > 1_600_000_000


def test_stream_writer_takes_include_usage_from_the_ask():
    end = ir.StreamEnd("end_turn", ir.Usage(2, 1))
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    asked = SURFACE.decode(b"", {**body, "stream_options": {"include_usage": True}}, {})
    with_usage = SURFACE.stream_writer(response_id="c", model="m", input_estimate=0, decoded=asked)
    without = SURFACE.stream_writer(
        response_id="c", model="m", input_estimate=0, decoded=SURFACE.decode(b"", body, {})
    )
    assert frames(with_usage.feed(end))[-2]["choices"] == []
    assert all(f == "[DONE]" or f["choices"] for f in frames(without.feed(end)))


def test_every_chunk_repeats_id_created_and_model():
    writer = StreamWriter(response_id="chatcmpl-1", model="alias", created=CREATED)
    data = writer.feed(ir.TextDelta("a")) + writer.feed(ir.StreamEnd("end_turn", ir.Usage()))
    chunks = [f for f in frames(data) if f != "[DONE]"]
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        ("chatcmpl-1", "chat.completion.chunk", CREATED, "alias")
    }


def test_extras_ride_a_usage_chunk_even_without_include_usage():
    writer = StreamWriter(response_id="c", model="m", created=CREATED)
    writer.extras = lambda usage: ({"cost_usd": "0.1"}, {"meta": {"provider": "p"}})
    last = frames(writer.feed(ir.StreamEnd("end_turn", ir.Usage(3, 2))))[-2]
    assert last["choices"] == [] and last["usage"]["cost_usd"] == "0.1"
    assert last["usage"]["total_tokens"] == 5 and last["meta"] == {"provider": "p"}


def test_nothing_is_written_after_the_end_and_passthrough_is_ignored():
    writer = StreamWriter(response_id="c", model="m")
    assert writer.feed(ir.Passthrough(data=b"event: x\n\n", event="x")) == b""
    writer.feed(ir.StreamEnd("end_turn", ir.Usage()))
    assert writer.feed(ir.TextDelta("late")) == b"" and writer.feed(ir.StreamError("a", "b")) == b""
    assert writer.keepalive() == b": ping\n\n"


def test_stream_error_is_scrubbed_of_known_credentials():
    from core import redaction

    redaction.remember(["sk-live-0123456789"])
    try:
        out = frames(
            StreamWriter(response_id="c", model="m").error("api_error", "bad sk-live-0123456789")
        )
    finally:
        redaction.remember([])
    assert out == [
        {
            "error": {
                "message": "bad <redacted>",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    ]


# --- Errors and rate-limit headers ------------------------------------------------------------
@pytest.mark.parametrize(
    ("err", "status", "kind", "code"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error", None),
        (MethodNotAllowed("use POST"), 405, "invalid_request_error", None),
        (
            AuthenticationFailed("invalid x-api-key"),
            401,
            "invalid_request_error",
            "invalid_api_key",
        ),
        (PermissionDenied("not for this key"), 403, "permission_error", None),
        (NotFound("model `x` not found"), 404, "invalid_request_error", "model_not_found"),
        (NotFound("no such batch"), 404, "invalid_request_error", None),
        (RequestTooLarge("too big"), 413, "invalid_request_error", "request_too_large"),
        (RateLimited("too many requests"), 429, "requests", "rate_limit_exceeded"),
        (RateLimited("too many input tokens per minute"), 429, "tokens", "rate_limit_exceeded"),
        (BillingError("budget spent"), 429, "insufficient_quota", "insufficient_quota"),
        (ApiError("oops"), 500, "server_error", None),
        (InvalidAnswer("unreadable"), 502, "server_error", None),
        (TimeoutError_("slow"), 504, "server_error", "timeout"),
        (Overloaded("busy"), 503, "service_unavailable_error", None),
    ],
)
def test_errors_take_openai_statuses_and_types(err: GatewayError, status, kind, code):
    got_status, body = SURFACE.error(err, "req_1")
    error = msgspec.json.decode(body)["error"]
    assert (got_status, error["type"], error["code"]) == (status, kind, code)
    assert error["message"] == err.message and set(error) == {"message", "type", "param", "code"}


def test_error_param_is_the_json_path_in_openai_notation():
    _, body = SURFACE.error(InvalidRequest("messages.2.tool_calls.0.id: too long"), "r")
    assert msgspec.json.decode(body)["error"]["param"] == "messages[2].tool_calls[0].id"
    for message in ("Request body is not valid JSON: x", "x-tollgate-strictness: must be one of"):
        assert client_errors.param(message) is None


def test_limit_headers_are_openais_with_durations_and_the_tightest_limit():
    now = 1_700_000_000.0
    headers = client_errors.limit_headers(
        [
            ("requests", 100, 90, "2023-11-14T22:14:21Z"),
            ("requests", 10, 3, "2023-11-14T22:19:20Z"),
            ("tokens", 5000, 4000, "2023-11-14T23:13:20Z"),
        ],
        now=now,
    )
    assert headers == [
        (b"x-ratelimit-limit-requests", b"10"),
        (b"x-ratelimit-remaining-requests", b"3"),
        (b"x-ratelimit-reset-requests", b"6m0s"),
        (b"x-ratelimit-limit-tokens", b"5000"),
        (b"x-ratelimit-remaining-tokens", b"4000"),
        (b"x-ratelimit-reset-tokens", b"1h0m0s"),
    ]
    assert client_errors.duration(0.02) == "20ms" and client_errors.duration(-3) == "0s"


def test_the_writer_keeps_the_type_of_the_error_it_wrote():
    writer = StreamWriter(response_id="chatcmpl-1", model="m", created=CREATED)
    assert writer.error_type is None
    writer.feed(ir.TextDelta("a"))
    writer.error("overloaded_error", "busy")
    assert (writer.finished, writer.error_type) == (True, "overloaded_error")
