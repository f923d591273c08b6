"""Alert delivery: signed webhooks to a local receiver, retries with backoff, giving up, email,
the SSRF guard, deduplication, and secrets kept out of logs and admin pages."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta

import pytest
from django.core import mail

from gateway import celery_app
from gateway.alerts import webhooks
from gateway.alerts.delivery import backoff_seconds
from gateway.alerts.models import AlertChannel, AlertDelivery, AlertKind
from gateway.alerts.services import alert_raise
from gateway.alerts.tasks import sweep_deliveries
from tests.factories import TenantFactory
from tests.integration.alert_receiver import Receiver, serve, verify

pytestmark = pytest.mark.django_db
SECRET = "whsec-test-0123456789abcdef-SECRET"


@pytest.fixture
def eager(monkeypatch, settings):
    """Celery runs tasks (and their retries, at once) in the caller."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def alerts_conf(settings):
    settings.TOLLGATE_ALERTS = {**settings.TOLLGATE_ALERTS, "ALLOW_PRIVATE_URLS": True}
    return settings


@pytest.fixture
def receiver():
    found = Receiver()
    server = serve(found)
    yield found
    server.shutdown()
    server.server_close()


def webhook(url: str, tenant=None, **fields) -> AlertChannel:
    channel = AlertChannel(tenant=tenant, name=fields.pop("name", "ops"), kind="webhook", url=url)
    for name, value in fields.items():
        setattr(channel, name, value)
    channel.set_secret(SECRET)
    channel.save()
    return channel


def raise_budget_alert(tenant, capture, threshold=80, period="m2026-11"):
    with capture(execute=True):
        return alert_raise(
            kind=AlertKind.BUDGET,
            subject=f"tenant:{tenant.pk}",
            tenant_id=tenant.pk,
            threshold=threshold,
            period=period,
            title=f"Tenant {tenant.name} has used {threshold}% of its monthly budget",
            details={"percent": threshold},
        )


def test_a_webhook_receives_the_alert_signed_and_the_documented_check_accepts_it(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks
):
    tenant = TenantFactory(name="acme")
    webhook(receiver.url, tenant=tenant)

    alert = raise_budget_alert(tenant, django_capture_on_commit_callbacks)

    [call] = receiver.calls
    assert call.path == "/hooks/tollgate"
    assert verify(SECRET, call.body, call.headers["Tollgate-Signature"])
    assert not verify("another-secret-entirely", call.body, call.headers["Tollgate-Signature"])
    assert not verify(SECRET, call.body + b" ", call.headers["Tollgate-Signature"])
    body = json.loads(call.body)
    assert body["id"] == str(alert.uid) and call.headers["Tollgate-Alert"] == str(alert.uid)
    assert body["kind"] == "budget_threshold" == call.headers["Tollgate-Event"]
    assert (body["tenant"], body["threshold"], body["period"]) == ("acme", 80, "m2026-11")
    assert call.headers["Content-Type"] == "application/json"
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.attempt_count == 1
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 200 and attempt.error == "" and attempt.next_retry_at is None


def test_an_old_signature_is_refused_as_a_replay():
    body = b'{"kind":"test"}'
    header = webhooks.signature(SECRET, body, 1_000_000_000)  # 2001

    assert not verify(SECRET, body, header)
    assert verify(SECRET, body, header, tolerance=10**10)


def test_a_500_is_retried_with_exponential_backoff_then_delivered(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [500, 502, 200]
    tenant = TenantFactory()
    webhook(receiver.url, tenant=tenant)

    raise_budget_alert(tenant, django_capture_on_commit_callbacks)

    assert len(receiver.calls) == 3
    assert len({c.headers["Tollgate-Alert"] for c in receiver.calls}) == 1  # one alert, 3 tries
    assert all(verify(SECRET, c.body, c.headers["Tollgate-Signature"]) for c in receiver.calls)
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.attempt_count == 3
    attempts = list(delivery.attempts.all())
    assert [a.status_code for a in attempts] == [500, 502, 200]
    assert [a.error for a in attempts] == ["HTTP 500", "HTTP 502", ""]
    waits = [(a.next_retry_at - a.at).total_seconds() for a in attempts[:2]]
    assert waits == [30.0, 60.0] == [backoff_seconds(1), backoff_seconds(2)]
    assert attempts[2].next_retry_at is None
    assert all(a.latency_ms > 0 for a in attempts)


def test_backoff_doubles_up_to_its_cap(settings):
    settings.TOLLGATE_ALERTS = {
        **settings.TOLLGATE_ALERTS,
        "RETRY_SECONDS": 10.0,
        "RETRY_MAX_SECONDS": 50.0,
    }
    assert [backoff_seconds(n) for n in range(1, 6)] == [10, 20, 40, 50, 50]


def test_a_delivery_is_given_up_after_max_attempts_and_the_log_says_so(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks, caplog
):
    alerts_conf.TOLLGATE_ALERTS = {**alerts_conf.TOLLGATE_ALERTS, "MAX_ATTEMPTS": 3}
    receiver.statuses = [503]
    tenant = TenantFactory()
    webhook(receiver.url, tenant=tenant, name="pager")

    with caplog.at_level(logging.WARNING, logger="tollgate.alerts"):
        raise_budget_alert(tenant, django_capture_on_commit_callbacks)

    assert len(receiver.calls) == 3
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed" and delivery.finished_at is not None
    attempts = list(delivery.attempts.all())
    assert [a.status_code for a in attempts] == [503, 503, 503]
    assert attempts[-1].next_retry_at is None and attempts[0].next_retry_at is not None
    assert "given up after 3 attempt(s): HTTP 503" in caplog.text
    assert "pager" in caplog.text


def test_a_4xx_answer_is_not_retried(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks
):
    receiver.statuses = [410]
    tenant = TenantFactory()
    webhook(receiver.url, tenant=tenant)

    raise_budget_alert(tenant, django_capture_on_commit_callbacks)

    assert len(receiver.calls) == 1
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempt_count == 1


def test_a_duplicate_task_message_sends_nothing_more(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks
):
    from gateway.alerts.tasks import deliver_alert

    tenant = TenantFactory()
    webhook(receiver.url, tenant=tenant)
    raise_budget_alert(tenant, django_capture_on_commit_callbacks)
    delivery = AlertDelivery.objects.get()

    deliver_alert.apply(args=[delivery.pk, 1])  # redelivered by the broker
    deliver_alert.apply(args=[delivery.pk, 2])  # a retry of a delivered alert

    assert len(receiver.calls) == 1
    assert delivery.attempts.count() == 1


def test_raising_the_same_alert_twice_sends_it_once(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks
):
    tenant = TenantFactory()
    webhook(receiver.url, tenant=tenant)

    first = raise_budget_alert(tenant, django_capture_on_commit_callbacks)
    again = raise_budget_alert(tenant, django_capture_on_commit_callbacks)
    next_period = raise_budget_alert(tenant, django_capture_on_commit_callbacks, period="m2026-12")

    assert first is not None and again is None and next_period is not None
    assert len(receiver.calls) == 2


def test_an_email_channel_sends_through_django_mail(eager, django_capture_on_commit_callbacks):
    tenant = TenantFactory(name="acme")
    AlertChannel.objects.create(
        tenant=tenant, name="finance", kind="email", emails="a@acme.test, b@acme.test"
    )

    raise_budget_alert(tenant, django_capture_on_commit_callbacks)

    [message] = mail.outbox
    assert message.to == ["a@acme.test", "b@acme.test"]
    assert message.subject == "[Tollgate] Tenant acme has used 80% of its monthly budget"
    assert "period: m2026-11" in message.body and "tenant: acme" in message.body
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "delivered"


def test_a_tenant_alert_reaches_its_channels_and_platform_ones_taking_all_tenants_only(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks
):
    acme, globex = TenantFactory(), TenantFactory()
    webhook(receiver.url, tenant=acme, name="acme-hook")
    webhook(receiver.url, tenant=globex, name="globex-hook")
    webhook(receiver.url, name="platform-all", all_tenants=True)
    webhook(receiver.url, name="platform-own")  # breakers and backlog only
    webhook(receiver.url, tenant=acme, name="acme-keys-only", kinds=["key_expiring"])
    webhook(receiver.url, tenant=acme, name="acme-off", enabled=False)

    raise_budget_alert(acme, django_capture_on_commit_callbacks)

    names = set(AlertDelivery.objects.values_list("channel_name", flat=True))
    assert names == {"acme-hook", "platform-all"}
    assert len(receiver.calls) == 2


# --- SSRF --------------------------------------------------------------------------------------
def test_a_webhook_to_loopback_is_refused_by_default(
    eager, settings, receiver, django_capture_on_commit_callbacks
):
    assert settings.TOLLGATE_ALERTS["ALLOW_PRIVATE_URLS"] is False
    tenant = TenantFactory()
    webhook(receiver.url, tenant=tenant)

    raise_budget_alert(tenant, django_capture_on_commit_callbacks)

    assert receiver.calls == []
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempt_count == 1  # never retried
    assert "private address" in delivery.attempts.get().error


def test_a_name_resolving_to_a_private_address_is_refused_when_connecting(
    eager, settings, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    """DNS rebinding: the name looked public when saved, it resolves to loopback when called."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "hooks.example.com":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", resolve)
    tenant = TenantFactory()
    webhook(f"http://hooks.example.com:{port}/x", tenant=tenant)

    raise_budget_alert(tenant, django_capture_on_commit_callbacks)

    assert receiver.calls == []
    attempt = AlertDelivery.objects.get().attempts.get()
    assert attempt.error == "hooks.example.com resolves to a private address; refused"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8000/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "https://user:pw@hooks.example.com/x",
    ],
)
def test_private_or_odd_webhook_urls_are_refused(url):
    assert webhooks.url_problem(url, allow_private=False) is not None


def test_a_public_webhook_url_is_accepted():
    assert webhooks.url_problem("https://hooks.example.com/x?k=1", allow_private=False) is None
    assert webhooks.url_problem("https://8.8.8.8/x", allow_private=False) is None


# --- Lost messages -----------------------------------------------------------------------------
def test_the_sweep_sends_a_delivery_whose_message_was_lost(
    eager, alerts_conf, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    from gateway.alerts import tasks

    tenant = TenantFactory()
    webhook(receiver.url, tenant=tenant)
    monkeypatch.setattr(tasks.deliver_alert, "delay", lambda *a: None)  # the broker lost it
    raise_budget_alert(tenant, django_capture_on_commit_callbacks)
    monkeypatch.undo()
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    AlertDelivery.objects.update(created_at=AlertDelivery.objects.get().created_at - timedelta(1))

    assert sweep_deliveries.apply().get() == 1

    assert len(receiver.calls) == 1
    assert AlertDelivery.objects.get().status == "delivered"
    assert sweep_deliveries.apply().get() == 0


def test_a_receiver_trickling_its_answer_is_cut_at_the_webhook_timeout(
    eager, alerts_conf, django_capture_on_commit_callbacks
):
    """Each byte arrives within the per-read timeout; the whole call still ends on time."""
    import socketserver
    import threading
    import time as clock

    class Trickle(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                clock.sleep(0.1)
                try:
                    self.request.sendall(bytes([byte]))
                except OSError:
                    return

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    alerts_conf.TOLLGATE_ALERTS = {
        **alerts_conf.TOLLGATE_ALERTS,
        "WEBHOOK_TIMEOUT_SECONDS": 0.5,
        "MAX_ATTEMPTS": 1,
    }
    tenant = TenantFactory()
    webhook(f"http://127.0.0.1:{server.server_address[1]}/slow", tenant=tenant)
    try:
        started = clock.monotonic()
        raise_budget_alert(tenant, django_capture_on_commit_callbacks)
        took = clock.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()

    attempt = AlertDelivery.objects.get().attempts.get()
    assert attempt.error == "timed out after 0.5 s" and attempt.status_code is None
    assert took < 2.0  # not the 3.8 s the trickle takes


def test_a_key_name_with_line_breaks_cannot_break_the_email_headers(
    eager, django_capture_on_commit_callbacks
):
    tenant = TenantFactory(name="acme")
    AlertChannel.objects.create(tenant=tenant, name="finance", kind="email", emails="a@acme.test")

    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(
            kind=AlertKind.KEY_EXPIRING,
            subject="key:1",
            tenant_id=tenant.pk,
            period="2026-12-10T00:00:00Z",
            title="API key evil\r\nBcc: victim@example.test (tg_x…) of acme expires in 3 days",
        )

    [message] = mail.outbox
    assert message.to == ["a@acme.test"] and message.bcc == []
    assert "\n" not in message.subject and "\r" not in message.subject
    assert AlertDelivery.objects.get().status == "delivered"


def test_the_sweep_finishes_a_delivery_whose_worker_died_mid_attempt(
    eager, alerts_conf, receiver, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    tenant = TenantFactory()
    channel = webhook(receiver.url, tenant=tenant)
    with django_capture_on_commit_callbacks(execute=False):  # nothing queued
        alert = alert_raise(kind=AlertKind.TEST, subject="x", title="t", channels=[channel])
    # Attempt 1 was claimed, then its worker was killed: no attempt logged, the lease ran out.
    AlertDelivery.objects.filter(alert=alert, channel=channel).update(
        attempt_count=1, next_retry_at=timezone.now() - timedelta(minutes=10)
    )

    assert sweep_deliveries.apply().get() == 1

    delivery = AlertDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.attempt_count == 2
    assert [a.number for a in delivery.attempts.all()] == [2]
    assert len(receiver.calls) == 1
