"""Routing and resilience end to end: preferences, fallbacks under injected faults, breakers."""

import time

import anthropic
import httpx
import pytest

from tests.e2e.live import LiveGateway

KINDS = ["openai", "anthropic", "gemini", "openai_responses"]
ASK = {"model": "claude-test", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}


def routes(stage, *entries, **model_extra) -> str:
    """entries: (provider name, kind, upstream model, extra route fields)."""
    providers = {}
    for name, kind, _, _ in entries:
        providers[name] = stage.provider(kind, name, timeouts={"first_byte": 1, "idle": 1})
    stage.apply(
        providers=list(providers.values()),
        models=[
            stage.model(
                "claude-test",
                [
                    {"provider": name, "upstream_model": upstream, **extra}
                    for name, _, upstream, extra in entries
                ],
                **model_extra,
            )
        ],
        tenants=[{"name": "acme"}],
    )
    return stage.tenant_key("acme")


def test_provider_order_only_and_ignore_steer_the_request(stage):
    key = routes(
        stage,
        ("p1", "openai", "gpt-1", {"priority": 1}),
        ("p2", "openai", "gpt-2", {"priority": 2}),
    )
    client = stage.client(key)
    client.messages.create(**ASK, extra_body={"provider": {"order": ["p2"]}})
    assert len(stage.upstream.requests("gpt-2")) == 1 and not stage.upstream.requests("gpt-1")
    client.messages.create(**ASK, extra_body={"provider": {"only": ["p2"]}})
    client.messages.create(**ASK, extra_body={"provider": {"ignore": ["p1"]}})
    assert len(stage.upstream.requests("gpt-2")) == 3 and not stage.upstream.requests("gpt-1")
    client.messages.create(**ASK)
    assert len(stage.upstream.requests("gpt-1")) == 1  # priority 1 first by default


def test_unknown_provider_or_empty_plan_is_a_400_naming_it(stage):
    key = routes(stage, ("p1", "openai", "gpt-1", {}))
    client = stage.client(key)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**ASK, extra_body={"provider": {"only": ["nope"]}})
    assert caught.value.body["error"]["message"] == "provider.only: unknown provider `nope`"
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(**ASK, extra_body={"provider": {"only": ["p1"], "ignore": ["p1"]}})
    assert "no route of model `claude-test` is left" in caught.value.body["error"]["message"]


def test_allow_fallbacks_false_makes_one_attempt(stage):
    key = routes(
        stage,
        ("p1", "openai", "gpt-1", {"priority": 1}),
        ("p2", "openai", "gpt-2", {"priority": 2}),
    )
    stage.upstream.script("gpt-1", {"status": 500}, {"status": 500})
    with pytest.raises(anthropic.InternalServerError):
        stage.client(key).messages.create(
            **ASK, extra_body={"provider": {"allow_fallbacks": False}}
        )
    assert not stage.upstream.requests("gpt-2")


def test_alpha_routes_only_with_include_alpha(stage):
    key = routes(
        stage,
        ("p1", "openai", "gpt-1", {"priority": 2}),
        ("p2", "openai", "gpt-alpha", {"priority": 1, "alpha": True}),
    )
    stage.client(key).messages.create(**ASK)
    assert not stage.upstream.requests("gpt-alpha")
    stage.client(key).messages.create(**ASK, extra_body={"provider": {"include_alpha": True}})
    assert len(stage.upstream.requests("gpt-alpha")) == 1


def test_sort_price_tries_the_cheapest_route_first(stage):
    key = routes(
        stage,
        ("p1", "openai", "gpt-dear", {"upstream_price_input": 5, "upstream_price_output": 20}),
        ("p2", "openai", "gpt-cheap", {"upstream_price_input": 0.1, "upstream_price_output": 0.4}),
    )
    for _ in range(3):
        stage.client(key).messages.create(**ASK, extra_body={"provider": {"sort": "price"}})
    assert len(stage.upstream.requests("gpt-cheap")) == 3 and not stage.upstream.requests(
        "gpt-dear"
    )


FAULTS = {
    "refused": {"refuse_connection": True},
    "500": {"status": 500},
    "529": {"status": 529},
    "429": {"status": 429, "headers": {"retry-after": "0"}},
    "slow_first_byte": {"delay_first_byte": 3},
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_faults_fall_back_to_the_next_route(stage, kind, fault, stream):
    key = routes(
        stage,
        ("bad", kind, "up-bad", {"priority": 1}),
        ("good", "openai", "up-good", {"priority": 2}),
    )
    stage.upstream.script("up-bad", FAULTS[fault], FAULTS[fault])
    client = stage.client(key)
    if stream:
        with client.messages.stream(**ASK) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**ASK)
    assert message.content[0].text == "echo: x"
    assert len(stage.upstream.requests("up-good")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_silent_stream_after_first_byte_ends_with_an_error_event(stage, kind):
    key = routes(stage, ("only", kind, "up-silent", {}))
    stage.upstream.script(
        "up-silent",
        {
            "blocks": [{"type": "text", "text": "a" * 80}],
            "text_chunk_size": 8,
            "silent_after_chunks": 3,
            "hang_seconds": 5,
        },
    )
    response = httpx.post(
        stage.gateway.url + "/v1/messages",
        headers={"x-api-key": key},
        json={**ASK, "stream": True},
        timeout=30,
    )
    assert response.status_code == 200
    tail = response.text.strip().split("\n\n")[-1]
    assert tail.startswith("event: error")
    assert '"timeout_error"' in tail


def test_breaker_opens_after_failures_and_is_shared_between_replicas(stage, live_gateway):
    key = routes(
        stage,
        ("flaky", "openai", "gpt-flaky", {"priority": 1}),
        ("steady", "openai", "gpt-steady", {"priority": 2}),
    )
    # The replica starts first: the cool-down (1.5 s in e2e settings) must not run out while
    # a process boots.
    other = LiveGateway(env=live_gateway.env).start()
    try:
        stage.upstream.script("gpt-flaky", *[{"status": 500}] * 20)
        client = stage.client(key)
        for _ in range(3):  # each request: the flaky route and its retry fail, steady answers
            client.messages.create(**ASK)
        tried = len(stage.upstream.requests("gpt-flaky"))
        # The 3rd failure (e2e settings) opened the breaker in the 2nd request: no retry after it.
        assert tried == 3
        replica = anthropic.Anthropic(base_url=other.url, api_key=key, max_retries=0)
        assert replica.messages.create(**ASK).content[0].text == "echo: x"
        assert len(stage.upstream.requests("gpt-flaky")) == tried  # skipped there too
        time.sleep(float(live_gateway.env["TOLLGATE_BREAKER_COOLDOWN"]) + 0.2)
        stage.upstream.reset()
        replica.messages.create(**ASK)  # cool-down over: one probe, which succeeds
        assert len(stage.upstream.requests("gpt-flaky")) == 1
        time.sleep(1.1)  # the first gateway's one-second view of the breaker refreshes
        client.messages.create(**ASK)
        assert len(stage.upstream.requests("gpt-flaky")) == 2  # closed again everywhere
    finally:
        other.stop()


def test_tenant_provider_defaults_steer_and_requests_override_them(stage):
    stage.apply(
        providers=[stage.provider("openai", "p1"), stage.provider("openai", "p2")],
        models=[
            stage.model(
                "claude-test",
                [
                    {"provider": "p1", "upstream_model": "gpt-1", "priority": 1},
                    {"provider": "p2", "upstream_model": "gpt-2", "priority": 2},
                ],
            )
        ],
        tenants=[{"name": "acme", "provider": {"order": ["p2"]}}],
    )
    client = stage.client(stage.tenant_key("acme"))
    client.messages.create(**ASK)
    assert len(stage.upstream.requests("gpt-2")) == 1 and not stage.upstream.requests("gpt-1")
    client.messages.create(**ASK, extra_body={"provider": {"order": ["p1"]}})
    assert len(stage.upstream.requests("gpt-1")) == 1


# How each provider refuses a bad key (the fake's `credential_error`), as the client sees it.
REFUSED_KEY = {
    "openai": "upstream refused the gateway's credential (401 invalid_api_key)",
    "openai_responses": "upstream refused the gateway's credential (401 invalid_api_key)",
    "anthropic": "upstream refused the gateway's credential (401 authentication_error)",
    "gemini": "upstream refused the gateway's credential (400 API_KEY_INVALID)",
}


@pytest.mark.parametrize("kind", KINDS)
def test_our_refused_key_falls_back_at_once_to_the_next_route(stage, kind):
    key = routes(
        stage,
        ("revoked", kind, "up-revoked", {"priority": 1}),
        ("good", "openai", "up-good", {"priority": 2}),
    )
    stage.apply(
        providers=[stage.provider(kind, "revoked", api_key="revoked-upstream-key-1")],
        models=[],
        tenants=[],
    )
    message = stage.client(key).messages.create(**ASK)
    assert message.content[0].text == "echo: x"
    assert len(stage.upstream.requests("up-revoked")) == 1  # not retried with the same key


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_our_refused_key_is_an_api_error_the_client_should_not_retry(stage, kind, stream):
    key = routes(stage, ("revoked", kind, "up-revoked", {}))
    stage.apply(
        providers=[stage.provider(kind, "revoked", api_key="revoked-upstream-key-1")],
        models=[],
        tenants=[],
    )
    answer = httpx.post(
        stage.gateway.url + "/v1/messages",
        headers={"x-api-key": key},
        json={**ASK, "stream": stream},
        timeout=30,
    )
    assert answer.status_code == 500
    assert answer.headers["x-should-retry"] == "false"
    assert answer.json()["error"] == {"type": "api_error", "message": REFUSED_KEY[kind]}


def test_a_suspended_key_counts_against_its_route_until_the_breaker_skips_it(stage):
    key = routes(
        stage,
        ("suspended", "gemini", "up-suspended", {"priority": 1}),
        ("good", "openai", "up-good", {"priority": 2}),
    )
    stage.apply(
        providers=[stage.provider("gemini", "suspended", api_key="suspended-upstream-key-1")],
        models=[],
        tenants=[],
    )
    client = stage.client(key)
    for _ in range(3):  # e2e settings: the third failure in a row opens the breaker
        raw = client.messages.with_raw_response.create(**ASK, extra_body={"meta": True})
        assert [a["status"] for a in raw.http_response.json()["meta"]["attempts"]] == [403, 200]
    client.messages.create(**ASK)
    assert len(stage.upstream.requests("up-suspended")) == 3  # skipped now
    assert len(stage.upstream.requests("up-good")) == 4
