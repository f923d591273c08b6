"""JSON Schema -> the OpenAPI subset Gemini accepts in `functionDeclarations[].parameters`.

Reference 4.4 and the sanitiser of 5.5. Gemini answers any keyword outside its subset with a
400, and Claude Code / MCP tool schemas are full of them (`$schema`, `additionalProperties`,
`$ref`, `const`, type unions). Pure and recursive; the input is never modified.
"""

from __future__ import annotations

from typing import Any

import msgspec

# Keywords of Gemini's `Schema` (reference 4.4). Everything else is dropped: an allow-list, so a
# keyword nobody has listed yet cannot turn a working tool into a 400.
# fmt: off
KEPT = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "properties", "required",
    "propertyOrdering", "items", "minItems", "maxItems", "minProperties", "maxProperties",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "anyOf", "default", "example",
})
# fmt: on
FORMATS = {
    "STRING": {"enum", "date-time"},
    "NUMBER": {"float", "double"},
    "INTEGER": {"int32", "int64"},
}
# A `$ref` back into a definition being inlined: the cycle is cut here.
RECURSIVE = {"type": "OBJECT"}

_json = msgspec.json.Encoder()
Defs = dict[str, Any]


def gemini_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """The sanitised copy of a tool's `input_schema`."""
    defs: Defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean(schema, defs, ())


def _describe(node: dict[str, Any], note: str) -> None:
    """Keep a constraint Gemini cannot express where the model still reads it."""
    description = node.get("description")
    node["description"] = f"{description} ({note})" if description else note


def _resolve(node: dict[str, Any], defs: Defs, stack: tuple[str, ...]) -> dict[str, Any]:
    ref = node["$ref"]
    name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""
    if name in stack:
        return dict(RECURSIVE)
    target = defs.get(name)
    if not isinstance(target, dict):
        return dict(RECURSIVE)  # an external or broken reference: describe nothing we cannot
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    return _clean({**target, **siblings}, defs, (*stack, name))


def _clean(node: Any, defs: Defs, stack: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}  # `true` (anything) and malformed members
    if "$ref" in node:
        return _resolve(node, defs, stack)
    node = dict(node)
    _merge_all_of(node, defs, stack)
    _const_to_enum(node)
    _type_union(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            if isinstance(value, dict):
                out[key] = {name: _clean(sub, defs, stack) for name, sub in value.items()}
        elif key == "items":
            out[key] = _clean(value, defs, stack)
        elif key in ("anyOf", "oneOf"):
            members = value if isinstance(value, list) else []
            out["anyOf"] = [*out.get("anyOf", []), *(_clean(m, defs, stack) for m in members)]
        elif key in KEPT:
            out[key] = value
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].upper()
    _null_members(out)
    _enum(out)
    _format(out)
    _required(out)
    return out


def _merge_all_of(node: dict[str, Any], defs: Defs, stack: tuple[str, ...]) -> None:
    """`allOf` members folded into the node: properties and required lists merged."""
    members = node.pop("allOf", None)
    if not isinstance(members, list):
        return
    for member in (_clean(m, defs, stack) for m in members):
        for key, value in member.items():
            if key == "properties":
                node["properties"] = {**value, **(node.get("properties") or {})}
            elif key == "required":
                required = list(node.get("required") or [])
                node["required"] = required + [r for r in value if r not in required]
            else:
                node.setdefault(key, value)


def _const_to_enum(node: dict[str, Any]) -> None:
    if "const" not in node:
        return
    value = node.pop("const")
    if isinstance(value, str):
        node["enum"] = [value]
        node["type"] = "STRING"
    else:
        _describe(node, f"must be {_json.encode(value).decode()}")


def _type_union(node: dict[str, Any]) -> None:
    """`type: [T, "null"]` -> T + nullable; several types -> anyOf of single types."""
    types = node.get("type")
    if not isinstance(types, list):
        return
    named = [t for t in types if isinstance(t, str) and t != "null"]
    if "null" in types:
        node["nullable"] = True
    if len(named) == 1:
        node["type"] = named[0]
    elif not named:
        node["type"] = "NULL"
    else:
        del node["type"]
        node["anyOf"] = [*(node.get("anyOf") or []), *({"type": t} for t in named)]


def _null_members(node: dict[str, Any]) -> None:
    """`{"type": "NULL"}` members of anyOf become `nullable`; a lone member is merged in."""
    members = node.get("anyOf")
    if members is None:
        return
    kept = [m for m in members if m.get("type") != "NULL"]
    if len(kept) < len(members):
        node["nullable"] = True
    if len(kept) == 1:
        del node["anyOf"]
        for key, value in kept[0].items():
            node.setdefault(key, value)
    elif kept:
        node["anyOf"] = kept
    else:
        del node["anyOf"]


def _enum(node: dict[str, Any]) -> None:
    """Gemini takes enums of strings on STRING only; other enums become a description."""
    values = node.get("enum")
    if values is None:
        return
    if not isinstance(values, list) or node.get("type", "STRING") != "STRING":
        del node["enum"]
        if isinstance(values, list):
            _describe(node, "one of " + ", ".join(_json.encode(v).decode() for v in values))
        return
    # null is expressed by `nullable`; other values become their JSON text.
    strings = [v if isinstance(v, str) else _json.encode(v).decode() for v in values]
    node["enum"] = [s for s, v in zip(strings, values, strict=True) if v is not None]
    node["type"] = "STRING"
    if not node["enum"]:
        del node["enum"]


def _format(node: dict[str, Any]) -> None:
    if "format" in node and node["format"] not in FORMATS.get(node.get("type"), ()):
        del node["format"]


def _required(node: dict[str, Any]) -> None:
    if "required" not in node:
        return
    properties = node.get("properties") or {}
    required = node["required"]
    kept = [r for r in required if r in properties] if isinstance(required, list) else []
    if kept:
        node["required"] = kept
    else:
        del node["required"]
