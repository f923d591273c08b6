"""Byte-level framing shared by the surfaces: JSON encoding, SSE frames, text splitting."""

from __future__ import annotations

from typing import Any

import msgspec

encode = msgspec.json.Encoder().encode


def data_frame(payload: Any, *, newline: bytes = b"\n") -> bytes:
    """`data: {...}` plus a blank line (OpenAI Chat, Gemini with CRLF)."""
    return b"data: " + encode(payload) + newline + newline


def event_frame(name: str, payload: Any) -> bytes:
    """`event: X\\ndata: {...}\\n\\n` (Anthropic, OpenAI Responses)."""
    return b"event: " + name.encode() + b"\ndata: " + encode(payload) + b"\n\n"


def pieces(text: str, size: int) -> list[str]:
    """`text` in consecutive slices of `size` characters; no slices for empty text."""
    return [text[start : start + size] for start in range(0, len(text), size)]


def json_fragments(arguments: str, size: int) -> list[str]:
    """Tool-argument JSON in at least two fragments when it has two characters or more."""
    half = -(-len(arguments) // 2)
    return pieces(arguments, max(1, min(size, half)))


def json_text(value: Any) -> str:
    return encode(value).decode()
