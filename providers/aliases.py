"""Which public model an id a client sends means: names, aliases, patterns, a tenant default,
and the `[1m]`-style long-context suffix. Pure: no Django, no I/O.

The one rule (used by /v1/messages, count_tokens and /v1/models/{id} through
`gateway.pipeline.admission.resolve_model`):

1. A context-window suffix `[<n>m]` (`[1m]`, `[2M]`: n million tokens, 1 to MAX_MILLIONS) is
   split off; the rest is resolved and the suffix becomes a long-context request.
2. The exact model name, then an exact alias, then patterns, most specific first (the most
   characters other than `*`), then, for an id starting with `claude-`, the tenant's default
   model.
3. Only models the key may use take part: a model outside the tenant's or the key's list, with
   its aliases and patterns, does not exist for that key (the next candidate is tried), so no
   answer tells a key that another tenant's model exists.

A pattern's `*` matches any run of characters, none included; nothing else is special. Two
patterns of the same specificity that could both match one id are refused when configured
(`problems`), so every id has one most specific pattern. Resolution is cached per id on the
routing snapshot (bounded), so a warm id costs a dict lookup and never a pattern scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

MAX_NAME_LENGTH = 128  # Model.name and ModelAlias.name
MAX_MILLIONS = 100  # [100m]: a context-window suffix beyond this is a 400
MILLION = 1_000_000
MIN_LITERALS = 3  # a pattern needs this many characters other than `*`
MAX_STARS = 4
CACHE_SIZE = 4096  # ids remembered per snapshot; the whole cache is dropped when full
DEFAULT_PREFIX = "claude-"  # ids a tenant's default model answers when nothing else does


class SuffixError(ValueError):
    """A context-window suffix out of range (the message names it)."""


def split_context(name: str) -> tuple[str, int | None]:
    """`claude-opus-4-8[1m]` -> (`claude-opus-4-8`, 1_000_000); no suffix -> (name, None).

    Raises SuffixError for `[0m]` or more than `[MAX_MILLIONS m]`."""
    if not name.endswith(("m]", "M]")):
        return name, None
    base, bracket, tail = name.rpartition("[")
    digits = tail[:-2]
    if not bracket or not base or not digits.isascii() or not digits.isdigit():
        return name, None
    if len(digits) > 4 or not 1 <= int(digits) <= MAX_MILLIONS:
        raise SuffixError(
            f"model: the context-window suffix `[{digits[:12]}{tail[-2]}]` is out of range "
            f"(from [1m] to [{MAX_MILLIONS}m])"
        )
    return base, int(digits) * MILLION


def is_pattern(name: str) -> bool:
    return "*" in name


def glob_parts(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("*"))


def glob_match(parts: tuple[str, ...], name: str) -> bool:
    """Whether `name` matches a pattern split on `*` (leftmost-first is exact for `*` only)."""
    if len(parts) == 1:
        return name == parts[0]
    first, last = parts[0], parts[-1]
    if len(name) < len(first) + len(last) or not name.startswith(first):
        return False
    if not name.endswith(last):
        return False
    pos, end = len(first), len(name) - len(last)
    for part in parts[1:-1]:
        found = name.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def specificity(pattern: str) -> int:
    return len(pattern) - pattern.count("*")


def overlap(a: str, b: str) -> bool:
    """Whether some id matches both patterns (`*` only): a walk over both at once."""

    @cache
    def walk(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return walk(i + 1, j) or (j < len(b) and walk(i, j + 1))
        if j < len(b) and b[j] == "*":
            return walk(i, j + 1) or (i < len(a) and walk(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and walk(i + 1, j + 1)

    return walk(0, 0)


# --- Checks (admin and gateway_apply) ---------------------------------------------------------


def model_name_problem(name: str) -> str | None:
    """What a model's name may not hold, beside its length: what resolution reads itself."""
    if "[" in name or "]" in name:
        return f"model name {name!r} may not contain [ or ] (a `[1m]` suffix is read from ids)"
    if "*" in name:
        return f"model name {name!r} may not contain * (patterns are aliases)"
    return None


def name_problem(name: str) -> str | None:
    """What is wrong with one alias or pattern on its own (None: nothing)."""
    if not name or len(name) > MAX_NAME_LENGTH:
        return f"alias must be 1 to {MAX_NAME_LENGTH} characters"
    if not name.isascii() or not name.isprintable() or " " in name:
        return f"alias {name!r} must be visible ASCII without spaces"
    if "[" in name or "]" in name:
        return f"alias {name!r} may not contain [ or ] (a `[1m]` suffix is read from ids)"
    if "**" in name:
        return f"pattern {name!r}: write one * instead of several in a row"
    if name.count("*") > MAX_STARS:
        return f"pattern {name!r} has more than {MAX_STARS} *"
    if is_pattern(name) and specificity(name) < MIN_LITERALS:
        return (
            f"pattern {name!r} would match almost every model id: it needs at least "
            f"{MIN_LITERALS} characters other than * (for unmatched claude-* ids, set a "
            "tenant's default model instead)"
        )
    return None


def problems(
    aliases: dict[str, str], model_names: Iterable[str]
) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with a whole set of aliases (alias or pattern -> model name), as (the
    aliases concerned, problem): each alone, an alias equal to a model's name, and patterns of
    equal specificity that can match one id."""
    names = set(model_names)
    found: list[tuple[tuple[str, ...], str]] = []
    by_rank: dict[int, list[str]] = {}
    for alias in sorted(aliases):
        if (problem := name_problem(alias)) is not None:
            found.append(((alias,), problem))
        elif alias in names:
            found.append(((alias,), f"alias {alias!r} is already the name of a model"))
        elif is_pattern(alias):
            by_rank.setdefault(specificity(alias), []).append(alias)
    for group in by_rank.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if aliases[a] != aliases[b] and overlap(a, b):
                    found.append(
                        (
                            (a, b),
                            f"patterns {a!r} ({aliases[a]}) and {b!r} ({aliases[b]}) are "
                            "equally specific and can match the same id: make one more "
                            "specific",
                        )
                    )
    return found


# --- Resolution -------------------------------------------------------------------------------


@dataclass(slots=True)
class AliasIndex:
    """Model names, exact aliases and patterns of one routing snapshot."""

    models: frozenset[str] = frozenset()
    exact: dict[str, str] = field(default_factory=dict)  # alias -> model name
    # (parts, model name), most specific first, ties by text: a fixed order for every id.
    patterns: tuple[tuple[tuple[str, ...], str], ...] = ()
    # Explicit cache: id -> candidate model names, best first. Bounded by CACHE_SIZE.
    cache: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, models: Iterable[str], aliases: dict[str, str]) -> AliasIndex:
        names = frozenset(models)
        exact = {a: m for a, m in aliases.items() if not is_pattern(a) and m in names}
        ranked = sorted(
            (a for a, m in aliases.items() if is_pattern(a) and m in names),
            key=lambda a: (-specificity(a), a),
        )
        return cls(names, exact, tuple((glob_parts(a), aliases[a]) for a in ranked))

    def candidates(self, name: str) -> tuple[str, ...]:
        """The models `name` may mean as an alias or by a pattern, best first (the caller tries
        the exact model name before these, and keeps the first the key may use)."""
        found = self.cache.get(name)
        if found is not None:
            return found
        found = self._scan(name) if len(name) <= MAX_NAME_LENGTH else ()
        if len(self.cache) >= CACHE_SIZE:
            self.cache.clear()
        self.cache[name] = found
        return found

    def _scan(self, name: str) -> tuple[str, ...]:
        found: list[str] = []
        if name in self.exact:
            found.append(self.exact[name])
        for parts, model in self.patterns:
            if model not in found and glob_match(parts, name):
                found.append(model)
        return tuple(found)

    def of(self, model: str) -> tuple[str, ...]:
        """Aliases and patterns of one model, sorted (for /v1/models)."""
        named = [a for a, m in self.exact.items() if m == model]
        named += ["*".join(parts) for parts, m in self.patterns if m == model]
        return tuple(sorted(named))
