"""Prompts a hostile tenant would send to make the gateway under-count a request."""

from __future__ import annotations

import random
import string

from core import tokens


def crafted_prompt(chars: int = 64_000) -> str:
    """Cheap text (a run of dashes, ~65 characters a token) exactly where the sampled estimate
    looks (SAMPLES evenly spaced slices of SAMPLE_CHARS / SAMPLES characters), dense text (about
    1.4 characters a token) everywhere else: sampled, it looks thirty times smaller than it is."""
    rng = random.Random(7)
    step, size = chars // tokens.SAMPLES, tokens.SAMPLE_CHARS // tokens.SAMPLES
    dense = "".join(rng.choice(string.ascii_letters + string.punctuation) for _ in range(chars))
    pieces = []
    for i in range(tokens.SAMPLES):
        pieces += ["-" * size, dense[i * step + size : (i + 1) * step]]
    return "".join(pieces)
