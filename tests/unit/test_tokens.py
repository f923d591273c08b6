"""Input-token estimates: exact for short prompts, bounded work and close figures for long ones."""

from __future__ import annotations

import random

import pytest

from gateway import ir, tokens

WORDS = [
    "the",
    "gateway",
    "routes",
    "every",
    "request",
    "to",
    "a",
    "provider",
    "and",
    "translates",
    "the",
    "answer",
    "back;",
    "def",
    "handler(request):",
    "return",
    "json.dumps({'status':",
    "200,",
    "'items':",
    "[1,",
    "2,",
    "3]})",
    "Tollgate",
    "Anthropic",
    "OpenAI",
    "Gemini",
    "streaming",
    "tokens",
    "latency",
    "budget",
    "tenant",
    "42",
    "7.5%",
]


def prose(chars: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(chars // 4))[:chars]


def request(*texts: str, **extra) -> ir.Request:
    return ir.Request(
        model="m",
        max_tokens=10,
        messages=[ir.Message(role="user", content=[ir.Text(t) for t in texts])],
        **extra,
    )


@pytest.fixture
def tokenised(monkeypatch) -> list[int]:
    """Characters handed to the tokenizer, call by call."""
    encoding = tokens.encoding()
    real = encoding.encode_ordinary
    seen: list[int] = []

    def counting(text: str):
        seen.append(len(text))
        return real(text)

    monkeypatch.setattr(encoding, "encode_ordinary", counting)
    return seen


def test_a_short_prompt_is_counted_exactly():
    text = prose(3_000, seed=1)
    exact = tokens.estimate_input_tokens(request(text), exact=True)
    assert tokens.estimate_input_tokens(request(text)) == exact
    assert exact == len(tokens.encoding().encode_ordinary(text)) + tokens.MESSAGE_OVERHEAD


def test_a_long_prompt_tokenises_a_bounded_sample_and_lands_close(tokenised):
    parts = [prose(20_000, seed=n) for n in range(10)]  # 200 KB, an agent's usual prompt
    estimate = tokens.estimate_input_tokens(request(*parts))
    assert sum(tokenised) <= tokens.SAMPLE_CHARS
    tokenised.clear()
    exact = tokens.estimate_input_tokens(request(*parts), exact=True)
    assert sum(tokenised) == sum(map(len, parts))
    assert abs(estimate - exact) / exact < 0.05


def test_fixed_costs_are_kept_whichever_way_text_is_counted():
    image = ir.Image(media_type="image/png", data="aGk=")
    long = prose(50_000, seed=3)
    message = ir.Message(role="user", content=[image, ir.Text(long)])
    short_message = ir.Message(role="user", content=[image])
    for exact in (False, True):
        with_text = tokens.estimate_input_tokens(
            ir.Request(model="m", max_tokens=1, messages=[message]), exact=exact
        )
        only_image = tokens.estimate_input_tokens(
            ir.Request(model="m", max_tokens=1, messages=[short_message]), exact=exact
        )
        assert only_image == tokens.IMAGE_TOKENS + tokens.MESSAGE_OVERHEAD
        assert with_text > only_image + len(long) // 10


def test_system_and_tools_count_too():
    tool = ir.Tool(name="get_weather", input_schema={"type": "object"}, description="Weather.")
    bare = tokens.estimate_input_tokens(request("hi"))
    richer = tokens.estimate_input_tokens(
        request("hi", system=[ir.Text("You are terse.")], tools=[tool])
    )
    assert richer > bare + 5
