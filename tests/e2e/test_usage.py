"""One usage record per `/v1/messages` request, whatever its outcome, through the real gateway.

The gateway queues records on the suite's Redis; `records_for` runs the queued Celery messages
through the task (as the worker would) and waits until every request id has its row.
"""

import time
from datetime import UTC, datetime
from decimal import Decimal

import anthropic
import httpx
import pytest
import redis
from django.conf import settings

from accounts.models import ApiKey
from gateway.limits import budgets
from gateway.models import DailyUsage
from gateway.models import UsageRecord as UsageRow
from gateway.usage import billing
from tests.e2e.usage import drain, records_for

ASK = {"model": "claude-test", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def stream_raw(stage, key: str, **body) -> httpx.Response:
    return httpx.post(
        stage.gateway.url + "/v1/messages",
        json={**ASK, "stream": True, **body},
        headers={"x-api-key": key},
        timeout=30,
    )


def test_a_success_is_recorded_once_with_its_cost_and_rolled_up(stage, broker):
    key = stage.one_route("openai", "gpt-usage")
    stage.upstream.script("gpt-usage", {"usage": {"input_tokens": 300, "output_tokens": 22}})

    message = stage.client(key).messages.create(**ASK)

    rid = message._request_id
    row = records_for(broker, [rid])[rid]
    assert (row.status, row.http_status, row.error_type, row.streamed) == ("ok", 200, "", False)
    assert (row.model, row.provider, row.upstream_model) == (
        "claude-test",
        "openai-fake",
        "gpt-usage",
    )
    assert (row.input_tokens, row.output_tokens, row.estimated) == (300, 22, False)
    assert row.cost_usd == Decimal("0.001230000") and row.billed  # 300 * $3 + 22 * $15 per M
    assert 0 < row.ttfb_ms <= row.latency_ms and row.overhead_ms is not None
    api_key = ApiKey.objects.get(prefix=key[:11])
    assert row.api_key_id == api_key.pk and row.tenant_id == api_key.tenant_id
    assert api_key.last_used_at == row.started_at
    daily = DailyUsage.objects.get(tenant_id=api_key.tenant_id)
    assert (daily.requests, daily.cost_usd, daily.api_key_id) == (1, row.cost_usd, api_key.pk)
    drain(broker)
    assert UsageRow.objects.filter(request_id=rid).count() == 1


def test_a_streamed_success_is_recorded_from_the_final_usage(stage, broker):
    key = stage.one_route("openai", "gpt-usage-stream")
    stage.upstream.script("gpt-usage-stream", {"usage": {"input_tokens": 40, "output_tokens": 9}})

    with stage.client(key).messages.stream(**ASK) as stream:
        final = stream.get_final_message()
        rid = stream.response.headers["request-id"]

    row = records_for(broker, [rid])[rid]
    assert final.usage.output_tokens == 9
    assert (row.status, row.streamed, row.output_tokens, row.estimated) == ("ok", True, 9, False)
    assert row.cost_usd == Decimal("0.000255000")


def test_an_upstream_client_error_is_recorded_but_not_billed(stage, broker):
    key = stage.one_route("openai", "gpt-refuses")
    refusal = {"error": {"message": "context too long", "type": "invalid_request_error"}}
    stage.upstream.script("gpt-refuses", {"status": 400, "error_body": refusal})

    with pytest.raises(anthropic.BadRequestError) as caught:
        stage.client(key).messages.create(**ASK)

    row = records_for(broker, [caught.value.request_id])[caught.value.request_id]
    assert (row.status, row.http_status, row.error_type) == ("error", 400, "invalid_request_error")
    assert not row.billed and row.cost_usd == 0
    assert row.provider == "openai-fake"


def test_an_upstream_failure_is_recorded(stage, broker):
    key = stage.one_route("openai", "gpt-down")
    stage.upstream.script("gpt-down", *[{"status": 503}] * 3)

    with pytest.raises(anthropic.APIStatusError) as caught:
        stage.client(key).messages.create(**ASK)

    row = records_for(broker, [caught.value.request_id])[caught.value.request_id]
    assert (row.status, row.http_status, row.error_type) == ("error", 529, "overloaded_error")
    assert row.cost_usd == 0 and row.output_tokens == 0


def test_a_rate_limited_request_is_recorded_and_not_billed(stage, broker):
    stage.one_route("openai", "gpt-limited")
    key = stage.tenant_key("acme", rpm=1)
    client = stage.client(key)
    client.messages.create(**ASK)

    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(**ASK)

    row = records_for(broker, [caught.value.request_id])[caught.value.request_id]
    assert (row.status, row.http_status, row.error_type) == ("error", 429, "rate_limit_error")
    assert row.api_key_id == ApiKey.objects.get(prefix=key[:11]).pk
    assert not row.billed and row.provider == ""


def test_a_request_that_never_authenticated_leaves_no_usage_record(stage, broker):
    key = stage.one_route("openai", "gpt-anon")
    for headers in ({"x-api-key": "tg_" + "x" * 40}, {}, {"authorization": "Bearer nonsense"}):
        refused = httpx.post(stage.gateway.url + "/v1/messages", json=ASK, headers=headers)
        assert refused.status_code == 401, refused.text

    served = stage.client(key).messages.create(**ASK)  # its record follows theirs, if any

    records_for(broker, [served._request_id])
    assert not UsageRow.objects.filter(http_status=401).exists()  # no tenant to bill or show


@pytest.mark.parametrize("kind", ["openai", "anthropic"])  # translated, and forwarded as is
def test_a_client_disconnect_mid_stream_is_recorded_as_cancelled_with_what_was_streamed(
    stage, broker, kind
):
    key = stage.one_route(kind, "up-long")
    stage.upstream.script(
        "up-long",
        {
            "blocks": [{"type": "text", "text": "word " * 400}],
            "text_chunk_size": 8,
            "chunk_delay": 0.02,
        },
    )

    with httpx.stream(
        "POST",
        stage.gateway.url + "/v1/messages",
        json={**ASK, "max_tokens": 1000, "stream": True},
        headers={"x-api-key": key},
        timeout=30,
    ) as response:
        rid = response.headers["request-id"]
        deltas = 0
        for line in response.iter_lines():
            deltas += line.startswith("event: content_block_delta")
            if deltas == 3:
                break

    row = records_for(broker, [rid])[rid]
    assert (row.status, row.http_status, row.streamed) == ("cancelled", 200, True)
    assert row.estimated and 6 <= row.output_tokens < 500  # 8 characters a delta, 4 a token
    assert row.billed and row.cost_usd > 0


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_stream_cut_is_recorded_as_an_error_billing_what_was_generated(stage, broker, kind):
    key = stage.one_route(kind, "up-cut")
    stage.upstream.script(
        "up-cut",
        {
            "blocks": [{"type": "text", "text": "This answer will be cut off."}],
            "text_chunk_size": 4,
            "cut_after_chunks": 6,
        },
    )

    response = stream_raw(stage, key)

    rid = response.headers["request-id"]
    assert "event: error" in response.text
    row = records_for(broker, [rid])[rid]
    assert (row.status, row.http_status, row.error_type) == ("error", 200, "api_error")
    assert row.estimated and row.output_tokens >= 1 and row.billed and row.cost_usd > 0
    if kind == "anthropic":  # forwarded as is: billed from the text of its three deltas
        assert row.output_tokens == 3  # "This", " ans", "wer ": 12 characters, 4 a token


def leave_before_the_answer(stage, key: str, *, stream: bool) -> None:
    """Sends a request and leaves half a second later, before any answer."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            stage.gateway.url + "/v1/messages",
            json={**ASK, "stream": stream},
            headers={"x-api-key": key},
            timeout=httpx.Timeout(10, read=0.5),
        )


def wait_for_upstream_disconnect(stage, model: str, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not stage.upstream.requests(model)[-1]["disconnected"]:
        assert time.monotonic() < deadline, "the upstream call went on after the client left"
        time.sleep(0.05)


def only_record_of(broker, key: str, within: float = 5.0) -> UsageRow:
    """The one usage record of a key whose request ids the client never saw."""
    deadline = time.monotonic() + within
    while not (rows := list(UsageRow.objects.filter(api_key__prefix=key[:11]))):
        assert time.monotonic() < deadline, "no usage record"
        drain(broker)
        time.sleep(0.05)
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_before_the_answer_cancels_the_upstream_call_and_its_fallback(
    stage, broker, stream
):
    provider = stage.provider("openai")
    routes = [
        {"provider": provider["name"], "upstream_model": "gpt-slow", "priority": 1},
        {"provider": provider["name"], "upstream_model": "gpt-fallback", "priority": 2},
    ]
    stage.apply(
        providers=[provider],
        models=[stage.model("claude-test", routes)],
        tenants=[{"name": "acme"}],
    )
    key = stage.tenant_key("acme", tpm=100_000, budget_usd="5", budget_period="daily")
    # Would fail after 3 s (then be retried, then fall back), were anyone still waiting.
    stage.upstream.script("gpt-slow", *[{"status": 503, "delay_first_byte": 3.0}] * 2)

    leave_before_the_answer(stage, key, stream=stream)

    wait_for_upstream_disconnect(stage, "gpt-slow")
    time.sleep(1.0)  # a retry or a fallback would have started by now
    assert len(stage.upstream.requests("gpt-slow")) == 1
    assert stage.upstream.requests("gpt-fallback") == []
    row = only_record_of(broker, key)
    assert (row.status, row.http_status, row.streamed) == ("cancelled", 499, stream)
    # The upstream was reading the prompt: billed at our estimate (policy: generated).
    assert row.estimated and row.input_tokens > 0 and row.output_tokens == 0
    assert row.billed and row.cost_usd == Decimal(row.input_tokens * 3) / 1_000_000
    # Both reservations were settled to that: nothing held, the TPM bucket refunded.
    api_key = ApiKey.objects.get(prefix=key[:11])
    period = budgets.period_of("daily", datetime.now(UTC).date())
    held = broker.hgetall(budgets.budget_key("key", api_key.pk, period))
    assert int(held[b"reserved"]) == 0
    assert int(held[b"spent"]) + int(held[b"pending"]) == billing.nano(row.cost_usd)
    seconds, micros = broker.time()
    tat = float(broker.get(f"tg:rl:key:{api_key.pk}:tpm") or 0)
    assert tat - (seconds * 1000 + micros / 1000) < row.input_tokens * 60_000 / 100_000 + 50
