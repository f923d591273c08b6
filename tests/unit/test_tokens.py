"""Input-token estimates: exact for short prompts, bounded work and close figures for long ones."""

from __future__ import annotations

import base64
import random

import msgspec
import pytest

from core import ir, tokens
from protocols.anthropic.decode import decode_messages, to_ir
from tests.prompts import crafted_prompt

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


# --- The upper bound reservations are made with ------------------------------------------------


def wire(body: dict) -> ir.Request:
    """A request as the pipeline builds it: decoded, with the body it came from."""
    raw = msgspec.json.encode({"model": "m", "max_tokens": 10, **body})
    built = to_ir(decode_messages(raw))
    built.raw = raw
    return built


def test_a_prompt_crafted_around_the_sample_points_fools_the_estimate_but_not_the_bound():
    text = crafted_prompt()
    request = wire({"messages": [{"role": "user", "content": text}]})

    exact = tokens.estimate_input_tokens(request, exact=True)
    assert tokens.estimate_input_tokens(request) < exact / 10  # what admission used to reserve
    assert exact <= tokens.input_bound(request) == len(request.raw)


@pytest.mark.parametrize(
    "text",
    [
        "日本語のテキストと絵文字 🎉🚀 " * 300,  # 3 to 4 bytes a character
        "".join(chr(c) for c in range(0x100, 0x2000)),  # every character its own token or two
        '\\"\n\t' * 2_000,  # escapes: more bytes in JSON than in the text
        prose(30_000, seed=4),
    ],
)
def test_the_bound_is_never_below_the_exact_count(text):
    request = wire(
        {
            "system": text[:500],
            "messages": [
                {"role": "user", "content": text},
                {"role": "assistant", "content": [{"type": "text", "text": text[:100]}]},
                {"role": "user", "content": "again"},
            ],
        }
    )

    assert tokens.input_bound(request) >= tokens.estimate_input_tokens(request, exact=True)


def test_an_image_counts_its_bound_instead_of_its_base64_bytes():
    data = base64.b64encode(bytes(300_000)).decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    content = [image, image, {"type": "text", "text": "what is this?"}]
    request = wire({"messages": [{"role": "user", "content": content}]})

    assert 2 * tokens.IMAGE_BOUND < tokens.input_bound(request) < 2 * tokens.IMAGE_BOUND + 300


def test_a_pdf_by_url_counts_the_most_a_pdf_can_take():
    pdf = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    request = wire(
        {"messages": [{"role": "user", "content": [pdf, {"type": "text", "text": "?"}]}]}
    )

    assert tokens.input_bound(request) >= tokens.PDF_BOUND


def test_tools_add_the_providers_tool_prompt_and_server_tools_their_definitions():
    ask = {"messages": [{"role": "user", "content": "hi"}]}
    tool = {"name": "get_weather", "input_schema": {"type": "object"}}
    server = {"type": "web_search_20250305", "name": "web_search"}

    bare = tokens.input_bound(wire(ask))
    with_tool = tokens.input_bound(wire({**ask, "tools": [tool]}))
    with_server = tokens.input_bound(wire({**ask, "tools": [tool, server]}))

    assert with_tool >= bare + tokens.TOOLS_PROMPT_BOUND + len(msgspec.json.encode(tool))
    assert with_server >= with_tool + tokens.SERVER_TOOL_BOUND


def test_without_the_body_the_bound_comes_from_the_request_itself():
    request = wire({"messages": [{"role": "user", "content": prose(5_000, seed=5)}]})
    bare = msgspec.structs.replace(request, raw=b"")

    assert tokens.input_bound(bare) >= tokens.estimate_input_tokens(bare, exact=True)


def test_the_bound_costs_no_tokenising(tokenised):
    tokens.input_bound(wire({"messages": [{"role": "user", "content": prose(200_000, seed=6)}]}))

    assert tokenised == []
