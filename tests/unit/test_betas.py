"""Beta flags: merged from header and body, bounded, filtered per provider.

(protocols/anthropic/betas.py)
"""

import pytest

from core.errors import InvalidRequest
from protocols.anthropic import betas


def test_header_and_body_are_merged_in_order_each_once():
    merged = betas.merge(b"a-1, b-2,,a-1", ["b-2", "c-3"])
    assert merged == ["a-1", "b-2", "c-3"]


@pytest.mark.parametrize(
    ("header", "body"),
    [
        (b"bad beta", None),  # a space inside a name
        (b"x" * (betas.MAX_FLAG_CHARS + 1), None),
        (",".join(f"b{i}" for i in range(betas.MAX_FLAGS + 1)).encode(), None),
        (b"\xff\xfe", None),
        (None, "context-1m-2025-08-07"),  # not a list
        (None, [1, 2]),
        (None, ["ok", "not ok"]),
    ],
    ids=["space", "too-long", "too-many", "not-ascii", "body-string", "body-ints", "body-space"],
)
def test_garbage_is_a_clear_400(header, body):
    with pytest.raises(InvalidRequest) as caught:
        betas.merge(header, body)
    assert caught.value.status == 400 and "beta" in caught.value.message


def test_a_huge_header_of_repeats_is_one_flag():
    assert betas.merge(b",".join([b"same-1"] * 5000), None) == ["same-1"]


@pytest.mark.parametrize(
    ("mode", "names", "kept"),
    [
        ("forward", [], ["context-1m-2025-08-07", "x-1"]),
        ("allow", ["context-1m-*"], ["context-1m-2025-08-07"]),
        ("allow", [], []),
        ("deny", ["context-1m-*"], ["x-1"]),
        ("deny", ["x-1"], ["context-1m-2025-08-07"]),
    ],
)
def test_a_providers_policy_decides_what_it_gets(mode, names, kept):
    flags = ["context-1m-2025-08-07", "x-1"]
    assert betas.forwarded(flags, mode, names) == (kept, [f for f in flags if f not in kept])


def test_claude_codes_betas_are_all_known_and_others_are_not():
    claude_code = [
        "claude-code-20250219",
        "oauth-2025-04-20",
        "interleaved-thinking-2025-05-14",
        "fine-grained-tool-streaming-2025-05-14",
        "context-management-2025-06-27",
        "context-1m-2025-08-07",
        "prompt-caching-2024-07-31",
        "token-counting-2024-11-01",
    ]
    assert betas.unknown(claude_code) == []
    assert betas.unknown(["made-up-2026-01-01", *claude_code]) == ["made-up-2026-01-01"]


def test_context_1m_asks_for_a_million_tokens():
    assert betas.long_context(["x", "context-1m-2025-08-07"]) == 1_000_000
    assert betas.long_context(["x"]) is None


def test_provider_lists_are_checked():
    assert betas.names_problem(["context-1m-*", "a"]) is None
    assert betas.names_problem("context-1m-*") is not None
    assert betas.names_problem(["has space"]) is not None
    assert betas.names_problem(["a"] * (betas.MAX_FLAGS + 1)) is not None
