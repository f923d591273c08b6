"""Anthropic pass-through adapter: golden request/response files and stream forwarding."""

import dataclasses
import json
from pathlib import Path

import msgspec
import pytest

from core import ir
from core.target import Target
from protocols.anthropic.betas import of_request as beta_flags
from protocols.anthropic.decode import decode_messages, to_ir
from protocols.anthropic.upstream_response import usage_from
from providers.adapters.anthropic import AnthropicAdapter, messages_url
from tests.unit.adapters.goldens import cases, check_error, without_omitted_nulls

GOLDEN = Path(__file__).parents[2] / "golden" / "anthropic"
TARGET = Target(
    route_id=1,
    provider_id=1,
    provider_name="anthropic-main",
    kind="anthropic",
    base_url="https://api.anthropic.test",
    api_key="sk-ant-upstream",
    upstream_model="claude-sonnet-4-5-20250929",
)


def golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


def client_request(body: dict, beta: list[str]) -> ir.Request:
    raw = msgspec.json.encode(body)
    request = to_ir(decode_messages(raw), beta=beta)
    request.surface, request.raw = "anthropic", raw
    return request


def test_request_is_forwarded_unchanged_but_for_model_extras_and_foreign_thinking():
    case = golden("request_passthrough.json")
    upstream = AnthropicAdapter().build_request(
        client_request(case["client_body"], case["beta"]), TARGET
    )
    expected = case["expected_upstream"]
    assert upstream.url == expected["url"]
    assert upstream.headers == expected["headers"]
    assert upstream.body == expected["body"]


def test_response_is_parsed_into_ir_and_kept_for_passthrough():
    case = golden("response_thinking_tool.json")
    response = AnthropicAdapter().parse_response(case["upstream_response"], None, TARGET)
    built = msgspec.to_builtins(response)
    assert built.pop("passthrough") == case["upstream_response"]
    assert without_omitted_nulls(built, case["expected_ir"]) == case["expected_ir"]


@pytest.mark.parametrize("case", cases("anthropic", "error"))
def test_error_golden(case: dict):
    check_error(AnthropicAdapter(), case)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("http://proxy.test/v1", "http://proxy.test/v1/messages"),
    ],
)
def test_messages_url_accepts_base_with_or_without_v1(base, url):
    assert messages_url(base) == url


async def _events(pairs):
    for name, data in pairs:
        yield name, data.encode()


async def test_stream_is_forwarded_event_by_event_with_usage_read_on_the_side():
    pairs = [
        (
            "message_start",
            '{"type":"message_start","message":{"id":"msg_u","model":"up",'
            '"usage":{"input_tokens":40,"output_tokens":1,'
            '"cache_read_input_tokens":7}}}',
        ),
        ("ping", '{"type": "ping"}'),
        (
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        ),
        (
            "content_block_delta",
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}',
        ),
        ("content_block_stop", '{"type":"content_block_stop","index":0}'),
        (
            "message_delta",
            '{"type":"message_delta","delta":{"stop_reason":"end_turn",'
            '"stop_sequence":null},"usage":{"output_tokens":12}}',
        ),
        ("message_stop", '{"type":"message_stop"}'),
    ]
    out = [e async for e in AnthropicAdapter().parse_stream(_events(pairs), None, TARGET)]
    assert [e.event for e in out] == [name for name, _ in pairs]
    assert out[0].payload["message"]["id"] == "msg_u"  # rewritten by the writer, not here
    assert out[3].data == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta",'
        b'"index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    )
    final = out[5]
    assert final.stop_reason == "end_turn"
    assert (
        final.usage.input_tokens,
        final.usage.output_tokens,
        final.usage.cache_read_input_tokens,
    ) == (40, 12, 7)


async def test_stream_error_event_becomes_an_ir_error():
    pairs = [("error", '{"type":"error","error":{"type":"overloaded_error","message":"busy"}}')]
    out = [e async for e in AnthropicAdapter().parse_stream(_events(pairs), None, TARGET)]
    assert out == [ir.StreamError("overloaded_error", "busy")]


def test_refusal_stop_details_are_read_and_forwarded_as_sent():
    details = {"type": "refusal", "category": "cyber", "explanation": None}
    body = {
        "id": "msg_r",
        "type": "message",
        "role": "assistant",
        "content": [],
        "stop_reason": "refusal",
        "stop_sequence": None,
        "stop_details": details,
        "usage": {"input_tokens": 5, "output_tokens": 0},
    }
    response = AnthropicAdapter().parse_response(body, None, TARGET)
    assert response.stop_details == ir.StopDetails(category="cyber", explanation=None)
    assert response.passthrough["stop_details"] == details


def test_betas_from_header_and_body_are_merged_and_filtered_by_the_providers_policy():
    """The body's `betas` go in the header (merged, each once) and never in the body; the
    provider's allow list holds back what an Anthropic-compatible server would reject."""
    case = golden("request_betas_by_provider_policy.json")
    body = case["client_body"]
    flags = beta_flags({b"anthropic-beta": case["header"].encode()}, body["betas"])
    target = dataclasses.replace(TARGET, **case["target"])
    upstream = AnthropicAdapter().build_request(client_request(body, flags), target)
    expected = case["expected_upstream"]
    assert upstream.headers == expected["headers"]
    assert upstream.body == expected["body"]


def test_a_provider_that_allows_no_beta_gets_no_header():
    target = dataclasses.replace(TARGET, betas_mode="allow", betas=())
    request = client_request(golden("request_betas_by_provider_policy.json")["client_body"], ["x"])
    assert "anthropic-beta" not in AnthropicAdapter().build_request(request, target).headers


def test_cache_writes_are_read_split_by_ttl():
    usage = usage_from(
        {
            "input_tokens": 5,
            "cache_creation_input_tokens": 3000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1000,
                "ephemeral_1h_input_tokens": 2000,
            },
            "output_tokens": 1,
        }
    )
    assert (usage.cache_creation_input_tokens, usage.cache_creation_1h_input_tokens) == (3000, 2000)
    assert usage_from({"cache_creation_input_tokens": 7}).cache_creation_1h_input_tokens is None
