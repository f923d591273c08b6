"""What the `/v1/messages` consumer counts of a stream it forwards byte for byte."""

import msgspec
import pytest

from protocols.anthropic.stream import delta_chars


def frame(delta: dict, index: int = 0) -> bytes:
    """A `content_block_delta` as the Anthropic adapter forwards it."""
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return b"event: content_block_delta\ndata: " + msgspec.json.encode(payload) + b"\n\n"


@pytest.mark.parametrize(
    ("delta", "chars"),
    [
        ({"type": "text_delta", "text": "Hello, world"}, 12),
        ({"type": "thinking_delta", "thinking": "Let me see"}, 10),
        ({"type": "input_json_delta", "partial_json": '{"city": "Par'}, 13),
        ({"type": "text_delta", "text": ""}, 0),
    ],
)
def test_a_forwarded_delta_counts_the_characters_of_its_text(delta, chars):
    assert delta_chars(frame(delta, index=12)) == chars


def test_escapes_and_non_ascii_count_as_the_characters_they_stand_for():
    escaped = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    escaped += b'"delta":{"type":"text_delta","text":"\\u00e9t\\u00e9\\n\\"ok\\""}}\n\n'

    assert delta_chars(escaped) == 8  # été, a newline and "ok" in quotes
    assert delta_chars(frame({"type": "text_delta", "text": "日本語 🎉"})) == 5


def test_a_signature_is_not_output():
    signature = {"type": "signature_delta", "signature": "EqQBCgIYAhIM" * 40}

    assert delta_chars(frame(signature)) == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"event: content_block_delta\ndata: not json\n\n",
        b"event: content_block_delta\n\n",
        b'event: content_block_delta\ndata: {"delta": 5}\n\n',
        b'event: content_block_delta\ndata: {"delta": {"text": 12}}\n\n',
    ],
)
def test_an_unreadable_delta_counts_nothing_rather_than_failing(garbage):
    assert delta_chars(garbage) == 0
