"""The one way JSON sent by a client is decoded: a bad body is an `InvalidRequest`, never a 500.

Three things get past `msgspec.DecodeError` on hostile bodies: nesting near the interpreter's
recursion limit (`RecursionError`), invalid UTF-8 inside a string (`UnicodeDecodeError`), and,
with a typed decoder, whatever it skips: an unknown field's `1e400` or bad UTF-8 is never looked
at, then fails later where only a 500 is left (re-decoding the body for a pass-through upstream).
So a client body is decoded here, once, untyped and whole; typed views are converted from that
value. Refused, with the JSON path of the value where it can be found:

- invalid JSON, invalid UTF-8 anywhere (RFC 8259: JSON text is UTF-8) and lone surrogate
  escapes (`"\\ud800"`, refused by msgspec), so every decoded string encodes back to UTF-8;
- numbers outside the float range (`1e400`, which would become infinity) and integers of more
  than 4,300 digits: a strict JSON API has no non-finite numbers;
- nesting deeper than MAX_DEPTH arrays and objects, so no later recursive step (an encoder, a
  schema converter) can exhaust the stack on a body that was accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from core.errors import InvalidRequest

# Deeper than any real request (tool schemas nest a dozen levels), far below the stack's limit.
MAX_DEPTH = 128
# Past this many items a body is measured on its bytes instead (see `nests_deeper_than`).
WALK_BUDGET = 256
# Bodies up to this size count their brackets first: at most MAX_DEPTH of them, no walk at all.
_COUNTED_BELOW = 8192
_INDENT_PAST_MAX = b"\n" + b" " * (MAX_DEPTH + 1)  # a value inside more than MAX_DEPTH levels

_decoder = msgspec.json.Decoder()
_node = msgspec.json.Decoder(dict[str, msgspec.Raw] | list[msgspec.Raw])
_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")
_UNDECODABLE = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)


def decode(body: bytes) -> Any:
    """The JSON value of `body`, or InvalidRequest saying what is wrong and where."""
    try:
        value = _decoder.decode(body)
    except RecursionError:
        raise _too_deep() from None
    except UnicodeDecodeError:
        raise _located(body, "invalid UTF-8 in a string") from None
    except msgspec.ValidationError as err:  # out-of-range numbers: the only untyped failure
        raise _located(body, _strip_path(str(err))) from None
    except msgspec.DecodeError as err:
        raise InvalidRequest(f"Request body is not valid JSON: {err}") from None
    container = type(value) is dict or type(value) is list
    if container and _may_nest_too_deep(body) and nests_deeper_than(value, body):
        raise _too_deep()
    return value


def decode_object(body: bytes) -> dict[str, Any]:
    value = decode(body)
    if type(value) is not dict:
        raise InvalidRequest("Request body must be a JSON object")
    return value


def _may_nest_too_deep(body: bytes) -> bool:
    """False when the body is too small to hold MAX_DEPTH + 1 nested brackets (a fast path)."""
    if len(body) <= 2 * MAX_DEPTH:
        return False
    return len(body) >= _COUNTED_BELOW or body.count(b"[") + body.count(b"{") > MAX_DEPTH


def nests_deeper_than(value: dict | list, body: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when some value sits inside more than `limit` arrays and objects.

    Walks the decoded value level by level while that is cheap (prompts and images are long
    strings in few containers); past WALK_BUDGET items it measures the body's bytes instead,
    which msgspec re-indents one space per level at C speed.
    """
    level: list = [value]
    budget = WALK_BUDGET
    for _ in range(limit):
        below: list = []
        add = below.append
        for container in level:
            budget -= len(container)
            if budget < 0:
                return _indented_past(body, limit)
            for item in container.values() if type(container) is dict else container:
                if type(item) is dict or type(item) is list:
                    add(item)
        if not below:
            return False
        level = below
    return any(level)  # containers at depth `limit`: too deep when one holds anything


def _indented_past(body: bytes, limit: int) -> bool:
    try:
        formatted = msgspec.json.format(body, indent=1)
    except RecursionError:
        return True
    needle = _INDENT_PAST_MAX if limit == MAX_DEPTH else b"\n" + b" " * (limit + 1)
    return needle in formatted


def _too_deep() -> InvalidRequest:
    return InvalidRequest(f"Request body nests arrays and objects deeper than {MAX_DEPTH} levels")


def _strip_path(text: str) -> str:
    return _MSGSPEC_PATH.sub("", text)


def _located(body: bytes, problem: str) -> InvalidRequest:
    where = locate(body, _fails)
    if where:
        return InvalidRequest(f"{where}: {problem}")
    return InvalidRequest(f"Request body is not valid JSON: {problem}")


def _fails(raw: bytes) -> bool:
    try:
        _decoder.decode(raw)
    except _UNDECODABLE:
        return True
    return False


def locate(body: bytes, fails: Callable[[bytes], bool]) -> str:
    """The path (`messages.0.content`) of the innermost value for which `fails` is true.

    For error messages only. Each level decodes the children of the failing node; the work is
    capped at about three times the body's size, so a crafted body cannot make it quadratic.
    """
    path: list[str] = []
    node: bytes | msgspec.Raw = body
    spent, cap = 0, 2 * len(body)
    while len(path) < MAX_DEPTH and spent <= cap:
        try:
            children = _node.decode(node)
        except _UNDECODABLE:
            break  # a scalar, a string, or a container whose keys are themselves bad
        items = children.items() if type(children) is dict else enumerate(children)
        for name, child in items:
            spent += len(child)
            if fails(child):
                path.append(str(name))
                node = child
                break
        else:
            break
    return ".".join(path)
