"""Spend budgets: reserve the worst case atomically, settle to the real cost, and agree with
the database to the nano-dollar once the records have landed."""

import asyncio
import base64
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest
from channels.db import database_sync_to_async

from accounts.keys import Limits
from core import state, tokens
from core.errors import BillingError
from gateway import limits
from gateway.limits import budgets
from gateway.models import DailyUsage
from gateway.models import UsageRecord as UsageRow
from gateway.usage import billing
from gateway.usage.record import UsageRecord
from gateway.usage.services import usage_records_store
from gateway.usage.spool import pack
from gateway.usage.tasks import record_usage_batch
from tests.factories import make_key
from tests.integration.limited_calls import (
    call_for,
    fresh_redis_clients,
    key_info,
    short_lived_connections,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clients():
    fresh_redis_clients()
    with short_lived_connections():
        yield
    fresh_redis_clients()


@pytest.fixture
def owner():
    key, _ = make_key()
    return key


def budget_state(scope: str, owner_id: int, period: str = "daily") -> dict[str, int]:
    key = budgets.budget_key(scope, owner_id, budgets.period_of(period, datetime.now(UTC).date()))
    raw = state.sync_redis().hgetall(key)
    return {k.decode(): int(v) for k, v in raw.items()}


def record_of(call, cost: Decimal, *, tokens: int = 10) -> UsageRecord:
    return UsageRecord(
        request_id=call.request_id,
        started_at=call.started_at,
        finished_at=call.started_at + 0.2,
        status="ok",
        http_status=200,
        tenant_id=call.key.tenant_id,
        key_id=call.key.key_id,
        key_prefix=call.key.prefix,
        model="claude-test",
        provider="fake",
        output_tokens=tokens,
        cost_usd=cost,
        billed=True,
    )


def land(records: list[UsageRecord]) -> None:
    """What the Celery task does after a batch arrives."""
    usage_records_store(records=records)
    budgets.land(records)


async def admit_all(calls):
    results = await asyncio.gather(*(limits.admit(c) for c in calls), return_exceptions=True)
    admitted = [r for r in results if isinstance(r, limits.Admission)]
    refused = [r for r in results if isinstance(r, BillingError)]
    assert len(admitted) + len(refused) == len(calls), results
    return admitted, refused


async def test_concurrent_reservations_cannot_overspend(owner):
    info = key_info(
        key=Limits(budget_usd=Decimal("1.00"), budget_period="daily"),
        key_id=owner.pk,
        tenant_id=owner.tenant_id,
    )
    calls = [call_for(info, max_tokens=10_000) for _ in range(20)]
    bound = tokens.input_bound(calls[0].request)
    worst = billing.worst_case_usd(bound, 10_000, calls[0].prices)

    admitted, refused = await admit_all(calls)

    assert len(admitted) == int(Decimal("1.00") / worst) == 6  # each may cost ~$0.15
    held = budget_state("key", owner.pk)
    assert held["reserved"] == 6 * billing.nano(worst) and held["spent"] == 0
    assert held["reserved"] <= billing.nano(Decimal("1.00"))
    message = refused[0].message
    assert message.startswith("API key budget exceeded: the API key's daily budget of $1.00")
    tomorrow = budgets.period_of("daily", datetime.now(UTC).date()).end
    assert message.endswith(f"The budget resets at {tomorrow.isoformat()}T00:00:00Z.")
    assert refused[0].status == 402 and not refused[0].retryable


async def test_settling_frees_the_difference_and_landing_makes_it_exact(owner):
    info = key_info(
        key=Limits(budget_usd=Decimal("1.00"), budget_period="monthly"),
        key_id=owner.pk,
        tenant_id=owner.tenant_id,
    )
    calls = [call_for(info, max_tokens=10_000) for _ in range(6)]
    admitted, _ = await admit_all(calls)
    costs = [Decimal("0.012345678"), Decimal("0.2"), Decimal("0.000000001")]
    records = [record_of(c, cost) for c, cost in zip(calls, costs, strict=False)]

    for admission, record in zip(admitted, records, strict=False):
        await limits.settle(admission, record)
    held = budget_state("key", owner.pk, "monthly")
    assert held["pending"] == billing.nano(sum(costs))
    assert held["reserved"] == 3 * billing.nano(admitted[3].holds[0].worst)

    await database_sync_to_async(land)(records)
    for admission, call in zip(admitted[3:], calls[3:], strict=True):
        await limits.settle(admission, record_of(call, Decimal(0)))  # the rest generated nothing

    held = budget_state("key", owner.pk, "monthly")
    assert held["reserved"] == 0 and held["pending"] == 0
    assert held["spent"] == billing.nano(Decimal("0.212345679"))
    in_db = await database_sync_to_async(
        lambda: sum(r.cost_usd for r in UsageRow.objects.filter(api_key_id=owner.pk))
    )()
    assert Decimal(held["spent"]) / billing.NANO == in_db == Decimal("0.212345679")


async def test_a_record_landing_before_its_settlement_is_not_counted_twice(owner):
    info = key_info(
        tenant=Limits(budget_usd=Decimal("5"), budget_period="daily"),
        key_id=owner.pk,
        tenant_id=owner.tenant_id,
    )
    call = call_for(info)
    admission = await limits.admit(call)
    record = record_of(call, Decimal("0.25"))

    await database_sync_to_async(land)([record])  # the worker was faster than the settlement
    await limits.settle(admission, record)
    await database_sync_to_async(land)([record])  # and the same batch delivered again

    held = budget_state("tenant", owner.tenant_id)
    assert held == {"spent": billing.nano(Decimal("0.25")), "reserved": 0, "pending": 0}
    assert (
        await database_sync_to_async(DailyUsage.objects.get)(tenant_id=owner.tenant_id) is not None
    )


async def test_a_budget_not_in_redis_starts_from_the_database(owner):
    await database_sync_to_async(DailyUsage.objects.create)(
        day=datetime.now(UTC).date(),
        tenant_id=owner.tenant_id,
        api_key_id=owner.pk,
        cost_usd=Decimal("0.95"),
    )
    info = key_info(
        key=Limits(budget_usd=Decimal("1.00"), budget_period="daily"),
        key_id=owner.pk,
        tenant_id=owner.tenant_id,
    )

    with pytest.raises(BillingError) as refused:
        await limits.admit(call_for(info, max_tokens=10_000))

    assert "has $0.05 left" in refused.value.message
    assert budget_state("key", owner.pk)["spent"] == billing.nano(Decimal("0.95"))
    assert await limits.admit(call_for(info, max_tokens=100)) is not None  # $0.0015 still fits


async def test_a_tenant_budget_is_shared_by_its_keys(owner):
    other, _ = await database_sync_to_async(make_key)(tenant=owner.tenant)
    tenant = Limits(budget_usd=Decimal("0.50"), budget_period="monthly")
    one = key_info(tenant=tenant, key_id=owner.pk, tenant_id=owner.tenant_id)
    two = key_info(tenant=tenant, key_id=other.pk, tenant_id=owner.tenant_id)

    admitted, refused = await admit_all([call_for(k, max_tokens=10_000) for k in (one, two) * 3])

    assert len(admitted) == 3
    assert refused[0].message.startswith("tenant budget exceeded: the tenant's monthly budget")
    next_month = budgets.period_of("monthly", datetime.now(UTC).date()).end
    assert next_month.day == 1
    assert f"resets at {next_month.isoformat()}T00:00:00Z" in refused[0].message


async def test_a_batch_with_a_record_the_database_refuses_still_settles_every_budget(owner):
    """The hostile tenant's record is parked, the other tenant's land: no hold stays pending."""
    hostile_key, _ = await database_sync_to_async(make_key)()
    budget = Limits(budget_usd=Decimal("10"), budget_period="daily")
    mine = key_info(tenant=budget, key_id=owner.pk, tenant_id=owner.tenant_id)
    theirs = key_info(tenant=budget, key_id=hostile_key.pk, tenant_id=hostile_key.tenant_id)
    calls = [call_for(mine) for _ in range(40)] + [call_for(theirs)]
    admitted, _ = await admit_all(calls)
    records = [record_of(c, Decimal("0.01")) for c in calls]
    records[-1] = msgspec.structs.replace(records[-1], model="oa-echo\x00")  # not cleaned
    for admission, record in zip(admitted, records, strict=True):
        await limits.settle(admission, record)
    assert budget_state("tenant", owner.tenant_id)["pending"] == billing.nano(Decimal("0.40"))

    frames = [msgspec.msgpack.encode(r) for r in [records[-1], *records[:-1]]]
    payload = base64.b64encode(pack(frames)).decode()
    stored = await database_sync_to_async(lambda: record_usage_batch.apply(args=[payload]).get())()

    assert stored == 40
    assert budget_state("tenant", owner.tenant_id) == {
        "spent": billing.nano(Decimal("0.40")),
        "reserved": 0,
        "pending": 0,
    }
    held = budget_state("tenant", hostile_key.tenant_id)  # parked: released, not spent
    assert held == {"spent": 0, "reserved": 0, "pending": 0}
