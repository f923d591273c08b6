"""The request log: correlation ids carried upstream and stored, every attempt, the cost parts."""

from decimal import Decimal

import anthropic
import pytest
import redis
from django.conf import settings

from tests.e2e.test_routing import ASK, routes
from tests.e2e.usage import drain, records_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    drain(client)
    yield client
    client.close()


@pytest.mark.parametrize("kind", ["anthropic", "openai", "openai_responses", "gemini"])
def test_the_clients_ids_go_upstream_and_into_the_record(stage, broker, kind):
    key = routes(stage, ("p1", kind, "up-1", {}))
    answer = stage.client(key).messages.with_raw_response.create(
        **ASK, extra_headers={"x-request-id": "client-req-42", "traceparent": PARENT}
    )

    (sent,) = stage.upstream.requests("up-1")
    assert sent["headers"]["x-request-id"] == "client-req-42"
    version, trace, span, flags = sent["headers"]["traceparent"].split("-")
    assert (version, trace, flags) == ("00", TRACE_ID, "01")
    assert span != "00f067aa0ba902b7" and len(span) == 16  # the gateway's own hop
    request_id = answer.headers["request-id"]
    row = records_for(broker, [request_id])[request_id]
    assert (row.client_request_id, row.trace_id) == ("client-req-42", TRACE_ID)
    assert row.upstream_request_id == sent["response_id"]  # "" for Gemini: it sends none
    assert row.request_id != "client-req-42"  # record ids stay the gateway's own


def test_without_ids_the_gateway_names_the_call_and_starts_a_trace(stage, broker):
    key = routes(stage, ("p1", "openai", "up-1", {}))
    answer = stage.client(key).messages.with_raw_response.create(
        **ASK,
        extra_headers={"traceparent": "00-not-a-valid-parent"},  # ignored, as W3C says
    )

    (sent,) = stage.upstream.requests("up-1")
    request_id = answer.headers["request-id"]
    assert sent["headers"]["x-request-id"] == request_id
    trace = sent["headers"]["traceparent"].split("-")[1]
    assert records_for(broker, [request_id])[request_id].trace_id == trace != "0" * 32


@pytest.mark.parametrize("value", ["", "a" * 129, "has space", "naïve"])
def test_an_x_request_id_that_is_not_one_is_a_400(stage, value):
    key = routes(stage, ("p1", "openai", "up-1", {}))
    with pytest.raises(anthropic.BadRequestError) as refused:
        stage.client(key).messages.create(
            **ASK, extra_headers={"x-request-id": value.encode().decode("latin-1")}
        )
    assert refused.value.body["error"]["message"].startswith("x-request-id: must be")
    assert stage.upstream.requests("up-1") == []


def test_every_attempt_is_in_the_record_with_the_cost_parts(stage, broker):
    key = routes(
        stage,
        ("p1", "openai", "up-1", {"priority": 1}),
        ("p2", "openai", "up-2", {"priority": 2}),
    )
    failure = {"status": 500, "error_body": "kaput"}
    stage.upstream.script("up-1", failure, failure)  # the retry of the same route fails too
    answer = stage.client(key).messages.with_raw_response.create(**ASK, extra_body={"top_k": 5})

    request_id = answer.headers["request-id"]
    row = records_for(broker, [request_id])[request_id]
    first, retry, second = row.attempts
    assert (first["provider"], first["status"], first["error_type"]) == ("p1", 500, "api_error")
    assert (
        retry["provider"] == "p1" and retry["upstream_request_id"] != first["upstream_request_id"]
    )
    assert first["error_message"] and first["upstream_request_id"]
    assert (second["provider"], second["status"], second["error_type"]) == ("p2", 200, None)
    assert row.upstream_request_id == second["upstream_request_id"]
    assert row.upstream_request_id == stage.upstream.requests("up-2")[0]["response_id"]
    assert row.warnings == ["top_k dropped: not supported by provider p2"]
    assert set(row.cost_parts) == {"input", "output"}
    assert sum(Decimal(v) for v in row.cost_parts.values()) == row.cost_usd > 0
    assert row.generation_ms is None or row.generation_ms >= 0


def test_a_failed_request_keeps_the_error_message(stage, broker):
    key = routes(stage, ("p1", "openai", "up-1", {}))
    refusal = {"message": "bad tool schema", "type": "invalid_request_error"}
    stage.upstream.script("up-1", {"status": 400, "error_body": {"error": refusal}})
    with pytest.raises(anthropic.BadRequestError) as refused:
        stage.client(key).messages.create(**ASK)
    request_id = refused.value.response.headers["request-id"]
    row = records_for(broker, [request_id])[request_id]
    assert "bad tool schema" in row.error_message
    assert row.attempts[0]["error_message"] == row.error_message
