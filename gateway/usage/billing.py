"""The billing policy: which outcomes are charged, and what their tokens cost.

Every request ends in one outcome. `ok` is always billed; the hard cases follow
`settings.TOLLGATE_BILLING` ("generated": bill the tokens used so far; "none": bill nothing),
the same way for streamed and non-streamed requests. Money is Decimal, never float: USD per
million tokens times tokens, quantized to 1e-9 (the database column's precision).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Protocol

from core import ir

Outcome = Literal[
    "ok",
    "client_disconnect",  # the client went away (mid-stream, or before the answer)
    "upstream_error_after_first_byte",  # the stream broke after the client got bytes
    "upstream_error",  # 5xx, timeout, overload or unreachable before any byte
    "upstream_client_error",  # the upstream refused the request content (4xx)
    "gateway_rejection",  # auth, validation, policy, rate limit, budget
]

MTOK = Decimal(1_000_000)
KSEARCH = Decimal(1000)  # web searches are priced per thousand
QUANTUM = Decimal("0.000000001")
NANO = Decimal(1_000_000_000)


class Prices(Protocol):
    """USD per million tokens (`providers.routing.Prices`); `reasoning` is optional."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal  # a 5-minute cache write
    cache_write_1h: Decimal | None  # a 1-hour cache write; None: see `hour_price`


def is_billed(outcome: Outcome, policy: dict) -> bool:
    if outcome == "ok":
        return True
    if outcome == "gateway_rejection":
        return False  # never: the request never reached a model
    return policy[outcome] == "generated"


def reasoning_price(prices: Prices) -> Decimal:
    """Reasoning tokens cost the output price unless the model has a price of its own."""
    own = getattr(prices, "reasoning", None)
    return prices.output if own is None else own


def search_price(prices: Prices) -> Decimal:
    """USD per 1,000 web searches (0 for prices without one)."""
    return getattr(prices, "web_search", None) or Decimal(0)


# A 1-hour cache write without a price of its own costs twice the input price, as Anthropic
# bills it (a 5-minute write is 1.25x, a read 0.1x: the model's `cache_write`/`cache_read`).
CACHE_WRITE_1H_FACTOR = Decimal(2)


def hour_price(prices: Prices) -> Decimal:
    own = getattr(prices, "cache_write_1h", None)
    return prices.input * CACHE_WRITE_1H_FACTOR if own is None else own


def hour_writes(usage: ir.Usage) -> int:
    """Of the cache writes, those with a 1-hour TTL (never more than all of them)."""
    return min(usage.cache_creation_1h_input_tokens or 0, usage.cache_creation_input_tokens)


def cost_parts(usage: ir.Usage, prices: Prices) -> dict[str, Decimal]:
    """What each kind of token cost, in USD, unrounded: cache writes by TTL as Anthropic bills
    them, and the web searches the provider ran at the model's per-search price.
    `output_tokens` includes reasoning tokens, priced apart."""
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    hour = hour_writes(usage)
    return {
        "input": usage.input_tokens * prices.input / MTOK,
        "cache_read": usage.cache_read_input_tokens * prices.cache_read / MTOK,
        "cache_write": (usage.cache_creation_input_tokens - hour) * prices.cache_write / MTOK,
        "cache_write_1h": hour * hour_price(prices) / MTOK,
        "output": (usage.output_tokens - reasoning) * prices.output / MTOK,
        "reasoning": reasoning * reasoning_price(prices) / MTOK,
        "web_search": (usage.web_search_requests or 0) * search_price(prices) / KSEARCH,
    }


def cost_usd(usage: ir.Usage, prices: Prices, parts: dict[str, Decimal] | None = None) -> Decimal:
    """The sum of `cost_parts` (exact: prices have six decimals, and divisions by 10**6 and
    10**3 are exact in Decimal), rounded once."""
    total = sum((parts or cost_parts(usage, prices)).values(), Decimal(0))
    return total.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def worst_case_usd(input_tokens: int, max_tokens: int, prices: Prices) -> Decimal:
    """What a request may cost at most: its prompt (an upper bound of its tokens), each token at
    the dearest input price (a cache write costs more than plain input), and every token it
    may generate at the dearest output price."""
    output = max(prices.output, reasoning_price(prices))
    dearest_input = max(prices.input, prices.cache_write, hour_price(prices), prices.cache_read)
    total = input_tokens * dearest_input + max_tokens * output
    return (total / MTOK).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def nano(amount: Decimal) -> int:
    """USD as integer nano-dollars, the unit budgets are counted in (exact in Redis)."""
    return int((amount * NANO).to_integral_value(rounding=ROUND_HALF_UP))


def estimate_output_tokens(chars: int, chars_per_token: int) -> int:
    """Tokens of a reply we only saw the characters of (its usage never arrived)."""
    return -(-chars // max(1, chars_per_token)) if chars > 0 else 0
