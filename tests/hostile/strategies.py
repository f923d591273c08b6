"""Hypothesis strategies for request bodies, generated from the msgspec Structs that validate them.

Three tiers, as the hostile suite asks: `valid` bodies follow the schema (with content blocks
from the decoder's own vocabulary, since the schema keeps blocks loose), `almost_valid` bodies
are a valid one with one thing wrong (a field missing, of the wrong type, at the edge of its
range, a string the database cannot hold, bytes that are not UTF-8, a number JSON cannot
carry, nesting no parser should follow), and `garbage` is anything at all.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082"
    )
).decode()


def for_type(t: mi.Type, overrides: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """A strategy for values of one msgspec type (constraints honoured)."""
    if isinstance(t, mi.StructType):
        return for_struct(t, overrides)
    if isinstance(t, mi.UnionType):
        return st.one_of([for_type(u, overrides) for u in t.types])
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**31))
        return st.integers(min_value=low, max_value=low + 4096)
    if isinstance(t, mi.FloatType):
        return st.floats(min_value=t.ge, max_value=t.le, allow_nan=False, allow_infinity=False)
    if isinstance(t, mi.StrType):
        return st.text(min_size=t.min_length or 0, max_size=t.max_length or 30)
    if isinstance(t, mi.ListType):
        return st.lists(for_type(t.item_type, overrides), min_size=t.min_length or 0, max_size=3)
    if isinstance(t, mi.DictType):
        return st.dictionaries(st.text(max_size=10), for_type(t.value_type, overrides), max_size=3)
    return JSON_VALUES  # Any


def for_struct(t: mi.StructType, overrides: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Required fields always, optional ones sometimes; `overrides` replaces a field's strategy
    by name (for the few values the schema cannot narrow, such as which models exist)."""
    required = {
        f.encode_name: overrides[f.name] if f.name in overrides else for_type(f.type, overrides)
        for f in t.fields
        if f.required
    }
    optional = {
        f.encode_name: overrides[f.name] if f.name in overrides else for_type(f.type, overrides)
        for f in t.fields
        if not f.required
    }
    return st.fixed_dictionaries(required, optional=optional)


# --- Content blocks the decoder knows (protocols/anthropic/decode.py) --------------------
def _blocks() -> st.SearchStrategy:
    text = st.builds(lambda t: {"type": "text", "text": t}, TEXT)
    image = st.just(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    )
    document = st.builds(
        lambda t: {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": t},
        },
        TEXT,
    )
    return st.one_of(text, text, image, document)


def _turns() -> st.SearchStrategy:
    """Alternating user/assistant turns ending with the user; sometimes a tool call and its
    result, paired as Anthropic requires."""
    user = st.one_of(TEXT, st.lists(_blocks(), min_size=1, max_size=3))
    plain = st.lists(user, min_size=1, max_size=3).map(
        lambda contents: [
            {"role": "user" if i % 2 == 0 else "assistant", "content": c}
            for i, c in enumerate(contents + ([contents[0]] if len(contents) % 2 == 0 else []))
        ]
    )
    tool_round = st.builds(
        lambda q, answer: [
            {"role": "user", "content": q},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_01", "name": "lookup", "input": {"q": q}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": answer}],
            },
        ],
        TEXT,
        TEXT,
    )
    return st.one_of(plain, plain, tool_round)


TOOLS = st.just(
    [{"name": "lookup", "description": "Look it up", "input_schema": {"type": "object"}}]
)


def valid(schema: type[msgspec.Struct], models: list[str]) -> st.SearchStrategy[dict]:
    """Bodies the schema accepts, for models that exist, cheap to answer."""
    overrides = {
        "model": st.sampled_from(models),
        "max_tokens": st.integers(min_value=1, max_value=64),
        "messages": _turns(),
        "tools": TOOLS,
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]),
        "thinking": st.none(),
        "debug": st.none(),
        "provider": st.none(),
        "stop_sequences": st.lists(st.text(min_size=1, max_size=5), max_size=2),
        "system": st.one_of(st.none(), TEXT),
    }
    return for_struct(mi.type_info(schema), overrides)


# --- One thing wrong --------------------------------------------------------------------------
EDGE_VALUES = st.sampled_from(
    [0, -1, 2**31, 2**63, 10**30, -(10**30), 1.5, "", "x" * 70_000, [], {}, None, True, [[[]]]]
)
HOSTILE_TEXT = st.sampled_from(["oa-echo\x00", "\ud800", "\udfff tail", "a\x00b", "\u202e", "\x7f"])


def _edited(body: dict, path: list, value: Any) -> dict:
    copy = json.loads(json.dumps(body))
    node = copy
    for step in path[:-1]:
        node = node[step]
    if value is _DELETE:
        if isinstance(node, dict):
            node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return copy


_DELETE = object()


def _paths(value: Any, prefix: list) -> list[list]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            paths += _paths(v, [*prefix, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            paths += _paths(v, [*prefix, i])
    return paths


def _one_edit(body: dict, data: st.DataObject) -> bytes:
    path = data.draw(st.sampled_from(_paths(body, [])), label="path")
    value = data.draw(
        st.one_of(st.just(_DELETE), EDGE_VALUES, HOSTILE_TEXT, JSON_VALUES), label="value"
    )
    return json.dumps(_edited(body, path, value)).encode()


RAW_TAMPERING = [
    # (what it is, a function of the valid body's bytes)
    ("a number JSON floats cannot hold", lambda raw: raw[:-1] + b', "extra": 1e400}'),
    ("a negative one too", lambda raw: raw[:-1] + b', "max_tokens_x": -1e400}'),
    (
        "invalid UTF-8 in a string",
        lambda raw: raw.replace(b'"content": "', b'"content": "\xff\xfe', 1),
    ),
    ("a lone surrogate escape", lambda raw: raw[:-1] + b', "metadata": {"user_id": "\\ud800"}}'),
    ("nesting 1,000 deep", lambda raw: raw[:-1] + b', "deep": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
    (
        "nesting 100,000 deep",
        lambda raw: raw[:-1] + b', "deep": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    ),
    ("a NUL byte outside strings", lambda raw: raw.replace(b",", b",\x00", 1)),
    ("a duplicated key", lambda raw: raw[:-1] + b', "model": "claude-x", "model": 7}'),
    ("truncated", lambda raw: raw[: len(raw) // 2]),
    ("a UTF-8 BOM", lambda raw: b"\xef\xbb\xbf" + raw),
]


@st.composite
def almost_valid(draw, schema: type[msgspec.Struct], models: list[str]) -> bytes:
    body = draw(valid(schema, models))
    if draw(st.booleans()):
        _, tamper = draw(st.sampled_from(RAW_TAMPERING))
        return tamper(json.dumps(body).encode())
    return _one_edit(body, draw(st.data()))


garbage = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)

HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "anthropic-beta": st.sampled_from(
            ["interleaved-thinking-2025-05-14", "ünïcode", "a,,b,", "x" * 5000, "tab\there"]
        ),
        "x-tollgate-strictness": st.sampled_from(["error", "warn", "off", "nonsense", "ÉRROR"]),
        "anthropic-version": st.sampled_from(["2023-06-01", "garbage", "ü"]),
    },
)
