"""Billing: each kind of token at its own price, Decimal to the nano-dollar, the policy table."""

from dataclasses import dataclass
from decimal import Decimal

import pytest

from core import ir
from gateway.usage import billing
from providers.routing import Prices

PRICES = Prices(
    input=Decimal("3"), output=Decimal("15"), cache_read=Decimal("0.3"), cache_write=Decimal("3.75")
)
POLICY = {
    "client_disconnect": "generated",
    "upstream_error_after_first_byte": "generated",
    "upstream_error": "generated",
    "upstream_client_error": "none",
    "chars_per_token": 4,
}


@dataclass(frozen=True)
class PricesWithReasoning:
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    reasoning: Decimal | None


def test_each_kind_of_token_is_billed_at_its_own_price():
    usage = ir.Usage(
        input_tokens=1000,
        output_tokens=300,
        cache_read_input_tokens=2000,
        cache_creation_input_tokens=500,
        reasoning_tokens=100,
    )

    cost = billing.cost_usd(usage, PRICES)

    # 1000*3 + 2000*0.3 + 500*3.75 + 300*15 (reasoning at the output price) per million tokens
    assert cost == Decimal("0.009975000")
    assert isinstance(cost, Decimal)


def test_reasoning_tokens_use_the_model_price_when_it_has_one():
    prices = PricesWithReasoning(
        Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"), Decimal("60")
    )
    usage = ir.Usage(output_tokens=300, reasoning_tokens=100)

    # 200 visible output tokens at 15, 100 reasoning tokens at 60
    assert billing.cost_usd(usage, prices) == Decimal("0.009000000")


def test_cost_is_quantized_to_the_nano_dollar_without_floats():
    tiny = Prices(Decimal("0.000001"), Decimal("0.000001"), Decimal(0), Decimal(0))

    assert billing.cost_usd(ir.Usage(input_tokens=1), tiny) == Decimal("0E-9")
    assert billing.cost_usd(ir.Usage(input_tokens=500), tiny) == Decimal("0.000000001")  # half up
    assert billing.cost_usd(ir.Usage(input_tokens=7, output_tokens=3), PRICES) == Decimal(
        "0.000066000"
    )


def test_worst_case_prices_the_prompt_as_cache_writes_plus_every_token_max_tokens_allows():
    # 1,000 prompt tokens at the 1-hour cache write price (2 x $3 input, dearer than the
    # 5-minute $3.75) + 2,000 at $15.
    assert billing.worst_case_usd(1000, 2000, PRICES) == Decimal("0.036000000")


def test_cache_writes_are_billed_by_ttl_as_anthropic_bills_them():
    """5-minute writes at the model's cache_write price (1.25x input), 1-hour writes at 2x
    input unless the model has a price of its own; reads at cache_read (0.1x)."""
    usage = ir.Usage(
        input_tokens=1000,
        cache_creation_input_tokens=3000,
        cache_creation_1h_input_tokens=1000,
        cache_read_input_tokens=10000,
    )
    # 1000 x 3 + 2000 x 3.75 + 1000 x 6 + 10000 x 0.3 = 3000 + 7500 + 6000 + 3000
    assert billing.cost_usd(usage, PRICES) == Decimal("0.019500000")
    own = Prices(
        input=Decimal("3"),
        output=Decimal("15"),
        cache_read=Decimal("0.3"),
        cache_write=Decimal("3.75"),
        cache_write_1h=Decimal("5"),
    )
    assert billing.cost_usd(usage, own) == Decimal("0.018500000")


def test_a_1h_split_larger_than_the_writes_never_bills_negative_5m_writes():
    usage = ir.Usage(cache_creation_input_tokens=100, cache_creation_1h_input_tokens=10**9)
    assert billing.cost_usd(usage, PRICES) == Decimal("0.000600000")  # 100 x $6


def test_nano_dollars_are_exact_integers():
    assert billing.nano(Decimal("12.345678901")) == 12_345_678_901
    assert billing.nano(Decimal("0.000000001")) == 1


@pytest.mark.parametrize(
    ("outcome", "billed"),
    [
        ("ok", True),
        ("client_disconnect", True),
        ("upstream_error_after_first_byte", True),
        ("upstream_error", True),
        ("upstream_client_error", False),
        ("gateway_rejection", False),
    ],
)
def test_default_policy(outcome, billed):
    assert billing.is_billed(outcome, POLICY) is billed


def test_policy_can_stop_billing_disconnects_but_never_bills_rejections():
    policy = {**POLICY, "client_disconnect": "none", "gateway_rejection": "generated"}

    assert not billing.is_billed("client_disconnect", policy)
    assert not billing.is_billed("gateway_rejection", policy)


def test_output_is_estimated_from_streamed_characters_rounding_up():
    assert billing.estimate_output_tokens(0, 4) == 0
    assert billing.estimate_output_tokens(1, 4) == 1
    assert billing.estimate_output_tokens(41, 4) == 11


def test_web_searches_are_billed_at_the_models_price_per_thousand():
    prices = Prices(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"), Decimal(10))
    usage = ir.Usage(input_tokens=1_000_000, web_search_requests=3)
    assert billing.cost_usd(usage, prices) == Decimal("3.03")
    no_search_price = Prices(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"))
    assert billing.cost_usd(usage, no_search_price) == Decimal(3)


def test_the_pricing_extra_has_a_web_search_line_only_when_the_provider_searched():
    from gateway.extras import pricing

    prices = Prices(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"), Decimal(10))
    searched = pricing(ir.Usage(web_search_requests=2), prices)
    assert searched["lines"][-1] == {
        "meter": "web_search",
        "quantity": 2,
        "unit_price_per_1k_usd": "10",
        "cost_usd": "0.02",
    }
    assert searched["cost_usd"] == "0.02"
    assert "web_search" not in [line["meter"] for line in pricing(ir.Usage(), prices)["lines"]]
