"""Admission (before the upstream call) and settlement (after the response) of a request.

What applies to a request is read from its key's cached info (its own and its tenant's
limits): requests per minute, tokens per minute and a spend budget, each optional. All of
them are checked and reserved by one admit.lua call: 429 `rate_limit_error` over a rate limit,
402 `billing_error` over a budget. settle.lua later replaces every reservation with the real
figures from the usage record.

Reservations are the worst case, so no prompt crafted to fool an estimate and no slow upstream
can make requests in flight together pass a limit: the prompt at its upper bound
(`tokens.input_bound`, never below the real count) plus `max_tokens` of output. A budget
reserves that in dollars (input at the dearest input price, cache writes included). A TPM
bucket reserves it capped at the limit, so a request whose realistic size fits is never refused
for its worst case (it waits for a full bucket instead); it is refused as too large only when
our estimate of its prompt alone exceeds the limit. In flight together, requests can therefore
pass a limit by at most one request's reservation.

Redis unavailable: requests are admitted without limits (fail open) and a warning is logged;
serving matters more than counting. No REDIS_URL (quick start): limits are not enforced.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from core import ir, state, tokens
from core.errors import ApiError, RateLimited
from gateway.limits import budgets, scripts
from gateway.usage import billing
from gateway.usage.record import UsageRecord

log = logging.getLogger("tollgate.limits")
ADMITTED, RATE_LIMITED, OVER_BUDGET, NOT_LOADED = 0, 1, 2, 3
REQUESTS, TOKENS = "requests", "tokens"


@dataclass(frozen=True, slots=True)
class Demand:
    """What admission weighs of one request (built by the pipeline's `Call.demand`)."""

    request_id: str
    started_at: float  # wall clock: which budget period the request falls in
    key: Any  # accounts.keys.KeyInfo: the key's and its tenant's limits
    request: ir.Request  # its prompt bounds the tokens reserved, `max_tokens` the output
    prices: Any  # providers.routing.Prices of the resolved model
    # Our count of the prompt's tokens: tokenising costs, so only asked near a TPM limit.
    estimate: Callable[[], int]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One rate limit: `limit` per minute of `kind`, this request reserving `cost` of it."""

    key: str
    kind: str  # REQUESTS or TOKENS
    scope: str  # "key" or "tenant"
    limit: int
    cost: int


@dataclass(slots=True)
class Admission:
    """What a request reserved; kept on the Call until it is settled."""

    request_id: str
    buckets: list[Bucket]
    holds: list[budgets.Hold]
    # Per bucket, after this request: (remaining, epoch ms when it is full again).
    seen: list[tuple[int, int]] = field(default_factory=list)

    def limits(self) -> list[tuple[str, int, int, str]]:
        """Per kind, the most restrictive of the key's and tenant's limits after this request:
        (kind, limit, remaining, reset in RFC 3339), which each surface names its own way."""
        out = []
        for kind in (REQUESTS, TOKENS):
            mine = [
                (s[0], b.limit, s[1])
                for b, s in zip(self.buckets, self.seen, strict=True)
                if b.kind == kind
            ]
            if mine:
                remaining, limit, reset_ms = min(mine)
                out.append((kind, limit, remaining, rfc3339(reset_ms)))
        return out


def rfc3339(epoch_ms: int) -> str:
    at = datetime.fromtimestamp(math.ceil(epoch_ms / 1000), UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan(demand: Demand) -> Admission:
    """The buckets and budgets that apply to this request, with what it would reserve."""
    key = demand.key
    scopes = [
        (scope, owner, limits)
        for scope, owner, limits in (
            ("key", key.key_id, key.key_limits),
            ("tenant", key.tenant_id, key.tenant_limits),
        )
        if limits is not None
    ]
    by_tokens = any(limits.tpm or limits.budget_usd is not None for _, _, limits in scopes)
    bound = tokens.input_bound(demand.request) if by_tokens else 0
    worst = billing.worst_case_usd(bound, demand.request.max_tokens, demand.prices)
    day = budgets.day_at(demand.started_at)
    buckets, holds = [], []
    for scope, owner, limits in scopes:
        if limits.rpm:
            buckets.append(Bucket(f"tg:rl:{scope}:{owner}:rpm", REQUESTS, scope, limits.rpm, 1))
        if limits.tpm:
            cost = _tokens_reserved(demand, bound + demand.request.max_tokens, limits.tpm)
            buckets.append(Bucket(f"tg:rl:{scope}:{owner}:tpm", TOKENS, scope, limits.tpm, cost))
        if limits.budget_usd is not None:
            period = budgets.period_of(limits.budget_period, day)
            key_name = budgets.budget_key(scope, owner, period)
            holds.append(budgets.Hold(key_name, scope, owner, limits.budget_usd, period, worst))
    return Admission(demand.request_id, buckets, holds)


def _tokens_reserved(demand: Demand, worst: int, limit: int) -> int:
    """What a TPM bucket reserves: the worst case, capped at the limit, unless even our
    estimate of the prompt exceeds the limit (then the estimate, which admit.lua refuses)."""
    if worst <= limit:
        return worst
    estimate = demand.estimate()  # tokenised only for requests near the limit
    return estimate if estimate > limit else limit


async def admit(demand: Demand) -> Admission | None:
    """Check and reserve; raise RateLimited (429) or BillingError (402). None: nothing applies."""
    if demand.key.key_limits is None and demand.key.tenant_limits is None:
        return None  # no limits: no Redis round trip at all
    client = state.async_store()
    if isinstance(client, state.LocalStore):
        _warn_without_redis()
        return None
    # Limits are shared or not at all: while Redis is away requests are served unlimited.
    _, admission = await state.shared("limits", lambda: _reserve(client, demand))
    return admission


async def _reserve(client, demand: Demand) -> Admission:
    admission = plan(demand)
    keys, args = _script_input(admission)
    for _ in range(3):
        reply = await scripts.for_async(client, "admit")(keys=keys, args=args)
        code, index, retry_ms, used = (int(v) for v in reply[:4])
        if code == NOT_LOADED:  # first request of a period, or Redis lost the budget
            await budgets.load(client, admission.holds[index - 1], time.time())
            continue
        admission.seen = [(int(reply[i]), int(reply[i + 1])) for i in range(4, len(reply), 2)]
        if code == RATE_LIMITED:
            raise _rate_limited(admission, admission.buckets[index - 1], retry_ms)
        if code == OVER_BUDGET:
            raise admission.holds[index - 1].refusal(used)
        return admission
    raise ApiError("budget state could not be loaded; try again")


def _script_input(admission: Admission) -> tuple[list[str], list]:
    """admit.lua's KEYS and ARGV (see the script's header)."""
    args: list = [len(admission.buckets), len(admission.holds), admission.request_id]
    for bucket in admission.buckets:
        args += [bucket.limit, bucket.cost]
    now = time.time()
    for hold in admission.holds:
        args += [billing.nano(hold.amount), billing.nano(hold.worst), hold.period.ttl_ms(now)]
    keys = [b.key for b in admission.buckets] + [h.key for h in admission.holds]
    return keys, args


def _rate_limited(admission: Admission, bucket: Bucket, retry_ms: int) -> RateLimited:
    who = "API key" if bucket.scope == "key" else "tenant"
    if bucket.cost > bucket.limit:
        message = (
            f"this request's estimated {bucket.cost} input tokens exceed the {who}'s limit of "
            f"{bucket.limit} tokens per minute"
        )
    else:
        message = (
            f"rate limit exceeded: the {who}'s limit is {bucket.limit} {bucket.kind} per minute"
        )
    refusal = RateLimited(message, headers={"retry-after": str(max(1, math.ceil(retry_ms / 1000)))})
    refusal.limits = admission.limits()
    return refusal


async def settle(admission: Admission, record: UsageRecord) -> None:
    """Replace the reservations with the real tokens and cost (after the response is sent)."""
    buckets = [b for b in admission.buckets if b.kind == TOKENS]
    if not buckets and not admission.holds:
        return
    args = [len(buckets), len(admission.holds), admission.request_id, record.tokens]
    args.append(billing.nano(record.cost_usd))
    for bucket in buckets:
        args += [bucket.limit, bucket.cost]
    keys = [b.key for b in buckets] + [h.key for h in admission.holds]
    # If Redis fails, the worker releases the reservation when the record lands; only TPM
    # stays off.
    await state.shared(
        "limits", lambda: scripts.for_async(state.async_store(), "settle")(keys=keys, args=args)
    )


@cache
def _warn_without_redis() -> None:
    """Logged once per process (the cache is the 'once')."""
    log.warning("rate limits and budgets are configured but not enforced: REDIS_URL is not set")
