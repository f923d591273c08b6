"""Alerts in the admin: channels with a write-only secret and a URL checked against SSRF,
policies refusing garbage, and the delivery log, none of which ever shows a secret."""

from __future__ import annotations

import logging

import pytest

from gateway import celery_app
from gateway.alerts.models import AlertChannel, AlertDelivery, AlertPolicy
from tests.factories import TenantFactory
from tests.integration.alert_receiver import Receiver, serve, verify

pytestmark = pytest.mark.django_db
SECRET = "whsec-admin-SECRET-0123456789abcdef"
ADD = "/admin/gateway/alertchannel/add/"


def channel_form(**fields) -> dict:
    return {
        "name": "ops",
        "kind": "webhook",
        "url": "https://hooks.example.com/tollgate",
        "secret": SECRET,
        "emails": "",
        "enabled": "on",
        **fields,
    }


@pytest.fixture
def receiver():
    found = Receiver()
    server = serve(found)
    yield found
    server.shutdown()
    server.server_close()


def test_a_webhook_secret_is_stored_encrypted_and_never_shown_again(admin_client):
    tenant = TenantFactory()

    response = admin_client.post(ADD, channel_form(tenant=tenant.pk))

    assert response.status_code == 302, response.content.decode()[:2000]
    channel = AlertChannel.objects.get()
    assert channel.secret == SECRET and SECRET not in channel.secret_encrypted
    for page in (
        f"/admin/gateway/alertchannel/{channel.pk}/change/",
        "/admin/gateway/alertchannel/",
    ):
        body = admin_client.get(page).content.decode()
        assert SECRET not in body and channel.secret_encrypted not in body
    assert "hooks.example.com" in admin_client.get("/admin/gateway/alertchannel/").content.decode()


def test_an_empty_secret_on_change_keeps_the_stored_one(admin_client):
    admin_client.post(ADD, channel_form())
    channel = AlertChannel.objects.get()

    response = admin_client.post(
        f"/admin/gateway/alertchannel/{channel.pk}/change/", channel_form(secret="", name="ops2")
    )

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "ops2" and channel.secret == SECRET


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"secret": ""}, "A webhook channel needs a signing secret."),
        ({"secret": "short"}, "at least 16 characters"),
        ({"url": ""}, "A webhook channel needs its URL."),
        ({"url": "http://127.0.0.1:8000/x"}, "may not point to a private address"),
        ({"url": "http://169.254.169.254/latest/"}, "may not point to a private address"),
        ({"url": "http://localhost/x"}, "may not point to this machine"),
        ({"kind": "email", "emails": ""}, "An email channel needs at least one address."),
        ({"kind": "email", "emails": "ops@example.test, not-an-address"}, "valid email"),
    ],
)
def test_the_channel_form_refuses(admin_client, fields, error):
    response = admin_client.post(ADD, channel_form(**fields))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not AlertChannel.objects.exists()


def test_loopback_webhooks_are_accepted_only_when_the_platform_allows_them(admin_client, settings):
    settings.TOLLGATE_ALERTS = {**settings.TOLLGATE_ALERTS, "ALLOW_PRIVATE_URLS": True}

    response = admin_client.post(ADD, channel_form(url="http://127.0.0.1:8000/x"))

    assert response.status_code == 302


def test_only_a_platform_channel_takes_all_tenants(admin_client):
    response = admin_client.post(ADD, channel_form(tenant=TenantFactory().pk, all_tenants="on"))

    assert "Only a platform channel (no tenant) takes all tenants." in response.content.decode()


@pytest.mark.parametrize(
    "value", ['"50,80"', "[true]", "[0]", "[5000]", '{"a": 1}', '["50"]', "[50.5]"]
)
def test_a_policy_refuses_thresholds_that_are_not_percentages(admin_client, value):
    tenant = TenantFactory()

    response = admin_client.post(
        "/admin/gateway/alertpolicy/add/",
        {"tenant": tenant.pk, "budget_thresholds": value, "key_expiry_days": ""},
    )

    assert response.status_code == 200
    assert "A list of percentages from 1 to 1000" in response.content.decode()
    assert not AlertPolicy.objects.exists()


def test_a_policy_keeps_its_thresholds_sorted_once_each(admin_client):
    tenant = TenantFactory()

    admin_client.post(
        "/admin/gateway/alertpolicy/add/",
        {"tenant": tenant.pk, "budget_thresholds": "[90, 25, 90]", "key_expiry_days": "14"},
    )

    policy = AlertPolicy.objects.get()
    assert policy.budget_thresholds == [25, 90] and policy.key_expiry_days == 14


def test_the_test_alert_action_reaches_the_receiver_and_the_log_shows_every_attempt_but_no_secret(
    admin_client, settings, receiver, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    settings.TOLLGATE_ALERTS = {
        **settings.TOLLGATE_ALERTS,
        "ALLOW_PRIVATE_URLS": True,
        "MAX_ATTEMPTS": 2,
    }
    receiver.statuses = [500]
    admin_client.post(ADD, channel_form(url=receiver.url))
    channel = AlertChannel.objects.get()

    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/gateway/alertchannel/",
            {"action": "send_test_alert", "_selected_action": [channel.pk]},
        )

    assert len(receiver.calls) == 2
    assert all(verify(SECRET, c.body, c.headers["Tollgate-Signature"]) for c in receiver.calls)
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "failed"
    page = admin_client.get(f"/admin/gateway/alertdelivery/{delivery.pk}/change/").content
    page = page.decode()
    assert "HTTP 500" in page and "Failed (given up)" in page
    alert_page = admin_client.get(f"/admin/gateway/alert/{delivery.alert_id}/change/").content
    assert b"Test alert to ops" in alert_page
    assert "given up" in caplog.text
    for text in (page, alert_page.decode(), caplog.text):
        assert SECRET not in text


def test_channel_changes_are_audited_without_the_secret(admin_client):
    from accounts.models import AuditEntry

    admin_client.post(ADD, channel_form())
    channel = AlertChannel.objects.get()
    admin_client.post(
        f"/admin/gateway/alertchannel/{channel.pk}/change/",
        channel_form(secret="a-brand-new-secret-0123456789"),
    )

    created, replaced = AuditEntry.objects.filter(object_type="alert_channel").order_by("id")
    assert created.action == "create" and created.after["secret"] == "set"
    assert created.after["url"] == "https://hooks.example.com/tollgate"
    assert replaced.action == "update"
    assert replaced.before == {"secret": "set"} and replaced.after == {"secret": "replaced"}
    for entry in (created, replaced):
        text = str(entry.before) + str(entry.after)
        assert SECRET not in text and "a-brand-new-secret" not in text
        assert channel.secret_encrypted not in text
