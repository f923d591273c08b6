"""The pipeline's pure checks: the `anthropic-beta` header and the output limit."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.errors import InvalidRequest
from gateway.pipeline import beta_flags, check_output_limit
from providers.routing import ModelEntry, Prices


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
