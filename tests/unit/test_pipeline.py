"""The pipeline's pure checks: the `anthropic-beta` header, model resolution, the output limit."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.keys import KeyInfo
from core.errors import InvalidRequest, NotFound
from gateway.pipeline.admission import check_output_limit, resolve, resolve_model
from protocols.anthropic.betas import of_request as beta_flags
from providers.aliases import AliasIndex
from providers.routing import ModelEntry, Prices, Snapshot


def model(name: str, max_tokens: int | None = None) -> ModelEntry:
    zero = Decimal(0)
    return ModelEntry(
        id=1,
        name=name,
        display_name=name,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        max_tokens=max_tokens,
        prices=Prices(zero, zero, zero, zero),
        routes=(),
    )


def key(tenant_id: int = 1, allowed: frozenset[str] | None = None) -> KeyInfo:
    return KeyInfo(
        key_id=1,
        tenant_id=tenant_id,
        tenant_name="acme",
        prefix="tg_abc",
        allowed_models=allowed,
        allow_debug=False,
        expires_at=None,
        revoked=False,
        tenant_active=True,
    )


SNAPSHOT = Snapshot(
    version=None,
    models={"mine": model("mine"), "theirs": model("theirs")},
    tenant_models={1: frozenset({"mine"})},
)


def message_of(name: str, who: KeyInfo) -> str:
    with pytest.raises(NotFound) as caught:
        resolve_model(SNAPSHOT, who, name)
    return caught.value.message


def test_beta_flags_are_split_and_trimmed():
    headers = {b"anthropic-beta": b"interleaved-thinking-2025-05-14 , context-1m-2025-08-07,,"}
    assert beta_flags(headers) == ["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]
    assert beta_flags({}) == []


@pytest.mark.parametrize(
    "value",
    ["caf\xe9".encode("latin-1"), "café".encode(), b"a b", b"flag\x00", b"flag;x=1", b'"q"'],
)
def test_a_beta_flag_that_is_not_an_http_token_is_a_400_naming_the_header(value):
    with pytest.raises(InvalidRequest) as caught:
        beta_flags({b"anthropic-beta": value})
    assert caught.value.message.startswith("anthropic-beta: ")


def test_a_model_of_another_tenant_is_answered_exactly_like_an_unknown_one():
    assert message_of("theirs", key()) == "model: unknown model `theirs`"
    assert message_of("nowhere", key()) == "model: unknown model `nowhere`"


def test_a_model_outside_the_keys_list_is_answered_like_an_unknown_one():
    limited = key(tenant_id=2, allowed=frozenset({"theirs"}))
    assert resolve_model(SNAPSHOT, limited, "theirs").name == "theirs"
    assert message_of("mine", limited) == "model: unknown model `mine`"


def test_max_tokens_above_the_models_output_limit_is_refused_in_anthropic_words():
    limited = model("claude-x", max_tokens=8192)
    check_output_limit(limited, 8192)
    with pytest.raises(InvalidRequest) as caught:
        check_output_limit(limited, 8193)
    assert caught.value.message == (
        "max_tokens: 8193 > 8192, which is the maximum allowed number of output tokens for claude-x"
    )


def test_a_model_without_an_output_limit_takes_any_max_tokens():
    check_output_limit(model("open"), 10**9)


# --- Aliases, patterns, the tenant default and the context suffix ----------------------------

ALIASED = Snapshot(
    version=None,
    models={n: model(n) for n in ("opus", "sonnet", "cheap", "secret")},
    tenant_models={2: frozenset({"opus", "sonnet", "cheap"})},
    aliases=AliasIndex.build(
        ["opus", "sonnet", "cheap", "secret"],
        {
            "claude-opus-4-8": "opus",
            "claude-*-opus-*": "opus",
            "claude-sonnet-*": "sonnet",
            "claude-secret-*": "secret",
            "claude-*": "cheap",
            "top-secret": "secret",
        },
    ),
    tenant_default={2: "opus", 3: "secret"},
)


def resolved(name: str, who: KeyInfo) -> tuple[str, int | None]:
    found, window = resolve(ALIASED, who, name)
    return found.name, window


def test_an_alias_a_pattern_and_a_dated_id_reach_their_model():
    assert resolved("claude-opus-4-8", key(2)) == ("opus", None)
    assert resolved("claude-3-opus-20240229", key(2)) == ("opus", None)
    assert resolved("claude-sonnet-4-5-20250929", key(2)) == ("sonnet", None)
    assert resolved("claude-fable-5", key(2)) == ("cheap", None)  # the least specific pattern


def test_a_context_suffix_is_resolved_without_it_and_kept_as_a_window():
    assert resolved("claude-opus-4-8[1m]", key(2)) == ("opus", 1_000_000)
    assert resolved("sonnet[2m]", key(2)) == ("sonnet", 2_000_000)


def test_a_context_suffix_out_of_range_is_a_400_even_for_an_unknown_model():
    for name in ("claude-opus-4-8[999999999m]", "nowhere[0m]"):
        with pytest.raises(InvalidRequest) as caught:
            resolve(ALIASED, key(2), name)
        assert caught.value.message.startswith("model: the context-window suffix")


def test_a_pattern_of_a_model_the_tenant_may_not_use_does_not_exist_for_it():
    # claude-secret-* is more specific than claude-*, but tenant 2 may not use `secret`.
    assert resolved("claude-secret-1", key(2)) == ("cheap", None)
    assert message_of_aliased("top-secret", key(2)) == "model: unknown model `top-secret`"


def test_an_alias_outside_the_keys_list_is_answered_like_an_unknown_model():
    limited = key(2, allowed=frozenset({"sonnet"}))
    assert resolved("claude-sonnet-5", limited) == ("sonnet", None)
    for name in ("claude-opus-4-8", "claude-fable-5"):  # alias, pattern and default all out
        assert message_of_aliased(name, limited) == f"model: unknown model `{name}`"


def test_the_tenant_default_answers_only_unmatched_claude_ids():
    bare = Snapshot(version=None, models=ALIASED.models, tenant_default={2: "opus"})
    assert resolve(bare, key(2), "claude-opus-5-5")[0].name == "opus"
    assert resolve(bare, key(2), "claude-haiku-5-5[1m]") == (ALIASED.models["opus"], 1_000_000)
    with pytest.raises(NotFound):
        resolve(bare, key(2), "gpt-4o")
    with pytest.raises(NotFound):
        resolve(bare, key(1), "claude-opus-5-5")  # another tenant has no default


def test_a_default_the_tenant_may_not_use_answers_nothing():
    bare = Snapshot(
        version=None,
        models=ALIASED.models,
        tenant_models={3: frozenset({"opus"})},
        tenant_default={3: "secret"},
    )
    with pytest.raises(NotFound):
        resolve(bare, key(3), "claude-opus-5-5")


def message_of_aliased(name: str, who: KeyInfo) -> str:
    with pytest.raises(NotFound) as caught:
        resolve(ALIASED, who, name)
    return caught.value.message
