"""Prompt caching end to end: `cache_control` reaches Anthropic as sent, cache writes are
recorded and billed by TTL, and OpenAI routes get a per-tenant `prompt_cache_key` whose
repeated prefix hits while another tenant's never shares it."""

from decimal import Decimal

import pytest
import redis
from django.conf import settings

from tests.e2e.usage import records_for

SYSTEM = "You are a careful coding agent working in a large repository. " * 120  # ~1,900 tokens
HOUR = {"type": "ephemeral", "ttl": "1h"}


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


def test_cache_control_reaches_anthropic_as_sent_with_1h_ttl_and_top_level(stage):
    key = stage.one_route("anthropic", "claude-up")
    stage.client(key).messages.create(
        model="claude-test",
        max_tokens=50,
        system=[{"type": "text", "text": SYSTEM, "cache_control": HOUR}],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        extra_body={"cache_control": {"type": "ephemeral", "ttl": "5m"}},
    )
    body = stage.upstream.requests("claude-up")[-1]["body"]
    assert body["system"][0]["cache_control"] == HOUR
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["cache_control"] == {"type": "ephemeral", "ttl": "5m"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_cache_writes_are_split_by_ttl_in_the_answer_the_record_and_the_cost(stage, broker, stream):
    key = stage.one_route("anthropic", "claude-up")
    usage = {
        "input_tokens": 100,
        "output_tokens": 10,
        "cache_creation_input_tokens": 3000,
        "cache_creation_1h_input_tokens": 2000,
        "cache_read_input_tokens": 500,
    }
    stage.upstream.script("claude-up", {"usage": usage})
    ask = {
        "model": "claude-test",
        "max_tokens": 50,
        "system": [{"type": "text", "text": SYSTEM, "cache_control": HOUR}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    client = stage.client(key)
    if stream:
        with client.messages.stream(**ask) as events:
            message = events.get_final_message()
            rid = events.request_id
    else:
        message = client.messages.create(**ask)
        rid = message._request_id

    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 2000
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 1000
    row = records_for(broker, [rid])[rid]
    assert (row.cache_write_tokens, row.cache_write_1h_tokens, row.cache_read_tokens) == (
        3000,
        2000,
        500,
    )
    # 100 x $3 + 10 x $15 + 1000 x $3.75 (5 min) + 2000 x $6 (1 h: 2x input) + 500 x $0.30
    assert row.cost_usd == Decimal("0.016350000")


def openai_setup(stage, kind: str) -> tuple[str, str]:
    options = {"options": {"prompt_cache_key": True}} if kind == "openai" else {}
    stage.apply(
        providers=[stage.provider(kind, **options)],
        models=[stage.model("claude-c", [{"provider": f"{kind}-fake", "upstream_model": "gpt-c"}])],
        tenants=[{"name": "acme"}, {"name": "other"}],
    )
    return stage.tenant_key("acme"), stage.tenant_key("other")


def ask(client, question: str):
    return client.messages.create(
        model="claude-c",
        max_tokens=50,
        system=SYSTEM,
        messages=[{"role": "user", "content": question}],
    )


@pytest.mark.parametrize("kind", ["openai", "openai_responses"])
def test_a_tenants_repeated_prefix_hits_and_another_tenant_never_shares_it(stage, broker, kind):
    acme, other = openai_setup(stage, kind)

    first = ask(stage.client(acme), "first question")
    second = ask(stage.client(acme), "a different question")
    theirs = ask(stage.client(other), "first question")

    keys = [r["body"]["prompt_cache_key"] for r in stage.upstream.requests("gpt-c")]
    assert keys[0] == keys[1] != keys[2]
    assert all(k.startswith("tg-") for k in keys)
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens >= 1024
    assert theirs.usage.cache_read_input_tokens == 0
    rid = second._request_id
    row = records_for(broker, [rid])[rid]
    assert row.cache_read_tokens == second.usage.cache_read_input_tokens
    expected = (
        row.input_tokens * Decimal(3)
        + row.cache_read_tokens * Decimal("0.3")
        + row.output_tokens * Decimal(15)
    ) / Decimal(1_000_000)
    assert row.cost_usd == expected.quantize(Decimal("0.000000001"))


def test_a_key_the_client_chose_is_folded_into_its_tenants_key(stage):
    acme, other = openai_setup(stage, "openai_responses")
    chosen = {"provider_options": {"openai": {"prompt_cache_key": "shared-name"}}}
    for key in (acme, other):
        stage.client(key).messages.create(
            model="claude-c",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_body=chosen,
        )
    keys = [r["body"]["prompt_cache_key"] for r in stage.upstream.requests("gpt-c")]
    assert "shared-name" not in keys and keys[0] != keys[1]


def test_an_openai_compatible_server_gets_no_key_unless_its_provider_asks(stage):
    key = stage.one_route("openai", "gpt-plain")
    ask_plain = {"model": "claude-test", "max_tokens": 50, "system": SYSTEM}
    stage.client(key).messages.create(**ask_plain, messages=[{"role": "user", "content": "hi"}])
    assert "prompt_cache_key" not in stage.upstream.requests("gpt-plain")[-1]["body"]


def test_a_translated_answer_has_anthropics_cache_creation_shape(stage):
    acme, _ = openai_setup(stage, "openai")
    message = ask(stage.client(acme), "hi")
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 0
