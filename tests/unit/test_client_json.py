"""The one safe decode of client JSON: every bad body is an InvalidRequest naming the spot."""

import json

import pytest

from core import client_json
from core.client_json import MAX_DEPTH, WALK_BUDGET, decode, decode_object, nests_deeper_than
from core.errors import InvalidRequest


def error_of(body: bytes) -> str:
    with pytest.raises(InvalidRequest) as caught:
        decode(body)
    return caught.value.message


def nested(depth: int, *, wide: int = 0) -> bytes:
    """An object whose deepest value sits inside `depth` containers; `wide` siblings first."""
    siblings = ",".join(f'"s{i}":[{i}]' for i in range(wide))
    inner = b"[" * (depth - 1) + b"1" + b"]" * (depth - 1)
    return b"{" + siblings.encode() + (b"," if wide else b"") + b'"deep":' + inner + b"}"


def test_a_body_within_the_depth_limit_decodes():
    assert decode(nested(MAX_DEPTH))["deep"] is not None


def test_one_level_past_the_limit_is_refused():
    assert error_of(nested(MAX_DEPTH + 1)) == (
        f"Request body nests arrays and objects deeper than {MAX_DEPTH} levels"
    )


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_nesting_that_exhausts_the_stack_is_a_400_not_a_recursion_error(depth):
    assert "deeper than" in error_of(b"[" * depth + b"]" * depth)


def test_a_body_of_many_containers_is_measured_on_its_bytes_with_the_same_limit():
    wide = WALK_BUDGET + 10  # past the walk's budget: the byte measure decides
    assert decode(nested(MAX_DEPTH, wide=wide))["deep"] is not None
    assert "deeper than" in error_of(nested(MAX_DEPTH + 1, wide=wide))


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_walk_and_byte_measure_agree_on_every_shape(limit, monkeypatch):
    shapes = [{}, [], {"a": 1}, {"a": []}, {"a": [[]]}, {"a": [1]}, [[[]]], [[1]], {"a": {"b": 1}}]
    walked = [nests_deeper_than(s, json.dumps(s).encode(), limit) for s in shapes]
    monkeypatch.setattr(client_json, "WALK_BUDGET", -1)
    measured = [nests_deeper_than(s, json.dumps(s).encode(), limit) for s in shapes]
    assert walked == measured
    assert walked[:3] == [False, False, False]


def test_invalid_utf8_in_a_string_names_the_field():
    body = b'{"model":"m","messages":[{"role":"user","content":"caf\xe9"}]}'
    assert error_of(body) == "messages.0.content: invalid UTF-8 in a string"


def test_invalid_utf8_in_a_key_names_its_object():
    assert error_of(b'{"meta":{"caf\xe9":1}}') == "meta: invalid UTF-8 in a string"


def test_a_number_beyond_the_float_range_is_refused_naming_the_field():
    assert error_of(b'{"model":"m","zz":1e400}') == "zz: Number out of range"
    assert error_of(b'{"a":{"b":[0,-1e400]}}') == "a.b.1: Number out of range"


def test_an_integer_of_thousands_of_digits_is_refused():
    assert error_of(b'{"n":' + b"9" * 5000 + b"}").startswith("n: Integer value out of range")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_literals_are_not_json(literal):
    assert error_of(b'{"t":' + literal + b"}").startswith("Request body is not valid JSON")


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest) as caught:
        decode_object(b"[1]")
    assert caught.value.message == "Request body must be a JSON object"


def test_locating_costs_a_bounded_amount_of_work():
    # The failing value hides under 60 levels, each with a large sibling that decodes fine.
    big = b'"' + b"x" * 10_000 + b'"'
    body = b"[" + big + b","
    for _ in range(60):
        body += b"[" + big + b","
    body += b"1e400" + b"]" * 61
    calls = []

    def fails(raw) -> bool:
        calls.append(len(raw))
        return client_json._fails(raw)

    client_json.locate(body, fails)
    assert sum(calls) <= 3 * len(body)


@pytest.mark.parametrize("escape", [rb'"\ud800"', rb'"a\udc00b"', rb'"\ud800\u0041"'])
def test_a_lone_surrogate_escape_is_refused_so_every_string_encodes_back(escape):
    assert error_of(b'{"t":' + escape + b"}").startswith("Request body is not valid JSON")
    assert decode(rb'{"t":"\ud83d\ude00"}')["t"].encode() == "😀".encode()
