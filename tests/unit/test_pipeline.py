"""The pipeline's pure checks: the `anthropic-beta` header, model resolution, the output limit."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.keys import KeyInfo
from gateway.errors import InvalidRequest, NotFound
from gateway.pipeline import beta_flags, check_output_limit, resolve_model
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
