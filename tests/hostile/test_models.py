"""Model ids through the real servers: aliases, patterns, tenant defaults, `[1m]` suffixes.

A context-window suffix out of range is a 400 before any upstream call; an alias, a pattern
or a default of a model a key may not use is answered like an id nobody configured, word for
word; ids a tenant invents by the thousand cost it 404s and nobody else anything.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import httpx
import pytest

from tests.hostile.conftest import assert_error_shape, assert_healthy
from tests.hostile.test_input import post

ASK = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def aliased(hostile) -> tuple[str, str]:
    """acme may use claude-ours (patterns claude-ours-*) and defaults to it; globex may use
    every model; claude-secret has an alias and a pattern. Returns (acme key, globex key)."""
    hostile.apply(
        providers=[hostile.provider("openai")],
        models=[
            hostile.model(
                "claude-ours",
                [{"provider": "openai-fake", "upstream_model": "up-ours"}],
                aliases=["claude-ours-*"],
            ),
            hostile.model(
                "claude-secret",
                [{"provider": "openai-fake", "upstream_model": "up-secret"}],
                aliases=["secret-alias", "claude-secret-*"],
            ),
        ],
        tenants=[
            {"name": "acme", "models": ["claude-ours"], "default_model": "claude-ours"},
            {"name": "globex"},
        ],
    )
    return hostile.tenant_key("acme"), hostile.tenant_key("globex")


def answers(hostile, key: str, model: str) -> list[tuple[int, dict]]:
    replies = [
        post(hostile, "/v1/messages", {"model": model, **ASK}, key),
        post(
            hostile, "/v1/messages/count_tokens", {"model": model, "messages": ASK["messages"]}, key
        ),
        httpx.get(
            f"{hostile.gateway.url}/v1/models/{quote(model, safe='')}",
            headers={"x-api-key": key},
            timeout=10,
        ),
    ]
    return [(r.status_code, r.json().get("error") or r.json()) for r in replies]


@pytest.mark.parametrize("suffix", ["[999999999m]", "[0m]", "[101M]"])
def test_a_context_suffix_out_of_range_is_a_400_on_every_endpoint(hostile, suffix):
    acme, _ = aliased(hostile)

    for status, error in answers(hostile, acme, "claude-ours" + suffix):
        assert status == 400
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("model: the context-window suffix `[")
    assert hostile.upstream.requests() == []


def test_another_tenants_alias_and_pattern_are_answered_like_unknown_ids(hostile):
    acme, globex = aliased(hostile)

    alias, missing = answers(hostile, acme, "secret-alias"), answers(hostile, acme, "xyz-alias1")

    assert [s for s, _ in alias] == [404, 404, 404]
    assert [e["message"].replace("secret", "xyz") + "" for _, e in alias] == [
        e["message"].replace("xyz-alias1", "xyz-alias") for _, e in missing
    ]
    # A claude-* id of that model's pattern falls to acme's own default, as an unknown one does.
    taken = post(hostile, "/v1/messages", {"model": "claude-secret-9", **ASK}, acme)
    assert taken.status_code == 200 and taken.json()["model"] == "claude-secret-9"
    assert hostile.upstream.requests("up-secret") == []
    assert [r["model"] for r in hostile.upstream.requests()] == ["up-ours"]
    # globex may use both: the alias reaches claude-secret.
    assert (
        post(hostile, "/v1/messages", {"model": "secret-alias", **ASK}, globex).status_code == 200
    )


def test_the_answer_names_the_id_asked_for_and_the_record_the_model_it_resolved_to(hostile):
    acme, _ = aliased(hostile)

    answer = post(hostile, "/v1/messages", {"model": "claude-ours-4-8[1m]", **ASK}, acme)

    assert answer.status_code == 200
    assert answer.json()["model"] == "claude-ours-4-8[1m]"  # what Anthropic would answer
    assert "model: long context [1m] dropped" in answer.headers["tollgate-warnings"]


def test_a_long_context_request_goes_to_the_routes_variant_or_is_refused_under_error(hostile):
    hostile.apply(
        providers=[hostile.provider("openai"), hostile.provider("gemini")],
        models=[
            hostile.model(
                "claude-big",
                [
                    {"provider": "openai-fake", "upstream_model": "up-short", "priority": 1},
                    {
                        "provider": "gemini-fake",
                        "upstream_model": "up-long",
                        "priority": 2,
                        "long_context_window": 1_000_000,
                        "long_context_upstream_model": "up-long-1m",
                    },
                ],
            ),
            hostile.model("claude-small", [{"provider": "openai-fake", "upstream_model": "up-s"}]),
        ],
        tenants=[{"name": "acme"}],
    )
    key = hostile.tenant_key("acme")
    strict = {"x-tollgate-strictness": "error"}

    long = post(hostile, "/v1/messages", {"model": "claude-big[1m]", **ASK}, key, **strict)
    ordinary = post(hostile, "/v1/messages", {"model": "claude-big", **ASK}, key, **strict)
    refused = post(hostile, "/v1/messages", {"model": "claude-small[1m]", **ASK}, key, **strict)
    too_long = post(hostile, "/v1/messages", {"model": "claude-big[2m]", **ASK}, key, **strict)

    assert long.status_code == 200 and "tollgate-warnings" not in long.headers
    assert ordinary.status_code == 200
    assert [r["model"] for r in hostile.upstream.requests()] == ["up-long-1m", "up-short"]
    for answer in (refused, too_long):
        error = assert_error_shape(answer, 400, "invalid_request_error")
        assert error["message"].startswith("model: long context [")
        assert "(strictness: error)" in error["message"]


def test_ids_invented_by_the_thousand_are_404s_and_cost_others_nothing(hostile):
    acme, globex = aliased(hostile)
    invented = [f"claude-{secrets.token_hex(8)}-opus" for _ in range(200)]
    invented += ["x" * 5000, "claude-" + "*" * 100, "*", "secret-alias*", "claude-\x00ours"]

    with httpx.Client(base_url=hostile.gateway.url, timeout=10) as client:
        statuses = {
            client.post(
                "/v1/messages/count_tokens",
                json={"model": name, "messages": ASK["messages"]},
                headers={"x-api-key": globex},
            ).status_code
            for name in invented
        }

    assert statuses == {404}
    served = post(hostile, "/v1/messages", {"model": "claude-ours-1", **ASK}, acme)
    assert served.status_code == 200
    assert_healthy(hostile)
