"""`Call`: everything known about one request while it is served, whatever its surface.

The pipeline fills it stage by stage; the narrow views other layers take of it are built here
(`demand` for limits, `served` for the usage record), so they never see the whole request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from accounts.keys import KeyInfo
from core import ir
from core.errors import RouteRefusal
from core.target import Target
from core.tokens import estimate_input_tokens
from gateway import limits, strictness, tracing
from gateway.pipeline.attempts import Attempt
from gateway.usage.record import Served
from protocols import options
from protocols.anthropic.surface import SURFACE as ANTHROPIC
from protocols.surface import Ask, Decoded, Surface
from providers import routing
from providers.adapters.base import Exchange
from providers.registry import adapter_for, passes_through


@dataclass(slots=True)
class Call:
    """Everything known about one request while it is served."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)  # wall clock, for records and budgets
    surface: Surface = ANTHROPIC  # the protocol the client speaks
    path: str = "/v1/messages"  # the endpoint it asked (traces name it)
    response_id: str = ""  # the answer's id in the surface's format (set by admission)
    key: KeyInfo | None = None
    decoded: Decoded | None = None
    request: ir.Request | None = None
    model: routing.ModelEntry | None = None
    targets: list[Target] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    target: Target | None = None
    exchange: Exchange | None = None
    upstream_seconds: float = 0.0
    admission: limits.Admission | None = None  # what admission reserved, settled at the end
    estimated_input: int | None = None
    strictness: str = "warn"
    # Stop sequences the gateway matches itself on translated routes (gateway/stops.py).
    stop_sequences: list[str] = field(default_factory=list)
    review: strictness.Review | None = None  # fields each planned route drops
    trace: tracing.Trace | None = None  # the client's x-request-id and traceparent
    # True from an upstream call's start until it failed (a failure generated nothing): a
    # client leaving meanwhile leaves a prompt the upstream may have read.
    upstream_busy: bool = False
    # The context edits the gateway applied to the history translated routes get (None: the
    # request asked for none); an Anthropic route applies them itself and says so.
    applied_edits: list[ir.AppliedEdit] | None = None

    @property
    def ask(self) -> Ask | None:
        return self.decoded.ask if self.decoded is not None else None

    def warnings(self) -> list[str]:
        """What the route that answered dropped, when strictness asks to say so."""
        if self.review is None or self.strictness != "warn":
            return []
        return self.review.warnings(self.target)

    def refused(self, target: Target, err: RouteRefusal) -> None:
        """A route that could not carry the request (no upstream call was made)."""
        if self.review is not None:
            self.review.skipped.append(
                {"provider": target.provider_name, "unsupported": [err.feature]}
            )

    def client_shaped(self, target: Target) -> bool:
        """Whether the request sent to `target` carried fields the client chose (its provider
        options; on a route taking the client's body as sent, unknown fields and blocks passed
        through): an odd answer to it is then not the provider's fault. Error path only."""
        request = self.request
        if options.addressed(adapter_for(target.kind).options, request.provider_options):
            return True
        if not passes_through(target.kind, request.surface):
            return False
        return bool(request.unportable or self.surface.dropped(self.decoded))

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_seconds) * 1000)

    def input_estimate(self) -> int:
        """Our count of the prompt's tokens, computed once per request."""
        if self.estimated_input is None:
            self.estimated_input = estimate_input_tokens(self.request)
        return self.estimated_input

    def demand(self) -> limits.Demand:
        """What rate limits and budgets weigh of this request."""
        return limits.Demand(
            request_id=self.request_id,
            started_at=self.started_at,
            key=self.key,
            request=self.request,
            prices=self.model.prices,
            estimate=self.input_estimate,
        )

    def served(self) -> Served:
        """What the usage record is built from, once the request is over."""
        exchange_id = self.exchange.upstream_request_id if self.exchange is not None else None
        ask = self.ask
        return Served(
            request_id=self.request_id,
            started=self.started,
            started_at=self.started_at,
            endpoint=self.surface.endpoint,
            streamed=bool(ask and ask.stream),
            key=self.key,
            model=self.model.name if self.model is not None else (ask.model if ask else ""),
            prices=self.model.prices if self.model is not None else None,
            target=self.target,
            attempts=self.attempts,
            trace=self.trace,
            upstream_request_id=exchange_id,
            warnings=self.warnings(),
        )
