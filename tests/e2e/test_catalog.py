"""`/v1/models` and `/v1/messages/count_tokens` through the official SDK."""

import anthropic
import httpx
import pytest
import redis
from django.conf import settings

from gateway.models import DailyUsage
from tests.e2e.usage import drain, records_for


def two_tenants(stage) -> tuple[str, str]:
    stage.apply(
        providers=[stage.provider("openai"), stage.provider("anthropic"), stage.provider("gemini")],
        models=[
            stage.model("claude-a", [{"provider": "openai-fake", "upstream_model": "gpt-a"}]),
            stage.model("claude-b", [{"provider": "anthropic-fake", "upstream_model": "cl-b"}]),
            stage.model("claude-c", [{"provider": "gemini-fake", "upstream_model": "gem-c"}]),
        ],
        tenants=[{"name": "acme"}, {"name": "globex", "models": ["claude-b"]}],
    )
    return stage.tenant_key("acme"), stage.tenant_key("globex")


def test_models_lists_only_what_the_key_may_use(stage):
    acme, globex = two_tenants(stage)
    listed = stage.client(acme).models.list()
    assert [m.id for m in listed.data] == ["claude-a", "claude-b", "claude-c"]
    assert listed.data[0].type == "model" and listed.data[0].display_name == "claude-a"
    assert [m.id for m in stage.client(globex).models.list().data] == ["claude-b"]
    with pytest.raises(anthropic.NotFoundError):
        stage.client(globex).models.retrieve("claude-a")  # another tenant's model: not found
    assert stage.client(acme).models.retrieve("claude-c").id == "claude-c"


def test_models_paginate_with_cursors(stage):
    acme, _ = two_tenants(stage)
    first = stage.client(acme).models.list(limit=2)
    assert [m.id for m in first.data] == ["claude-a", "claude-b"] and first.has_more
    assert [m.id for m in first.get_next_page().data] == ["claude-c"]
    all_ids = [m.id for m in stage.client(acme).models.list(limit=1)]  # SDK auto-paginates
    assert all_ids == ["claude-a", "claude-b", "claude-c"]


def test_models_paginate_backwards_with_has_more_while_earlier_models_remain(stage):
    acme, _ = two_tenants(stage)
    last = stage.client(acme).models.list(before_id="claude-c", limit=1)
    first = stage.client(acme).models.list(before_id="claude-b", limit=1)
    assert ([m.id for m in last.data], last.has_more) == (["claude-b"], True)
    assert ([m.id for m in first.data], first.has_more) == (["claude-a"], False)


def test_an_alias_is_listed_on_its_model_and_retrieved_as_that_model(stage):
    stage.apply(
        providers=[stage.provider("openai")],
        models=[
            stage.model(
                "claude-main",
                [{"provider": "openai-fake", "upstream_model": "gpt-main"}],
                aliases=["claude-opus-*", "claude-sonnet-4-5-20250929"],
            )
        ],
        tenants=[{"name": "acme"}],
    )
    client = stage.client(stage.tenant_key("acme"))

    listed = client.models.list().data
    retrieved = client.models.retrieve("claude-opus-5-5")
    dated = client.models.retrieve("claude-sonnet-4-5-20250929")

    assert [m.id for m in listed] == ["claude-main"]
    assert listed[0].model_extra["aliases"] == ["claude-opus-*", "claude-sonnet-4-5-20250929"]
    assert retrieved.id == dated.id == "claude-main"  # as Anthropic resolves an alias


def test_models_need_a_key(stage):
    two_tenants(stage)
    with pytest.raises(anthropic.AuthenticationError):
        stage.client("tg_wrong").models.list()


@pytest.mark.parametrize("model", ["claude-a", "claude-b", "claude-c"])
def test_count_tokens_answers_for_every_provider(stage, model):
    acme, _ = two_tenants(stage)
    count = stage.client(acme).messages.count_tokens(
        model=model,
        system="You are terse.",
        messages=[{"role": "user", "content": "How many tokens is this sentence?"}],
    )
    assert count.input_tokens > 5


def test_count_tokens_uses_the_providers_own_counter_when_it_has_one(stage):
    acme, _ = two_tenants(stage)
    stage.client(acme).messages.count_tokens(
        model="claude-b", messages=[{"role": "user", "content": "hello"}]
    )
    stage.client(acme).messages.count_tokens(
        model="claude-c", messages=[{"role": "user", "content": "hello"}]
    )
    anthropic_call = stage.upstream.requests("cl-b")[-1]
    assert anthropic_call["path"] == "/v1/messages/count_tokens"
    assert anthropic_call["body"] == {
        "model": "cl-b",
        "messages": [{"role": "user", "content": "hello"}],
    }
    assert stage.upstream.requests("gem-c")[-1]["path"].endswith(":countTokens")
    assert stage.upstream.requests("gpt-a") == []  # OpenAI has none: a local estimate


def test_count_tokens_answers_a_model_outside_the_tenant_list_as_unknown(stage):
    _, globex = two_tenants(stage)
    with pytest.raises(anthropic.NotFoundError) as caught:
        stage.client(globex).messages.count_tokens(
            model="claude-a", messages=[{"role": "user", "content": "hello"}]
        )
    assert caught.value.body["error"] == {
        "type": "not_found_error",
        "message": "model: unknown model `claude-a`",
    }


def test_openapi_document_is_served_without_a_key(stage):
    import httpx

    response = httpx.get(stage.gateway.url + "/v1/openapi.json")
    assert response.status_code == 200
    assert "/v1/messages" in response.json()["paths"]


def test_every_v1_response_says_what_the_gateway_itself_took(stage):
    acme, _ = two_tenants(stage)
    client = stage.client(acme)
    counted = client.messages.with_raw_response.count_tokens(
        model="claude-b", messages=[{"role": "user", "content": "hello"}]
    )
    listed = client.models.with_raw_response.list()
    headers = {"x-api-key": acme}
    unknown = httpx.get(stage.gateway.url + "/v1/nothing-here", headers=headers)
    refused = httpx.get(stage.gateway.url + "/v1/models", headers={"x-api-key": "tg_wrong"})
    described = httpx.get(stage.gateway.url + "/v1/openapi.json")
    for response in (counted, listed, unknown, refused, described):
        overhead = float(response.headers["tollgate-overhead-ms"])
        assert 0 <= overhead < 1000
    assert (unknown.status_code, refused.status_code) == (404, 401)


def every_counter(stage) -> str:
    """One model per provider kind (`count-<kind>` -> upstream `cnt-<kind>`); a key for them."""
    kinds = ["anthropic", "gemini", "openai_responses", "openai"]
    stage.apply(
        providers=[stage.provider(kind, timeouts={"first_byte": 1}) for kind in kinds],
        models=[
            stage.model(
                f"count-{kind}", [{"provider": f"{kind}-fake", "upstream_model": f"cnt-{kind}"}]
            )
            for kind in kinds
        ],
        tenants=[{"name": "acme"}],
    )
    return stage.tenant_key("acme")


def count(stage, key: str, model: str):
    return stage.client(key).messages.with_raw_response.count_tokens(
        model=model,
        system="You are terse.",
        messages=[{"role": "user", "content": "How many tokens is this sentence?"}],
    )


@pytest.mark.parametrize(
    ("kind", "path", "source"),
    [
        ("anthropic", "/v1/messages/count_tokens", "provider"),
        ("gemini", "/v1beta/models/cnt-gemini:countTokens", "provider"),
        ("openai_responses", "/v1/responses/input_tokens", "provider"),
        ("openai", None, "estimate"),
    ],
)
def test_count_tokens_says_whether_the_provider_or_the_estimate_counted(stage, kind, path, source):
    key = every_counter(stage)
    stage.upstream.script(f"cnt-{kind}", {"usage": {"input_tokens": 4242}}, endpoint="count")

    answer = count(stage, key, f"count-{kind}")

    assert answer.headers["tollgate-token-count"] == source
    calls = stage.upstream.requests(f"cnt-{kind}")
    if path is None:
        assert calls == [] and answer.parse().input_tokens > 5
    else:
        assert [c["path"] for c in calls] == [path]
        assert answer.parse().input_tokens == 4242


def test_responses_counter_gets_the_request_as_it_would_be_sent(stage):
    key = every_counter(stage)
    count(stage, key, "count-openai_responses")
    (sent,) = stage.upstream.requests("cnt-openai_responses")
    assert sent["body"] == {
        "model": "cnt-openai_responses",
        "input": [
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "How many tokens is this sentence?"}],
            }
        ],
        "instructions": "You are terse.",
    }


COUNTER_FAILURES = {
    "missing": {"status": 404},
    "server_error": {"status": 500},
    "overloaded": {"status": 529},
    "garbage": {"status": 200, "error_body": "not a count"},
    "slow": {"delay_first_byte": 2},  # past the route's first-byte timeout (1 s)
    "rejects_the_request": {"status": 400},
}


@pytest.mark.parametrize("failure", list(COUNTER_FAILURES))
@pytest.mark.parametrize("kind", ["anthropic", "gemini", "openai_responses"])
def test_count_tokens_never_fails_when_the_counter_does(stage, kind, failure):
    key = every_counter(stage)
    stage.upstream.script(f"cnt-{kind}", COUNTER_FAILURES[failure], endpoint="count")
    estimate = count(stage, key, "count-openai")  # the same prompt, counted by the gateway

    answer = count(stage, key, f"count-{kind}")

    assert answer.status_code == 200
    assert answer.headers["tollgate-token-count"] == "estimate"
    assert answer.parse().input_tokens == estimate.parse().input_tokens


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "openai_responses"])
def test_count_tokens_with_our_credential_refused_answers_the_estimate(stage, kind):
    stage.apply(
        providers=[stage.provider(kind, api_key="revoked-upstream-key")],
        models=[stage.model("claude-x", [{"provider": f"{kind}-fake", "upstream_model": "cnt"}])],
        tenants=[{"name": "acme"}],
    )
    answer = count(stage, stage.tenant_key("acme"), "claude-x")
    assert answer.status_code == 200
    assert answer.headers["tollgate-token-count"] == "estimate"
    assert len(stage.upstream.requests("cnt")) == 1


def test_a_server_without_count_tokens_is_not_asked_at_every_count(stage):
    key = every_counter(stage)
    stage.upstream.script("cnt-anthropic", {"status": 404}, endpoint="count")
    for _ in range(3):
        assert count(stage, key, "count-anthropic").headers["tollgate-token-count"] == "estimate"
    assert len(stage.upstream.requests("cnt-anthropic")) == 1


def test_every_count_leaves_an_unbilled_record_outside_the_roll_ups(stage):
    broker = redis.Redis.from_url(settings.REDIS_URL)
    drain(broker)
    key = every_counter(stage)
    stage.upstream.script("cnt-anthropic", {"usage": {"input_tokens": 4242}}, endpoint="count")
    exact = count(stage, key, "count-anthropic")
    guessed = count(stage, key, "count-openai")
    estimate = guessed.parse().input_tokens
    with pytest.raises(anthropic.NotFoundError) as unknown:
        count(stage, key, "no-such-model")

    ids = [exact.headers["request-id"], guessed.headers["request-id"]]
    ids.append(unknown.value.response.headers["request-id"])
    rows = records_for(broker, ids)
    broker.close()

    seen = [
        (r.endpoint, r.model, r.provider, r.input_tokens, r.estimated, r.http_status, r.billed)
        for r in (rows[i] for i in ids)
    ]
    assert seen == [
        ("count_tokens", "count-anthropic", "anthropic-fake", 4242, False, 200, False),
        ("count_tokens", "count-openai", "openai-fake", estimate, True, 200, False),
        ("count_tokens", "no-such-model", "", 0, False, 404, False),
    ]
    assert rows[ids[2]].error_type == "not_found_error"
    assert all(r.cost_usd == 0 and r.tenant is not None for r in rows.values())
    assert not DailyUsage.objects.exists()  # counting is not a request, nor tokens used
