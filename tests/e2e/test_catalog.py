"""`/v1/models` and `/v1/messages/count_tokens` through the official SDK."""

import anthropic
import httpx
import pytest


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
