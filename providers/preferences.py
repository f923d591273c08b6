"""The request's `provider` object (and the tenant's defaults for it) applied to a route plan.

`order` names tried first, `only` restricts, `ignore` excludes, `include_alpha` admits routes
marked alpha, `allow_fallbacks: false` keeps one attempt, `sort` reorders by observed latency or
by upstream price. An unknown provider name, or a combination that leaves no route, is a 400
naming it: the plan is never silently widened back to every route.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidRequest
from core.target import Target


@dataclass(frozen=True, slots=True)
class Preferences:
    order: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    include_alpha: bool = False
    allow_fallbacks: bool = True
    sort: str | None = None


FIELDS = ("order", "only", "ignore", "include_alpha", "allow_fallbacks", "sort")


def merge(request_prefs, tenant_defaults: dict | None) -> Preferences:
    """Request fields win over the tenant's defaults; absent fields keep the defaults."""
    values = {k: v for k, v in (tenant_defaults or {}).items() if k in FIELDS}
    if request_prefs is not None:
        for name in FIELDS:
            value = getattr(request_prefs, name)
            if value is not None:
                values[name] = value
    return Preferences(
        order=tuple(values.get("order") or ()),
        only=tuple(values["only"]) if values.get("only") is not None else None,
        ignore=tuple(values.get("ignore") or ()),
        include_alpha=bool(values.get("include_alpha", False)),
        allow_fallbacks=values.get("allow_fallbacks", True) is not False,
        sort=values.get("sort"),
    )


def check_names(prefs: Preferences, known: frozenset[str]) -> None:
    for name in ("order", "only", "ignore"):
        for provider in getattr(prefs, name) or ():
            if provider not in known:
                raise InvalidRequest(f"provider.{name}: unknown provider `{provider}`")


def apply(
    targets: list[Target], alpha: frozenset[int], prefs: Preferences, *, model: str
) -> list[Target]:
    """Filter and order the planned targets; `alpha` holds the ids of routes marked alpha."""
    kept = [
        t
        for t in targets
        if (prefs.only is None or t.provider_name in prefs.only)
        and t.provider_name not in prefs.ignore
        and (prefs.include_alpha or t.route_id not in alpha)
    ]
    if not kept:
        raise InvalidRequest(
            f"provider: no route of model `{model}` is left after applying order/only/ignore/"
            "include_alpha"
        )
    if prefs.order:
        rank = {name: i for i, name in enumerate(prefs.order)}
        kept.sort(key=lambda t: rank.get(t.provider_name, len(rank)))  # stable: keeps the rest
    return kept if prefs.allow_fallbacks else kept[:1]


def sort_by(targets: list[Target], values: dict[int, float]) -> list[Target]:
    """Cheapest or fastest first; routes without a figure keep their place after the others."""
    return sorted(targets, key=lambda t: (t.route_id not in values, values.get(t.route_id, 0.0)))
