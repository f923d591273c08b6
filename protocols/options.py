"""`provider_options`: the few provider settings a client may choose, one table per provider kind.

A client addresses options to a provider family (`provider_options.openai`, `.google`,
`.anthropic`). Each adapter holds an `OptionTable` for the family it speaks: every option it
accepts, the check its value must pass, and where it goes in the upstream body. One interpreter
applies every table:

- nothing passes that the table does not list, and a value that fails its check is dropped:
  both are reported to strictness (gateway/strictness.py) as fields this route cannot honour,
  so `warn` drops and reports them and `error` refuses the route;
- an option is written only where the upstream body holds nothing yet, so the gateway's own
  fields (model, messages, token limits, stream, tools, store...) always win; no table maps to
  one of them anyway;
- a value is rebuilt from what its check read, never forwarded as the client sent it;
- options for another family are for another route and ignored here; a family no adapter
  speaks is reported on every route.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Families a client may address; each adapter's table names one of them.
FAMILIES = frozenset({"openai", "google", "anthropic"})
INVALID: Any = object()  # what a check returns for a value it refuses
# Client-chosen names end up in a response header: keep them short and printable.
_NAME_CHARS = 64
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True, slots=True)
class Check:
    clean: Callable[[Any], Any]  # the value to send, rebuilt, or INVALID
    expects: str  # what a valid value is, for the client's warning


@dataclass(frozen=True, slots=True)
class Option:
    # Where the value goes in the upstream body; None when the upstream has no such field
    # (a documented name the route must report as dropped rather than silently ignore).
    path: tuple[str, ...] | None
    check: Check


@dataclass(frozen=True, slots=True)
class OptionTable:
    family: str
    options: Mapping[str, Option]


def shown(name: str) -> str:
    """A client-chosen name as it may appear in a warning or a header."""
    return _UNPRINTABLE.sub("?", name[:_NAME_CHARS])


def rejected(table: OptionTable | None, given: Mapping[str, Any]) -> list[str]:
    """The options in `given` a route with this table cannot honour, named for the client."""
    out: list[str] = []
    for family, options in given.items():
        if table is not None and family == table.family:
            if not isinstance(options, Mapping):
                out.append(f"provider_options.{family} (expected an object)")
                continue
            for name, value in options.items():
                option = table.options.get(name)
                if option is None:
                    out.append(f"provider_options.{family}.{shown(name)}")
                elif option.path is None:
                    out.append(f"provider_options.{family}.{name} ({option.check.expects})")
                elif option.check.clean(value) is INVALID:
                    out.append(
                        f"provider_options.{family}.{name} (expected {option.check.expects})"
                    )
        elif family not in FAMILIES:
            out.append(f"provider_options.{shown(family)}")
    return out


def apply(table: OptionTable | None, given: Mapping[str, Any], body: dict[str, Any]) -> None:
    """Write this table's valid options into `body`, where the gateway wrote nothing."""
    options = given.get(table.family) if table is not None and given else None
    if not options or not isinstance(options, Mapping):
        return
    for name, value in options.items():
        option = table.options.get(name)
        if option is None or option.path is None:
            continue
        clean = option.check.clean(value)
        if clean is not INVALID:
            _place(body, option.path, clean)


def addressed(table: OptionTable | None, given: Mapping[str, Any]) -> bool:
    """Whether the client sent this route options of its own (see gateway/pipeline/attempts.py)."""
    return table is not None and bool(given.get(table.family))


def _place(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = body
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return  # the gateway put something else there: it wins
        node = child
    node.setdefault(path[-1], value)


# --- Checks -----------------------------------------------------------------------------------
def one_of(*values: str, aliases: Mapping[str, str] | None = None) -> Check:
    accepted = {v: v for v in values} | dict(aliases or {})

    def clean(value: Any) -> Any:
        return accepted.get(value, INVALID) if isinstance(value, str) else INVALID

    return Check(clean, "one of " + ", ".join(values))


def text(max_chars: int, pattern: str | None = None, expects: str = "") -> Check:
    shape = re.compile(pattern) if pattern else None

    def clean(value: Any) -> Any:
        if not isinstance(value, str) or not 0 < len(value) <= max_chars:
            return INVALID
        if shape is not None and not shape.fullmatch(value):
            return INVALID
        return value

    return Check(clean, expects or f"a string of at most {max_chars} characters")


def unmapped(reason: str) -> Check:
    return Check(lambda value: INVALID, reason)


def _cache_control(value: Any) -> Any:
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        return INVALID
    if not value.keys() <= {"type", "ttl"}:
        return INVALID
    ttl = value.get("ttl")
    if ttl is None:
        return {"type": "ephemeral"}
    return {"type": "ephemeral", "ttl": ttl} if ttl in ("5m", "1h") else INVALID


CACHE_CONTROL = Check(_cache_control, '{"type": "ephemeral", "ttl": "5m" or "1h" (optional)}')


def _compaction_entry(value: Any) -> Any:
    if not isinstance(value, dict) or value.get("type") != "compaction":
        return INVALID
    if not value.keys() <= {"type", "compact_threshold"}:
        return INVALID
    threshold = value.get("compact_threshold")
    if threshold is None:
        return {"type": "compaction"}
    if type(threshold) is not int or not 1 <= threshold <= 10_000_000:
        return INVALID
    return {"type": "compaction", "compact_threshold": threshold}


def _compaction(value: Any) -> Any:
    entries = value if isinstance(value, list) else [value]
    if not 1 <= len(entries) <= 4:
        return INVALID
    cleaned = [_compaction_entry(entry) for entry in entries]
    return INVALID if any(entry is INVALID for entry in cleaned) else cleaned


COMPACTION = Check(
    _compaction, '{"type": "compaction", "compact_threshold": <tokens>} (or a list of them)'
)

HARM_CATEGORIES = frozenset(
    f"HARM_CATEGORY_{name}"
    for name in ("HARASSMENT", "HATE_SPEECH", "SEXUALLY_EXPLICIT", "DANGEROUS_CONTENT")
) | {"HARM_CATEGORY_CIVIC_INTEGRITY"}
HARM_THRESHOLDS = frozenset(
    {"BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF"}
)


def _safety_settings(value: Any) -> Any:
    if not isinstance(value, list) or not 1 <= len(value) <= len(HARM_CATEGORIES):
        return INVALID
    settings = []
    for entry in value:
        if not isinstance(entry, dict) or entry.keys() != {"category", "threshold"}:
            return INVALID
        category, threshold = entry["category"], entry["threshold"]
        if not isinstance(category, str) or not isinstance(threshold, str):
            return INVALID
        if category not in HARM_CATEGORIES or threshold not in HARM_THRESHOLDS:
            return INVALID
        settings.append({"category": category, "threshold": threshold})
    return settings


SAFETY_SETTINGS = Check(
    _safety_settings, "a list of {category: HARM_CATEGORY_..., threshold: BLOCK_... or OFF}"
)
