"""The dashboards in a real browser: sign-in, charts drawn from real rows, keys, isolation."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from accounts import keys
from accounts.models import ApiKey
from tests.browser.conftest import log_in
from tests.factories import seed_usage

SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")
SCREENSHOT = "/tmp/tollgate-dashboard.png"


def test_signing_in_lands_on_the_tenants_dashboard(page: Page, acme):
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/dashboard/$"))

    log_in(page, "alice")

    expect(page).to_have_url(re.compile(r"/dashboard/acme/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Corp")
    expect(page.locator(".who")).to_contain_text("alice · owner")


def test_wrong_password_is_refused(page: Page, acme):
    page.goto("/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("[role=alert]")).to_contain_text("correct username and password")
    expect(page).to_have_url(re.compile(r"/login/$"))


def test_charts_draw_the_seeded_usage_with_a_legend_naming_the_models(page: Page, acme):
    seed_usage(acme["tenant"], key=acme["key"], models=("claude-sonnet-4-5", "claude-haiku-4-5"))
    log_in(page, "alice")

    requests_chart = page.locator("#chart-requests")
    expect(requests_chart.locator("svg[role=img] title").first).to_have_text(
        "Requests per day, by model"
    )
    # 30 days shown; each model has a point per day (zero on the days before the seed).
    expect(requests_chart.locator("circle.point")).to_have_count(2 * 30)
    expect(requests_chart.locator(".series path").first).to_have_attribute("d", re.compile("L"))
    legend = requests_chart.locator(".legend")
    expect(legend).to_contain_text("claude-sonnet-4-5")
    expect(legend).to_contain_text("claude-haiku-4-5")
    point = requests_chart.locator('g[data-series="claude-haiku-4-5"] circle.point').last
    expect(point.locator("title")).to_have_text(
        re.compile(r"claude-haiku-4-5, \d{4}-\d\d-\d\d: 40")
    )
    expect(page.locator("#chart-latency .legend")).to_contain_text("p95")
    expect(page.locator("#chart-latency circle.point")).to_have_count(2 * 14)
    expect(page.locator("svg.chart-svg")).to_have_count(5)
    expect(page.locator("#by-model tbody tr")).to_have_count(2)
    expect(page.locator(".tiles")).to_contain_text("Latency p95")

    page.screenshot(path=SCREENSHOT, full_page=True)


def test_a_new_keys_secret_is_shown_once_and_not_after_a_reload(page: Page, acme):
    log_in(page, "alice")
    page.get_by_role("link", name="Keys").click()

    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()

    secret = page.locator("#new-secret").inner_text()
    assert SECRET.fullmatch(secret)
    key = ApiKey.objects.get(tenant=acme["tenant"], name="laptop")
    assert key.secret_hash == keys.hash_secret(secret)
    expect(page.locator("tr.fresh")).to_contain_text(key.prefix)

    page.reload()

    expect(page.locator("table.keys")).to_contain_text("laptop")
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content()
    assert ApiKey.objects.filter(tenant=acme["tenant"], name="laptop").count() == 1


def test_owner_revokes_a_key_from_the_keys_page(page: Page, acme):
    log_in(page, "alice")
    page.goto("/dashboard/acme/keys/")

    page.get_by_role("link", name=f"Revoke {acme['key'].prefix}").click()
    expect(page.get_by_role("heading", level=2)).to_have_text("This cannot be undone")
    page.get_by_role("button", name=f"Revoke {acme['key'].prefix}").click()

    expect(page.locator(".messages")).to_contain_text(f"Key {acme['key'].prefix}… revoked")
    acme["key"].refresh_from_db()
    assert acme["key"].revoked_at is not None


def test_owner_sets_a_keys_limits_and_sees_them_applied(page: Page, acme):
    log_in(page, "alice")
    page.goto(f"/dashboard/acme/keys/{acme['key'].pk}/")

    page.get_by_label("Requests per minute").fill("120")
    page.get_by_label("Budget (USD)").fill("40")
    page.get_by_label("Budget period").select_option("daily")
    page.get_by_role("button", name="Save limits").click()

    expect(page.locator(".messages")).to_contain_text("Limits of")
    expect(page.locator("dl.limits")).to_contain_text("120 requests/min")
    expect(page.get_by_text("$0.00 of $40.00 spent this day")).to_be_visible()
    acme["key"].refresh_from_db()
    assert (acme["key"].rpm, acme["key"].budget_period) == (120, "daily")


def test_a_viewer_sees_keys_but_no_create_or_revoke_controls(page: Page, acme):
    log_in(page, "victor")
    page.goto("/dashboard/acme/keys/")

    expect(page.locator("table.keys")).to_contain_text(acme["key"].prefix)
    expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Revoke"))).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^Revoke"))).to_have_count(0)


def test_another_tenants_pages_are_not_found(page: Page, acme):
    log_in(page, "bob")
    expect(page).to_have_url(re.compile(r"/dashboard/globex/$"))

    for path in (
        "/dashboard/acme/",
        "/dashboard/acme/keys/",
        "/dashboard/acme/requests/",
        f"/dashboard/acme/keys/{acme['key'].pk}/",
        f"/dashboard/globex/keys/{acme['key'].pk}/",
        "/dashboard/acme/export.csv",
        "/dashboard/acme/members/",
        f"/dashboard/acme/keys/{acme['key'].pk}/revoke/",
        "/dashboard/?tenant=acme",
    ):
        response = page.goto(path)
        assert response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
