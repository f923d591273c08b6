"""The record builder: one usage record from a Call and what the consumer saw, per outcome."""

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from accounts.keys import KeyInfo
from core import ir
from core.errors import AuthenticationFailed, RateLimited, upstream_error
from gateway.pipeline import Call
from gateway.pipeline.attempts import Attempt
from gateway.usage.record import COLUMN_SIZES, Seen, UsageRecord, build, clean
from protocols.anthropic.surface import SURFACE as ANTHROPIC
from providers.routing import ModelEntry, Prices

PRICES = Prices(Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"))
POLICY = {
    "client_disconnect": "generated",
    "upstream_error_after_first_byte": "generated",
    "upstream_error": "generated",
    "upstream_client_error": "none",
    "chars_per_token": 4,
}
KEY = KeyInfo(
    key_id=7,
    tenant_id=3,
    tenant_name="acme",
    prefix="tg_AbCdEfGh",
    allowed_models=None,
    allow_debug=False,
    expires_at=None,
    revoked=False,
    tenant_active=True,
)
STARTED_AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()


def decoded(body: dict):
    raw = msgspec.json.encode(body)
    return ANTHROPIC.decode(raw, msgspec.json.decode(raw), {})


def served_call(*, stream: bool = False, attempted: bool = True) -> Call:
    call = Call(request_id="req_test", started=100.0, started_at=STARTED_AT)
    call.key = KEY
    body = {"model": "claude-test", "max_tokens": 100, "stream": stream, "messages": []}
    body["messages"] = [{"role": "user", "content": "hi"}]
    call.decoded = decoded(body)
    call.model = ModelEntry(1, "claude-test", "", datetime.now(UTC), None, PRICES, ())
    if attempted:
        call.attempts.append(Attempt("openai-fake", "gpt-test", 200, 40.0))
    return call


def test_a_success_is_billed_from_the_upstream_usage():
    usage = ir.Usage(input_tokens=1000, output_tokens=200, cache_read_input_tokens=100)
    seen = Seen(finished=100.5, http_status=200, usage=usage, completed=True, first_byte=100.5)

    record = build(served_call().served(), seen, POLICY)

    assert record.request_id == "req_test"
    assert (record.tenant_id, record.key_id, record.key_prefix) == (3, 7, "tg_AbCdEfGh")
    assert (record.model, record.provider, record.upstream_model) == (
        "claude-test",
        "openai-fake",
        "gpt-test",
    )
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (1000, 200, 100)
    assert record.cost_usd == Decimal("0.006030000")
    assert record.billed and not record.estimated
    assert (record.status, record.http_status, record.error_type) == ("ok", 200, "")
    assert record.latency_ms == 500.0 and record.ttfb_ms == 500.0
    assert record.started_at == STARTED_AT and record.finished_at == STARTED_AT + 0.5
    assert not record.streamed


def test_an_unauthenticated_request_has_no_tenant_or_key_and_costs_nothing():
    call = Call(request_id="req_anon", started=100.0, started_at=STARTED_AT)
    seen = Seen(finished=100.01, http_status=401, error=AuthenticationFailed("invalid x-api-key"))

    record = build(call.served(), seen, POLICY)

    assert record.tenant_id is None and record.key_id is None and record.model == ""
    assert (record.status, record.http_status, record.error_type) == (
        "error",
        401,
        "authentication_error",
    )
    assert not record.billed and record.cost_usd == 0


def test_a_rate_limited_request_is_recorded_but_not_billed():
    call = served_call(attempted=False)
    seen = Seen(finished=100.01, http_status=429, error=RateLimited("slow down"))

    record = build(call.served(), seen, POLICY)

    assert (record.status, record.http_status, record.error_type) == (
        "error",
        429,
        "rate_limit_error",
    )
    assert record.key_id == 7 and record.model == "claude-test"
    assert not record.billed and record.cost_usd == 0 and record.provider == ""


def test_an_upstream_4xx_is_not_billed():
    seen = Seen(finished=100.2, http_status=400, error=upstream_error(400, "context too long"))

    record = build(served_call().served(), seen, POLICY)

    assert record.error_type == "invalid_request_error" and record.http_status == 400
    assert not record.billed and record.cost_usd == 0


def test_an_upstream_5xx_before_any_byte_bills_nothing_because_nothing_was_generated():
    seen = Seen(finished=100.2, http_status=529, error=upstream_error(503, "overloaded"))

    record = build(served_call().served(), seen, POLICY)

    assert (record.status, record.error_type) == ("error", "overloaded_error")
    assert record.cost_usd == 0 and record.output_tokens == 0


def test_a_client_disconnect_mid_stream_bills_what_was_streamed_as_an_estimate():
    started = ir.Usage(input_tokens=120, estimated=True)
    seen = Seen(
        finished=101.0,
        http_status=200,
        usage=started,
        output_chars=41,
        disconnected=True,
        first_byte=100.1,
    )

    record = build(served_call(stream=True).served(), seen, POLICY)

    assert (record.status, record.http_status, record.error_type) == ("cancelled", 200, "")
    assert record.streamed
    assert (record.input_tokens, record.output_tokens) == (120, 11)
    assert record.estimated and record.billed
    assert record.cost_usd == Decimal("0.000525000")  # 120*3 + 11*15 per million
    assert started.output_tokens == 0  # the writer's usage is not changed


def test_a_stream_cut_after_the_first_byte_bills_what_was_generated():
    seen = Seen(
        finished=101.0,
        http_status=200,
        usage=ir.Usage(input_tokens=50, output_tokens=1),
        output_chars=16,
        stream_error="api_error",
    )

    record = build(served_call(stream=True).served(), seen, POLICY)

    assert (record.status, record.http_status, record.error_type) == ("error", 200, "api_error")
    assert record.output_tokens == 4 and record.estimated and record.billed


def test_a_finished_stream_keeps_the_upstream_count():
    usage = ir.Usage(input_tokens=50, output_tokens=3)
    seen = Seen(finished=101.0, http_status=200, usage=usage, output_chars=400, completed=True)

    record = build(served_call(stream=True).served(), seen, POLICY)

    assert record.output_tokens == 3 and not record.estimated


def test_the_policy_can_stop_billing_disconnects_but_tokens_are_still_recorded():
    seen = Seen(finished=101.0, http_status=200, output_chars=40, disconnected=True)

    record = build(served_call(stream=True).served(), seen, {**POLICY, "client_disconnect": "none"})

    assert not record.billed and record.cost_usd == 0 and record.output_tokens == 10


def test_a_client_gone_before_the_body_arrived_is_a_cancelled_499():
    call = Call(request_id="req_gone", started=100.0, started_at=STARTED_AT)

    record = build(call.served(), Seen(finished=100.1, disconnected=True), POLICY)

    assert (record.status, record.http_status) == ("cancelled", 499)
    assert not record.billed


def test_an_unknown_model_name_is_cut_to_its_column_size():
    call = served_call(attempted=False)
    call.model = None
    call.decoded = decoded(
        {"model": "m" * 300, "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
    )
    record = build(call.served(), Seen(finished=100.1, error=RateLimited("x")), POLICY)

    assert record.model == "m" * 128


def test_records_survive_the_msgpack_round_trip_with_exact_decimals():
    seen = Seen(finished=100.5, http_status=200, usage=ir.Usage(1, 2), completed=True)
    record = build(served_call().served(), seen, POLICY)

    again = msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=UsageRecord)

    assert again == record and again.cost_usd == Decimal("0.000033000")


def unknown_model_call(model: str) -> Call:
    call = served_call(attempted=False)
    call.model = None
    body = {"model": "x", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
    call.decoded = decoded(body)
    call.decoded.ask.model = model  # as a decoder that let anything through would leave it
    return call


def test_a_model_name_with_a_nul_is_recorded_without_it():
    record = build(
        unknown_model_call("oa-echo\x00").served(), Seen(finished=100.1, http_status=404), POLICY
    )

    assert record.model == "oa-echo"


def test_a_lone_surrogate_is_replaced_and_the_record_still_encodes():
    record = build(unknown_model_call("oa\ud800-echo").served(), Seen(finished=100.1), POLICY)

    assert record.model == "oa\ufffd-echo"
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=UsageRecord) == record


@pytest.mark.parametrize(
    ("raw", "size", "expected"),
    [
        ("claude-test", 128, "claude-test"),
        ("\x00" * 10_000 + "m", 128, "m"),
        ("m" * 300, 128, "m" * 128),
        ("é" * 300, 128, "é" * 128),
        ("\ud83d\ude00 split pair", 64, "\U0001f600 split pair"),
        ("\udc00\ud800", 64, "\ufffd\ufffd"),
        ("", 16, ""),
    ],
)
def test_clean_leaves_what_postgresql_accepts_within_the_column(raw, size, expected):
    cleaned = clean(raw, size)

    assert cleaned == expected
    assert len(cleaned) <= size and "\x00" not in cleaned
    cleaned.encode("utf-8")  # no lone surrogate left


def test_every_cleaned_field_fits_its_column():
    from gateway.models import DailyUsage
    from gateway.models import UsageRecord as UsageRow

    sizes = {f: UsageRow._meta.get_field(f).max_length for f in COLUMN_SIZES if f != "key_prefix"}
    sizes["key_prefix"] = DailyUsage._meta.get_field("api_key_prefix").max_length

    assert sizes == COLUMN_SIZES


def test_cache_writes_are_recorded_split_by_ttl_and_priced_by_it():
    usage = ir.Usage(
        input_tokens=10,
        output_tokens=5,
        cache_creation_input_tokens=1000,
        cache_creation_1h_input_tokens=400,
    )
    seen = Seen(finished=100.5, http_status=200, usage=usage, completed=True)

    record = build(served_call().served(), seen, POLICY)

    assert (record.cache_write_tokens, record.cache_write_1h_tokens) == (1000, 400)
    # 10 x 3 + 5 x 15 + 600 x 3.75 + 400 x 6 (1-hour writes: twice the input price)
    assert record.cost_usd == Decimal("0.004755000")
