"""Alerts in a real browser: a platform admin adds a webhook channel in the admin, sends it a
test alert, and reads the delivery in the log; the local receiver checks the signature."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from gateway import celery_app
from tests.browser.conftest import PASSWORD
from tests.factories import UserFactory
from tests.integration.alert_receiver import Receiver, serve, verify

SECRET = "whsec-browser-0123456789abcdef"


@pytest.fixture
def receiver():
    found = Receiver()
    server = serve(found)
    yield found
    server.shutdown()
    server.server_close()


def test_an_admin_sets_up_a_webhook_sends_a_test_alert_and_reads_its_delivery(
    page: Page, settings, monkeypatch, receiver
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    settings.TOLLGATE_ALERTS = {**settings.TOLLGATE_ALERTS, "ALLOW_PRIVATE_URLS": True}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    UserFactory(username="root", is_staff=True, is_superuser=True)
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto("/admin/gateway/alertchannel/add/")
    page.get_by_label("Name").fill("ops")
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_label("Url").fill(receiver.url)
    page.get_by_label("Secret").fill(SECRET)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#result_list")).not_to_contain_text(SECRET)

    page.locator("#result_list input[name=_selected_action]").first.check()
    page.locator("select[name=action]").select_option("send_test_alert")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("Test alert queued to 1 channel")

    (call,) = receiver.calls
    assert verify(SECRET, call.body, call.headers["Tollgate-Signature"])
    page.goto("/admin/gateway/alertdelivery/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.locator("#result_list tbody tr a").first.click()
    expect(page.locator("#content")).to_contain_text("delivered")
    expect(page.locator("td.field-status_code").first).to_have_text("200")
    assert SECRET not in page.content()
