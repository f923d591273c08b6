"""What raises alerts: budget thresholds after usage lands, keys about to expire, a breaker
opening (once across replicas), the usage pipeline falling behind."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
import redis
from asgiref.sync import async_to_sync
from django.utils import timezone

from accounts.models import ApiKey, Tenant
from core import state
from gateway import celery_app
from gateway.alerts import checks
from gateway.alerts.models import Alert, AlertChannel, AlertDelivery, AlertPolicy
from gateway.usage.record import UsageRecord
from gateway.usage.spool import pack
from gateway.usage.tasks import record_usage_batch
from providers import breaker
from providers.breaker import OPENINGS_KEY
from tests.factories import RouteFactory, TenantFactory, make_key
from tests.integration.alert_receiver import Receiver, serve, verify

pytestmark = pytest.mark.django_db
SECRET = "whsec-checks-0123456789abcdef"
NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def eager(monkeypatch, settings):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.TOLLGATE_ALERTS = {**settings.TOLLGATE_ALERTS, "ALLOW_PRIVATE_URLS": True}


@pytest.fixture
def receiver():
    found = Receiver()
    server = serve(found)
    yield found
    server.shutdown()
    server.server_close()


def hook(url: str, tenant=None, **fields) -> AlertChannel:
    channel = AlertChannel(tenant=tenant, name=fields.pop("name", "ops"), kind="webhook", url=url)
    for name, value in fields.items():
        setattr(channel, name, value)
    channel.set_secret(SECRET)
    channel.save()
    return channel


def bodies(receiver: Receiver) -> list[dict]:
    assert all(verify(SECRET, c.body, c.headers["Tollgate-Signature"]) for c in receiver.calls)
    return [json.loads(c.body) for c in receiver.calls]


# --- Budgets -----------------------------------------------------------------------------------
_n = iter(range(10**6))


def spend(key: ApiKey, usd: str, capture, at: float = NOON) -> None:
    """One record of this cost lands through the usage task, as the worker runs it."""
    n = next(_n)
    record = UsageRecord(
        request_id=f"req_alert_{key.pk}_{n}",
        started_at=at + n,
        finished_at=at + n + 0.1,
        status="ok",
        http_status=200,
        tenant_id=key.tenant_id,
        key_id=key.pk,
        key_prefix=key.prefix,
        model="claude-test",
        provider="fake",
        input_tokens=10,
        output_tokens=10,
        cost_usd=Decimal(usd),
        billed=True,
        latency_ms=10.0,
    )
    payload = base64.b64encode(pack([msgspec.msgpack.encode(record)])).decode()
    with capture(execute=True):
        assert record_usage_batch.apply(args=[payload]).get() == 1


def budget_key(budget: str = "10", period: str = "monthly", tenant=None) -> ApiKey:
    key, _ = make_key(tenant or TenantFactory(name="acme"), name="ci")
    ApiKey.objects.filter(pk=key.pk).update(budget_usd=Decimal(budget), budget_period=period)
    return key


def test_crossing_80_percent_twice_in_a_period_sends_one_alert(
    eager, receiver, django_capture_on_commit_callbacks
):
    key = budget_key("10")
    hook(receiver.url, tenant=key.tenant)
    capture = django_capture_on_commit_callbacks

    spend(key, "4", capture)  # 40 %: nothing
    assert receiver.calls == []
    spend(key, "4.2", capture)  # 82 %: 50 and 80 crossed at once, only 80 is sent
    spend(key, "0.5", capture)  # 87 %: 80 again, same period
    spend(key, "0.1", capture)

    [sent] = bodies(receiver)
    assert (sent["kind"], sent["threshold"], sent["period"]) == ("budget_threshold", 80, "m2026-11")
    assert sent["subject"] == f"key:{key.pk}" and sent["tenant"] == "acme"
    assert sent["details"]["spent_usd"] == "8.2" and sent["details"]["budget_usd"] == "10.00"
    assert sent["details"]["key_prefix"] == key.prefix
    assert sent["title"].startswith(f"API key ci ({key.prefix}…) of acme has used 82%")
    stored = Alert.objects.filter(subject=f"key:{key.pk}").values_list("threshold", "period")
    stored = sorted(stored)
    assert stored == [(50, "m2026-11"), (80, "m2026-11")]  # 50 kept as raised, never sent

    spend(key, "1.5", capture)  # 103 %
    assert [b["threshold"] for b in bodies(receiver)] == [80, 100]


def test_a_new_budget_period_alerts_again(eager, receiver, django_capture_on_commit_callbacks):
    key = budget_key("1", period="daily")
    hook(receiver.url, tenant=key.tenant)

    spend(key, "0.9", django_capture_on_commit_callbacks)
    spend(key, "0.9", django_capture_on_commit_callbacks, at=NOON + 86400)

    assert [(b["threshold"], b["period"]) for b in bodies(receiver)] == [
        (80, "d2026-11-29"),
        (80, "d2026-11-30"),
    ]


def test_a_tenant_budget_and_its_policy_thresholds(
    eager, receiver, django_capture_on_commit_callbacks
):
    tenant = TenantFactory(name="globex")
    Tenant.objects.filter(pk=tenant.pk).update(budget_usd=Decimal("100"))
    AlertPolicy.objects.create(tenant=tenant, budget_thresholds=[25, 90])
    key, _ = make_key(tenant)  # no budget of its own
    hook(receiver.url, tenant=tenant)

    spend(key, "30", django_capture_on_commit_callbacks)
    spend(key, "55", django_capture_on_commit_callbacks)  # 85 %: nothing at 80 for this tenant
    spend(key, "6", django_capture_on_commit_callbacks)

    assert [(b["subject"], b["threshold"]) for b in bodies(receiver)] == [
        (f"tenant:{tenant.pk}", 25),
        (f"tenant:{tenant.pk}", 90),
    ]


def test_another_tenants_spend_alerts_nobody_here(
    eager, receiver, django_capture_on_commit_callbacks
):
    mine = budget_key("10")
    theirs = budget_key("10", tenant=TenantFactory(name="globex"))
    hook(receiver.url, tenant=mine.tenant)

    spend(theirs, "9", django_capture_on_commit_callbacks)

    assert receiver.calls == []
    assert set(Alert.objects.values_list("subject", flat=True)) == {f"key:{theirs.pk}"}


def test_a_failing_alert_check_never_undoes_the_batch(
    eager, monkeypatch, django_capture_on_commit_callbacks
):
    from gateway.usage import tasks

    def broken(records):
        raise RuntimeError("alerts are down")

    monkeypatch.setattr(tasks, "budget_alerts_check", broken)
    key = budget_key("10")

    spend(key, "9", django_capture_on_commit_callbacks)  # asserts the record was stored

    assert Alert.objects.count() == 0


# --- Keys about to expire ----------------------------------------------------------------------
def test_a_key_about_to_expire_alerts_once_per_expiry_date(
    eager, receiver, django_capture_on_commit_callbacks
):
    tenant = TenantFactory(name="acme")
    hook(receiver.url, tenant=tenant)
    now = timezone.now()
    soon, _ = make_key(tenant, name="soon")
    later, _ = make_key(tenant, name="later")
    revoked, _ = make_key(tenant, name="revoked")
    gone, _ = make_key(tenant, name="gone")
    ApiKey.objects.filter(pk=soon.pk).update(expires_at=now + timedelta(days=3))
    ApiKey.objects.filter(pk=later.pk).update(expires_at=now + timedelta(days=20))
    ApiKey.objects.filter(pk=revoked.pk).update(expires_at=now + timedelta(days=1), revoked_at=now)
    ApiKey.objects.filter(pk=gone.pk).update(expires_at=now - timedelta(days=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert checks.expiring_keys_check(now=now) == 1
        assert checks.expiring_keys_check(now=now + timedelta(hours=1)) == 0

    [sent] = bodies(receiver)
    assert sent["kind"] == "key_expiring" and sent["subject"] == f"key:{soon.pk}"
    assert sent["title"] == f"API key soon ({soon.prefix}…) of acme expires in 3 days"

    # Its expiry moved (a new date): warned again when that one nears.
    ApiKey.objects.filter(pk=soon.pk).update(expires_at=now + timedelta(days=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert checks.expiring_keys_check(now=now) == 1


def test_a_tenants_policy_widens_the_expiry_window(django_capture_on_commit_callbacks):
    tenant = TenantFactory()
    AlertPolicy.objects.create(tenant=tenant, key_expiry_days=30)
    key, _ = make_key(tenant)
    other, _ = make_key(TenantFactory())
    now = timezone.now()
    ApiKey.objects.filter(pk__in=[key.pk, other.pk]).update(expires_at=now + timedelta(days=20))

    with django_capture_on_commit_callbacks(execute=True):
        assert checks.expiring_keys_check(now=now) == 1

    assert Alert.objects.get().subject == f"key:{key.pk}"


# --- Breakers ----------------------------------------------------------------------------------
def fail_concurrently(route_id: int, replicas: int, failures_each: int) -> None:
    """N replicas (threads with their own event loop and Redis client) record failures at once."""
    start = threading.Barrier(replicas)

    def replica():
        async def run():
            start.wait()
            await asyncio.gather(
                *(breaker.record(route_id, ok=False, latency_ms=1.0) for _ in range(failures_each))
            )
            # This replica's Redis client dies with its loop: a later loop may get the same id.
            await state._async_clients.pop(id(asyncio.get_running_loop())).aclose()

        asyncio.run(run())

    threads = [threading.Thread(target=replica) for _ in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture(autouse=True)
def _no_openings_left(settings):
    redis.Redis.from_url(settings.REDIS_URL).delete(OPENINGS_KEY)


def drain(capture) -> int:
    with capture(execute=True):
        return checks.breaker_openings_drain()


def test_a_breaker_opening_alerts_exactly_once_with_two_concurrent_openers(
    eager, receiver, settings, django_capture_on_commit_callbacks
):
    route = RouteFactory()
    hook(receiver.url, name="platform")  # a platform channel: breakers are the platform's
    hook(receiver.url, tenant=TenantFactory(), name="tenant")  # never told about routes
    threshold = settings.TOLLGATE["BREAKER_FAILURES"]

    fail_concurrently(route.pk, replicas=2, failures_each=threshold)

    shared = redis.Redis.from_url(settings.REDIS_URL)
    assert float(shared.hget(breaker.breaker_key(route.pk), "open_until")) > time.time()  # open
    assert int(shared.hget(breaker.breaker_key(route.pk), "failures")) == 2 * threshold
    assert shared.llen(OPENINGS_KEY) == 1
    assert drain(django_capture_on_commit_callbacks) == 1
    assert drain(django_capture_on_commit_callbacks) == 0
    [sent] = bodies(receiver)
    assert sent["kind"] == "breaker_open" and sent["subject"] == f"route:{route.pk}"
    assert sent["tenant"] is None
    assert sent["details"]["model"] == route.model.name
    assert sent["details"]["provider"] == route.provider.name
    assert sent["details"]["failures"] == threshold
    assert AlertDelivery.objects.get().channel_name == "platform"


def test_a_failed_probe_reopening_the_breaker_does_not_alert_again_but_a_new_opening_does(
    eager, receiver, settings, django_capture_on_commit_callbacks
):
    settings.TOLLGATE = {**settings.TOLLGATE, "BREAKER_COOLDOWN": 0.2}
    route = RouteFactory()
    hook(receiver.url)
    record = async_to_sync(breaker.record)
    allow = async_to_sync(breaker.allow)
    for _ in range(settings.TOLLGATE["BREAKER_FAILURES"]):
        record(route.pk, ok=False, latency_ms=1.0)
    time.sleep(0.25)
    assert allow(route.pk) is True  # the probe
    record(route.pk, ok=False, latency_ms=1.0)  # fails: open again, same outage
    assert drain(django_capture_on_commit_callbacks) == 1

    time.sleep(0.25)
    assert allow(route.pk) is True
    record(route.pk, ok=True, latency_ms=1.0)  # closed
    for _ in range(settings.TOLLGATE["BREAKER_FAILURES"]):
        record(route.pk, ok=False, latency_ms=1.0)  # a new outage

    assert drain(django_capture_on_commit_callbacks) == 1
    assert len(receiver.calls) == 2


def test_garbage_in_the_openings_list_is_dropped_and_the_rest_alerts(
    eager, django_capture_on_commit_callbacks, settings
):
    route = RouteFactory()
    AlertChannel.objects.create(name="mail", kind="email", emails="ops@example.test")
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.rpush(OPENINGS_KEY, b"not json", json.dumps({"route": route.pk, "at": NOON}))
    client.rpush(OPENINGS_KEY, json.dumps({"route": route.pk, "at": NOON, "failures": 5}))

    assert drain(django_capture_on_commit_callbacks) == 1
    assert client.llen(OPENINGS_KEY) == 0


# --- The usage pipeline ------------------------------------------------------------------------
def test_a_usage_backlog_alerts_once_an_hour_while_it_lasts(
    eager, receiver, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.TOLLGATE = {**settings.TOLLGATE, "SPOOL_DIR": tmp_path}
    settings.TOLLGATE_ALERTS = {**settings.TOLLGATE_ALERTS, "BACKLOG_SPOOL_SECONDS": 60.0}
    hook(receiver.url)
    now = time.time()
    (tmp_path / "sent").mkdir()
    (tmp_path / "sent" / f"{int((now - 30) * 1e9):020d}-1-0.usage").write_bytes(b"")

    with django_capture_on_commit_callbacks(execute=True):
        assert checks.usage_backlog_check(now=now) == 0  # 30 s: within bounds
        (tmp_path / f"{int((now - 600) * 1e9):020d}-1-0.usage").write_bytes(b"")
        assert checks.usage_backlog_check(now=now) == 1
        assert checks.usage_backlog_check(now=now + 60) == 0
        assert checks.usage_backlog_check(now=now + 3600) == 1

    sent = bodies(receiver)
    assert [b["kind"] for b in sent] == ["usage_backlog", "usage_backlog"]
    assert sent[0]["details"]["oldest_spool_seconds"] == 600
    assert "waiting in the spool for 600 s" in sent[0]["title"]


def test_a_long_celery_queue_is_a_backlog(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.TOLLGATE = {**settings.TOLLGATE, "SPOOL_DIR": tmp_path}
    settings.TOLLGATE_ALERTS = {**settings.TOLLGATE_ALERTS, "BACKLOG_BATCHES": 3}
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    queue = redis.Redis.from_url(settings.REDIS_URL)
    name = celery_app.conf.task_default_queue
    queue.delete(name)
    try:
        queue.rpush(name, *[b"x"] * 3)
        assert checks.usage_backlog_check() == 0
        queue.rpush(name, b"x")
        assert checks.usage_backlog_check() == 1
    finally:
        queue.delete(name)
    assert Alert.objects.get().details["queued_messages"] == 4
