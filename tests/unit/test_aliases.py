"""providers/aliases.py: the context-window suffix, glob patterns, the checks and the index."""

import time

import pytest

from providers.aliases import (
    CACHE_SIZE,
    AliasIndex,
    SuffixError,
    glob_match,
    glob_parts,
    model_name_problem,
    name_problem,
    overlap,
    problems,
    split_context,
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("claude-opus-4-8[1m]", ("claude-opus-4-8", 1_000_000)),
        ("claude-opus-4-8[1M]", ("claude-opus-4-8", 1_000_000)),
        ("claude-sonnet-5[2m]", ("claude-sonnet-5", 2_000_000)),
        ("claude-opus-4-8", ("claude-opus-4-8", None)),
        ("claude-x[abc]", ("claude-x[abc]", None)),  # not a suffix: part of an unknown id
        ("claude-x[m]", ("claude-x[m]", None)),
        ("[1m]", ("[1m]", None)),  # nothing before the suffix
        ("claude-x[\uff11m]", ("claude-x[\uff11m]", None)),  # full-width digit: not ours
    ],
)
def test_a_context_suffix_is_split_off_the_id(name, expected):
    assert split_context(name) == expected


@pytest.mark.parametrize("name", ["claude-x[0m]", "claude-x[101m]", "claude-x[999999999m]"])
def test_a_context_suffix_out_of_range_is_refused_naming_it(name):
    with pytest.raises(SuffixError) as refused:
        split_context(name)
    assert "context-window suffix `[" in str(refused.value)
    assert "from [1m] to [100m]" in str(refused.value)


@pytest.mark.parametrize(
    "pattern, name, matches",
    [
        ("claude-sonnet-*", "claude-sonnet-4-5-20250929", True),
        ("claude-sonnet-*", "claude-sonnet-", True),  # * matches nothing too
        ("claude-sonnet-*", "claude-opus-4-8", False),
        ("claude-*-opus-*", "claude-3-opus-20240229", True),
        ("claude-*-opus-*", "claude-opus-4-8", False),
        ("*-haiku-*", "claude-haiku-5-5", True),
        ("claude-*5", "claude-5", True),
        ("claude-*5", "claude-", False),
        ("a*b*a", "aba", True),
        ("a*b*a", "ab", False),
        ("claude-opus-4-8", "claude-opus-4-8", True),
    ],
)
def test_a_star_matches_any_run_of_characters(pattern, name, matches):
    assert glob_match(glob_parts(pattern), name) is matches


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("claude-*-opus", "claude-opus-*", True),  # claude-opus-opus
        ("claude-sonnet-*", "claude-opus-*", False),
        ("*-opus-4", "claude-*-4", True),
        ("abc*", "*xyz", True),
        ("ab*cd", "ab*ce", False),
    ],
)
def test_overlap_tells_whether_one_id_can_match_both_patterns(a, b, expected):
    assert overlap(a, b) is expected and overlap(b, a) is expected


@pytest.mark.parametrize(
    "name, problem",
    [
        ("", "1 to 128 characters"),
        ("x" * 129, "1 to 128 characters"),
        ("claude sonnet", "visible ASCII"),
        ("claude-\u00e9", "visible ASCII"),
        ("claude-\x00", "visible ASCII"),
        ("claude-x[1m]", "may not contain [ or ]"),
        ("*", "would match almost every model id"),
        ("c*", "would match almost every model id"),
        ("claude-**", "write one *"),
        ("a*b*c*d*e*f", "more than 4 *"),
    ],
)
def test_a_bad_alias_is_refused_saying_why(name, problem):
    assert problem in name_problem(name)


def test_a_model_name_may_not_hold_what_resolution_reads():
    assert "[ or ]" in model_name_problem("claude-x[1m]")
    assert "may not contain *" in model_name_problem("claude-*")
    assert model_name_problem("claude-sonnet-4-5") is None


def test_an_alias_equal_to_a_model_name_is_refused():
    found = problems({"claude-a": "claude-b"}, ["claude-a", "claude-b"])
    assert found == [(("claude-a",), "alias 'claude-a' is already the name of a model")]


def test_equally_specific_overlapping_patterns_of_two_models_are_refused():
    found = problems({"claude-*-opus": "a", "claude-opus-*": "b"}, ["a", "b"])
    assert len(found) == 1
    assert found[0][0] == ("claude-*-opus", "claude-opus-*")
    assert "equally specific and can match the same id" in found[0][1]


def test_overlapping_patterns_of_one_model_or_of_different_specificity_are_fine():
    assert problems({"claude-*-opus": "a", "claude-opus-*": "a"}, ["a"]) == []
    assert problems({"claude-*": "a", "claude-opus-*": "b"}, ["a", "b"]) == []


INDEX = AliasIndex.build(
    ["opus", "sonnet", "haiku", "any"],
    {
        "claude-opus-4-8": "opus",
        "claude-*-opus-*": "opus",
        "claude-opus-*": "opus",
        "claude-sonnet-*": "sonnet",
        "claude-*haiku*": "haiku",
        "claude-*": "any",
        "gone-*": "disabled",  # its model is not enabled: left out
    },
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("claude-opus-4-8", ("opus", "any")),  # the exact alias, then patterns
        ("claude-sonnet-4-5-20250929", ("sonnet", "any")),  # the most specific pattern first
        ("claude-3-opus-20240229", ("opus", "any")),
        ("claude-haiku-5-5", ("haiku", "any")),
        ("claude-fable-5", ("any",)),
        ("gpt-4o", ()),
        ("gone-1", ()),
        ("claude-" + "x" * 200, ()),  # longer than any configured id: no scan
    ],
)
def test_candidates_come_exact_alias_first_then_patterns_most_specific_first(name, expected):
    assert INDEX.candidates(name) == expected


def test_the_resolution_cache_is_bounded():
    index = AliasIndex.build(["any"], {"claude-*": "any"})
    for i in range(CACHE_SIZE + 10):
        index.candidates(f"claude-{i}")
    assert len(index.cache) <= CACHE_SIZE


def test_a_model_lists_its_aliases_and_patterns():
    assert INDEX.of("opus") == ("claude-*-opus-*", "claude-opus-*", "claude-opus-4-8")
    assert INDEX.of("nothing") == ()


def test_a_cache_miss_over_500_patterns_stays_well_under_a_millisecond():
    patterns = {f"vendor{i}-*-model-{i}-*": f"m{i}" for i in range(500)}
    index = AliasIndex.build([f"m{i}" for i in range(500)], patterns)
    began = time.perf_counter()
    for i in range(200):
        index.candidates(f"claude-unknown-{i}")  # every pattern tried, none matches
    per_miss = (time.perf_counter() - began) / 200
    assert per_miss < 0.001, per_miss
