"""The platform usage view in a real browser: a platform admin finds it, switches to hours and
follows a tenant; a tenant owner finds neither the link nor the page."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.factories import UserFactory
from tests.integration.test_usage_task import record, run

SCREENSHOT = "/tmp/tollgate-platform-usage.png"


def seed(acme: dict) -> None:
    """acme: 3 requests an hour ago and 1 five hours ago; globex: 2, twenty hours ago."""
    now = time.time()
    key, other = acme["key"], acme["other_key"]
    run(
        [
            *(record(key, n, started_at=now - 3600 - n) for n in range(3)),
            record(key, 3, started_at=now - 5 * 3600, model="claude-other"),
            *(record(other, 10 + n, started_at=now - 20 * 3600 - n) for n in range(2)),
        ]
    )


def test_a_platform_admin_sees_every_tenant_per_day_and_per_hour(page: Page, acme):
    seed(acme)
    UserFactory(username="root", is_staff=True, is_superuser=True)
    log_in(page, "root")

    page.get_by_role("link", name="Platform usage").click()

    expect(page).to_have_url(re.compile(r"/platform/usage/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Platform usage")
    expect(page.locator(".tiles")).to_contain_text("6")
    tenants = page.locator("#by-tenant tbody tr")
    expect(tenants).to_have_count(2)
    expect(tenants.first).to_contain_text("acme")
    expect(tenants.first).to_contain_text("4")
    expect(page.locator("#chart-requests figcaption")).to_have_text("Requests per day, by tenant")

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    page.get_by_label("From", exact=True).fill(yesterday.isoformat())
    page.get_by_label("per", exact=True).select_option("hour")
    page.get_by_role("button", name="Show").click()

    expect(page).to_have_url(re.compile(r"granularity=hour"))
    chart = page.locator("#chart-requests")
    expect(chart.locator("figcaption")).to_have_text("Requests per hour, by tenant")
    # Yesterday and today: 48 hours, a point per hour for each tenant.
    expect(chart.locator("circle.point")).to_have_count(2 * 48)
    expect(chart.locator('g[data-series="acme"] circle.point[data-value="3"]')).to_have_count(1)
    expect(chart.locator('g[data-series="globex"] circle.point[data-value="2"]')).to_have_count(1)
    # A label is its <title> (the ISO instant) and its text: hours read "06:00".
    expect(chart.locator(".x-axis text").nth(1)).to_have_text(re.compile(r"T06:00:00\+00:0006:00$"))
    expect(page.locator("#by-model tbody tr")).to_have_count(2)
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.locator("#by-tenant").get_by_role("link", name="globex").click()

    expect(page).to_have_url(re.compile(r"/dashboard/globex/\?start="))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Globex")


def test_a_tenant_owner_finds_neither_the_link_nor_the_page(page: Page, acme):
    seed(acme)
    log_in(page, "alice")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Corp")
    expect(page.get_by_role("link", name="Platform usage")).to_have_count(0)
    response = page.goto("/platform/usage/")
    assert response is not None and response.status == 404
    expect(page.locator("body")).not_to_contain_text("globex")
