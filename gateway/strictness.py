"""What happens to a request field the chosen provider cannot honour.

`X-Tollgate-Strictness` (or `X-AIStats-Strictness`): `error` refuses such routes (and the
request with a 400 naming the field and provider when none is left), `warn` (the default)
drops the field and reports it in the `tollgate-warnings` header and `meta.warnings`, `off`
drops it silently. It is decided per candidate route, so a field one route cannot honour can
steer the request to a route that can.

`provider_options` go through the same review: an option the route's table does not list (or
whose value fails its check, see providers/adapters/options.py) is a field it cannot honour.
Names are the client's own, so they are shown printable and truncated, and at most
MAX_REPORTED per route (the rest are counted): they end up in a response header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core import ir
from core.errors import InvalidRequest
from core.target import Target
from protocols import options
from protocols.anthropic import betas
from providers.registry import adapter_for

HEADERS = (b"x-tollgate-strictness", b"x-aistats-strictness")
LEVELS = ("error", "warn", "off")
MAX_REPORTED = 20


def level(headers: dict[bytes, bytes]) -> str:
    for name in HEADERS:
        value = headers.get(name)
        if value is not None:
            text = value.decode("latin-1").strip().lower()
            if text not in LEVELS:
                raise InvalidRequest(f"{name.decode()}: must be one of error, warn, off")
            return text
    return "warn"


@dataclass(slots=True)
class Review:
    targets: list[Target]
    # route id -> fields that route drops
    dropped: dict[int, list[str]] = field(default_factory=dict)
    # routes set aside under `error`, for meta.routing.skipped_providers
    skipped: list[dict] = field(default_factory=list)

    def warnings(self, target: Target | None) -> list[str]:
        if target is None:
            return []
        return [
            f"{name} dropped: not supported by provider {target.provider_name}"
            for name in self.dropped.get(target.route_id, [])
        ]


def review(
    targets: list[Target],
    request: ir.Request,
    unknown: list[str],
    strictness: str,
    withheld: list[str] | None = None,
) -> Review:
    """`unknown`: what translated routes cannot carry; `withheld`: what no route gets."""
    result = Review(targets=[])
    named = [options.shown(name) for name in unknown[:MAX_REPORTED]]
    for target in targets:
        adapter = adapter_for(target.kind)
        dropped = [
            *(withheld or []),
            *adapter.unsupported(request, target),
            *dropped_betas(request, target),
        ]
        hidden = 0
        if adapter.protocol != request.surface:
            dropped = dropped + request.context_dropped  # compaction: not emulated
        if adapter.protocol != request.surface and unknown:
            dropped, hidden = dropped + named, len(unknown) - len(named)
        if request.provider_options:
            dropped = dropped + options.rejected(adapter.options, request.provider_options)
        if len(dropped) > MAX_REPORTED or hidden:
            more = len(dropped) - MAX_REPORTED + hidden
            dropped = [*dropped[:MAX_REPORTED], f"{more} more fields"]
        if dropped and strictness == "error":
            result.skipped.append({"provider": target.provider_name, "unsupported": dropped})
            continue
        result.dropped[target.route_id] = dropped
        result.targets.append(target)
    if not result.targets:
        first = result.skipped[0]
        raise InvalidRequest(
            f"{first['unsupported'][0]}: not supported by provider {first['provider']} "
            "(strictness: error)"
        )
    return result


def dropped_betas(request: ir.Request, target: Target) -> list[str]:
    """Betas this route does not honour (gateway/betas.py): on a route speaking the client's
    surface, those its provider's policy holds back; on a translated one, those we do not know."""
    if not request.beta:
        return []
    if adapter_for(target.kind).protocol == request.surface:
        dropped = betas.forwarded(request.beta, target.betas_mode, target.betas)[1]
    else:
        dropped = betas.unknown(request.beta)
    return [betas.shown(options.shown(flag)) for flag in dropped]
