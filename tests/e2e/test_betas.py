"""`anthropic-beta` and the body's `betas`: merged, forwarded to Anthropic routes as each
provider's policy allows, acted on or reported on translated routes."""

import httpx
import pytest

HELLO = {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def anthropic_setup(stage, **provider) -> tuple[str, str]:
    stage.apply(
        providers=[stage.provider("anthropic", **provider)],
        models=[
            stage.model("claude-b", [{"provider": "anthropic-fake", "upstream_model": "up-b"}])
        ],
        tenants=[{"name": "acme"}, {"name": "other"}],
    )
    return stage.tenant_key("acme"), stage.tenant_key("other")


def sent_betas(stage, model: str) -> str | None:
    return stage.upstream.requests(model)[-1]["headers"].get("anthropic-beta")


def test_header_and_body_betas_reach_anthropic_merged_once_and_never_in_the_body(stage):
    acme, _ = anthropic_setup(stage)
    client = stage.client(acme)
    client.beta.messages.create(
        model="claude-b",
        betas=["interleaved-thinking-2025-05-14", "made-up-2026-01-01"],
        extra_body={"betas": ["made-up-2026-01-01", "context-1m-2025-08-07"]},
        **HELLO,
    )
    assert sent_betas(stage, "up-b") == (
        "interleaved-thinking-2025-05-14,made-up-2026-01-01,context-1m-2025-08-07"
    )
    assert "betas" not in stage.upstream.requests("up-b")[-1]["body"]


def test_an_anthropic_compatible_server_gets_only_the_betas_its_preset_allows(stage):
    acme, _ = anthropic_setup(stage, preset="anthropic-compatible")
    client = stage.client(acme)
    raw = client.beta.messages.with_raw_response.create(
        model="claude-b", betas=["interleaved-thinking-2025-05-14", "files-api-2025-04-14"], **HELLO
    )
    assert sent_betas(stage, "up-b") == "interleaved-thinking-2025-05-14"
    warnings = raw.headers["tollgate-warnings"]
    assert "anthropic-beta: files-api-2025-04-14 dropped" in warnings


def test_a_deny_list_set_in_config_holds_those_betas_back(stage):
    acme, _ = anthropic_setup(stage, betas={"mode": "deny", "names": ["files-api-*"]})
    stage.client(acme).beta.messages.create(
        model="claude-b", betas=["files-api-2025-04-14", "made-up-2026-01-01"], **HELLO
    )
    assert sent_betas(stage, "up-b") == "made-up-2026-01-01"


def test_under_strictness_error_a_held_back_beta_is_a_400_naming_it(stage):
    acme, _ = anthropic_setup(stage, preset="anthropic-compatible")
    response = httpx.post(
        stage.gateway.url + "/v1/messages",
        json={"model": "claude-b", **HELLO},
        headers={
            "x-api-key": acme,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "files-api-2025-04-14",
            "x-tollgate-strictness": "error",
        },
    )
    assert response.status_code == 400
    assert "anthropic-beta: files-api-2025-04-14" in response.json()["error"]["message"]
    assert stage.upstream.requests("up-b") == []


def test_a_translated_route_reports_unknown_betas_and_ignores_known_ones(stage):
    key = stage.one_route("openai", "gpt-b")
    raw = stage.client(key).beta.messages.with_raw_response.create(
        model="claude-test",
        betas=["claude-code-20250219", "made-up-2026-01-01"],
        **HELLO,
    )
    warnings = raw.headers["tollgate-warnings"]
    assert "anthropic-beta: made-up-2026-01-01 dropped" in warnings
    assert "claude-code" not in warnings
    assert "anthropic-beta" not in stage.upstream.requests("gpt-b")[-1]["headers"]


def test_context_1m_beta_selects_the_long_context_variant_of_a_translated_route(stage):
    stage.apply(
        providers=[stage.provider("openai")],
        models=[
            stage.model(
                "claude-long",
                [
                    {
                        "provider": "openai-fake",
                        "upstream_model": "gpt-short",
                        "long_context_window": 1_000_000,
                        "long_context_upstream_model": "gpt-long",
                    }
                ],
            )
        ],
        tenants=[{"name": "acme"}],
    )
    client = stage.client(stage.tenant_key("acme"))
    client.beta.messages.create(model="claude-long", betas=["context-1m-2025-08-07"], **HELLO)
    assert len(stage.upstream.requests("gpt-long")) == 1
    client.messages.create(model="claude-long", **HELLO)
    assert len(stage.upstream.requests("gpt-short")) == 1


@pytest.mark.parametrize(
    "header",
    [
        ",".join(f"flag-{i}" for i in range(200)),
        "a" * 4000,
        "bad beta; drop table",
    ],
    ids=["many", "long", "garbage"],
)
def test_a_hostile_beta_header_is_a_clear_400_never_a_500(stage, header):
    acme, _ = anthropic_setup(stage)
    response = httpx.post(
        stage.gateway.url + "/v1/messages",
        json={"model": "claude-b", **HELLO},
        headers={"x-api-key": acme, "anthropic-version": "2023-06-01", "anthropic-beta": header},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-beta" in response.json()["error"]["message"]
    assert stage.upstream.requests("up-b") == []


def test_a_tenants_beta_never_reaches_another_tenants_request(stage):
    acme, other = anthropic_setup(stage)
    stage.client(acme).beta.messages.create(model="claude-b", betas=["made-up-2026-01-01"], **HELLO)
    stage.client(other).messages.create(model="claude-b", **HELLO)
    assert sent_betas(stage, "up-b") is None
