"""Response extras (usage, meta, echo_upstream_request, debug) and strictness, end to end."""

import json
from decimal import Decimal

import anthropic
import httpx
import pytest

ASK = {"model": "claude-test", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
PRICES = {
    "input": Decimal("3"),
    "output": Decimal("15"),
    "cache_read": Decimal("0.3"),
    "cache_write": Decimal("3.75"),
}


def setup(stage, *kinds: str, **key_options) -> str:
    stage.apply(
        providers=[stage.provider(k) for k in kinds],
        models=[
            stage.model(
                "claude-test",
                [
                    {"provider": f"{k}-fake", "upstream_model": f"up-{k}", "priority": i}
                    for i, k in enumerate(kinds, 1)
                ],
            )
        ],
        tenants=[{"name": "acme"}],
    )
    return stage.tenant_key("acme", **key_options)


def post(stage, key: str, body: dict, **headers) -> httpx.Response:
    return httpx.post(
        stage.gateway.url + "/v1/messages",
        json=body,
        timeout=30,
        headers={"x-api-key": key, **headers},
    )


def expected_cost(usage: dict) -> Decimal:
    return (
        usage["input_tokens"] * PRICES["input"]
        + usage["output_tokens"] * PRICES["output"]
        + usage["cache_read_input_tokens"] * PRICES["cache_read"]
        + usage["cache_creation_input_tokens"] * PRICES["cache_write"]
    ) / Decimal(10**6)


def test_usage_true_adds_an_exact_cost_with_one_line_per_meter(stage):
    key = setup(stage, "openai")
    stage.upstream.script(
        "up-openai",
        {"usage": {"input_tokens": 1200, "output_tokens": 345, "cache_read_input_tokens": 1000}},
    )
    usage = post(stage, key, {**ASK, "usage": True}).json()["usage"]
    # 1200 x $3 + 345 x $15 + 1000 cached x $0.30, per million tokens
    assert Decimal(usage["cost_usd"]) == expected_cost(usage) == Decimal("0.009075")
    lines = {line["meter"]: line for line in usage["pricing"]["lines"]}
    assert lines["input"] == {
        "meter": "input",
        "quantity": 1200,
        "unit_price_per_mtok_usd": "3",
        "cost_usd": "0.0036",
    }
    assert lines["cache_read"]["quantity"] == 1000 and lines["cache_read"]["cost_usd"] == "0.0003"
    assert sum(Decimal(line["cost_usd"]) for line in lines.values()) == Decimal(usage["cost_usd"])
    assert "usage" not in stage.upstream.requests("up-openai")[-1]["body"]  # never forwarded


def test_meta_true_reports_who_answered_and_how(stage):
    key = setup(stage, "anthropic", "openai")
    stage.upstream.script("up-anthropic", {"status": 529}, {"status": 529})
    response = post(stage, key, {**ASK, "meta": True})
    meta = response.json()["meta"]
    assert meta["request_id"] == response.headers["request-id"]
    assert (meta["provider"], meta["upstream_model"]) == ("openai-fake", "up-openai")
    assert [(a["provider"], a["status"]) for a in meta["attempts"]] == [
        ("anthropic-fake", 529),
        ("anthropic-fake", 529),
        ("openai-fake", 200),
    ]
    assert meta["routing"]["selected_provider"] == "openai-fake"
    assert meta["latency_ms"] >= meta["gateway_overhead_ms"] >= 0
    assert meta["generation_ms"] >= 0 and "throughput_tps" in meta
    assert meta["warnings"] == []


def test_echo_upstream_request_returns_the_exact_body_sent(stage):
    key = setup(stage, "openai")
    body = post(stage, key, {**ASK, "echo_upstream_request": True}).json()
    assert body["upstream_request"] == stage.upstream.requests("up-openai")[-1]["body"]


def test_debug_needs_the_keys_debug_flag_and_never_shows_credentials(stage):
    key = setup(stage, "openai")
    refused = post(stage, key, {**ASK, "debug": {"enabled": True}})
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"

    debug_key = stage.tenant_key("acme", allow_debug=True)
    response = post(
        stage,
        debug_key,
        {
            **ASK,
            "debug": {
                "enabled": True,
                "return_upstream_request": True,
                "return_upstream_response": True,
                "trace": True,
                "trace_level": "full",
            },
        },
    )
    debug = response.json()["debug"]
    assert debug["upstream_request"]["headers"]["authorization"] == "<redacted>"
    assert debug["upstream_request"]["url"].endswith("/v1/chat/completions")
    assert debug["upstream_response"]["object"] == "chat.completion"
    assert [step["step"] for step in debug["trace"]] == ["attempt", "gateway"]
    assert "sk-upstream-secret" not in response.text and debug_key not in response.text


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_streamed_extras_ride_on_message_delta_without_breaking_the_sdk(stage, kind):
    key = setup(stage, kind)
    body = {**ASK, "stream": True, "usage": True, "meta": True}
    events = [
        json.loads(line[6:])
        for line in post(stage, key, body).text.splitlines()
        if line.startswith("data: ")
    ]
    delta = next(e for e in events if e["type"] == "message_delta")
    assert Decimal(delta["usage"]["cost_usd"]) == expected_cost(delta["usage"])
    assert delta["meta"]["provider"] == f"{kind}-fake"
    with stage.client(key).messages.stream(**ASK, extra_body={"usage": True, "meta": True}) as s:
        final = s.get_final_message()
    assert final.content[0].text == "echo: hi"


def test_strictness_error_refuses_a_field_the_only_route_drops(stage):
    key = setup(stage, "openai")
    response = post(stage, key, {**ASK, "top_k": 5}, **{"x-tollgate-strictness": "error"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "top_k: not supported by provider openai-fake (strictness: error)"
    )
    assert stage.upstream.requests("up-openai") == []


def test_strictness_error_steers_to_a_route_that_can_honour_the_field(stage):
    key = setup(stage, "openai", "anthropic")  # openai is priority 1 but drops top_k
    response = post(
        stage, key, {**ASK, "top_k": 5, "meta": True}, **{"x-aistats-strictness": "error"}
    )
    assert response.status_code == 200
    assert response.json()["meta"]["provider"] == "anthropic-fake"
    assert response.json()["meta"]["routing"]["skipped_providers"] == [
        {"provider": "openai-fake", "unsupported": ["top_k"]}
    ]
    assert stage.upstream.requests("up-anthropic")[-1]["body"]["top_k"] == 5


def test_strictness_warn_reports_dropped_and_unknown_fields(stage):
    key = setup(stage, "openai")
    response = post(stage, key, {**ASK, "top_k": 5, "mystery_field": 1, "meta": True})
    assert response.status_code == 200
    assert response.headers["tollgate-warnings"] == (
        "top_k dropped: not supported by provider openai-fake; "
        "mystery_field dropped: not supported by provider openai-fake"
    )
    assert len(response.json()["meta"]["warnings"]) == 2
    sent = stage.upstream.requests("up-openai")[-1]["body"]
    assert "top_k" not in sent and "mystery_field" not in sent


def test_strictness_off_drops_silently_and_unknown_fields_pass_to_anthropic(stage):
    key = setup(stage, "openai")
    quiet = post(stage, key, {**ASK, "top_k": 5}, **{"x-tollgate-strictness": "off"})
    assert quiet.status_code == 200 and "tollgate-warnings" not in quiet.headers
    anthropic_key = setup(stage, "anthropic")
    passed = post(stage, anthropic_key, {**ASK, "mystery_field": 1})
    assert "tollgate-warnings" not in passed.headers
    assert stage.upstream.requests("up-anthropic")[-1]["body"]["mystery_field"] == 1


def test_invalid_strictness_value_is_a_400(stage):
    key = setup(stage, "openai")
    with pytest.raises(anthropic.BadRequestError) as caught:
        stage.client(key, default_headers={"x-tollgate-strictness": "loose"}).messages.create(**ASK)
    assert "must be one of error, warn, off" in caught.value.body["error"]["message"]
