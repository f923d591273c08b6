"""Dashboards: who sees which page, what the pages and the CSV export say, and key management."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Membership
from gateway.models import UsageRecord
from tests.factories import (
    DailyUsageFactory,
    MembershipFactory,
    TenantFactory,
    UsageRecordFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")
TODAY = date(2026, 3, 15)


def tenant_pages(p) -> list[str]:
    """Every GET page of acme, including one of its objects."""
    return [
        "/dashboard/acme/",
        "/dashboard/acme/requests/",
        "/dashboard/acme/keys/",
        f"/dashboard/acme/keys/{p.key.pk}/",
        "/dashboard/acme/export.csv",
    ]


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def frozen_today(monkeypatch):
    """Pin "today" for the default range, so the expected numbers never straddle midnight."""
    monkeypatch.setattr(timezone, "now", lambda: at(TODAY, 15))
    return TODAY


def new_key_nonce(client, path="/dashboard/acme/keys/") -> str:
    return client.get(path).context["create_form"]["nonce"].value()


# --- Who may see what --------------------------------------------------------------------------


def test_root_redirects_to_the_dashboard(client):
    assert client.get("/").headers["Location"] == "/dashboard/"


def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, people):
    for path in ["/dashboard/", *tenant_pages(people)]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login/?next="), path


def test_outsider_gets_404_for_every_page_and_object_of_another_tenant(client, people):
    client.force_login(people.outsider)
    for path in [*tenant_pages(people), "/dashboard/?tenant=acme"]:
        assert client.get(path).status_code == 404, path
    # Another tenant's key is missing under the outsider's own tenant too.
    assert client.get(f"/dashboard/globex/keys/{people.key.pk}/").status_code == 404


def test_outsider_cannot_create_or_revoke_another_tenants_keys(client, people):
    client.force_login(people.outsider)

    created = client.post("/dashboard/acme/keys/", {"name": "sneaky", "nonce": "x"})
    revoked = client.post(f"/dashboard/acme/keys/{people.key.pk}/revoke/", {"confirm": "revoke"})
    revoked_via_own = client.post(
        f"/dashboard/globex/keys/{people.key.pk}/revoke/", {"confirm": "revoke"}
    )

    assert (created.status_code, revoked.status_code, revoked_via_own.status_code) == (404,) * 3
    assert not ApiKey.objects.filter(name="sneaky").exists()
    people.key.refresh_from_db()
    assert people.key.revoked_at is None


def test_the_404_page_does_not_name_the_tenant(client, people):
    client.force_login(people.outsider)

    response = client.get("/dashboard/acme/")

    assert b"Acme" not in response.content
    assert b"Not found" in response.content


def test_viewer_sees_every_page_of_their_tenant(client, people):
    client.force_login(people.viewer)
    for path in tenant_pages(people):
        assert client.get(path).status_code == 200, path


def test_viewer_cannot_create_or_revoke_keys(client, people):
    client.force_login(people.viewer)

    page = client.get("/dashboard/acme/keys/")
    created = client.post("/dashboard/acme/keys/", {"name": "mine", "nonce": "x"})
    revoked = client.post(f"/dashboard/acme/keys/{people.key.pk}/revoke/", {"confirm": "revoke"})

    assert page.context["create_form"] is None
    assert b"Create key" not in page.content and b">Revoke<" not in page.content
    assert (created.status_code, revoked.status_code) == (403, 403)
    assert not ApiKey.objects.filter(name="mine").exists()
    people.key.refresh_from_db()
    assert people.key.revoked_at is None


def test_member_of_one_tenant_goes_straight_to_it(client, people):
    client.force_login(people.owner)
    assert client.get("/dashboard/").headers["Location"] == "/dashboard/acme/"


def test_member_of_several_tenants_picks_one(client, people):
    MembershipFactory(user=people.viewer, tenant=people.other)
    client.force_login(people.viewer)

    picker = client.get("/dashboard/")
    chosen = client.get("/dashboard/?tenant=globex")

    assert [t.name for t in picker.context["tenants"]] == ["acme", "globex"]
    assert chosen.headers["Location"] == "/dashboard/globex/"


def test_staff_sees_every_tenant_and_its_pages(client, people):
    client.force_login(people.staff)

    picker = client.get("/dashboard/")

    assert {t.name for t in picker.context["tenants"]} == {"acme", "globex"}
    for path in tenant_pages(people):
        assert client.get(path).status_code == 200, path
    page = client.get("/dashboard/globex/")
    assert b'id="tenant-picker"' in page.content and b"platform admin" in page.content


def test_a_person_without_tenants_is_told_so(client, db):
    client.force_login(UserFactory(username="newcomer"))

    response = client.get("/dashboard/")

    assert response.status_code == 200
    assert b"not a member of any tenant" in response.content


def test_sign_in_and_sign_out(client, people):
    signed_in = client.post(
        "/login/", {"username": "olivia", "password": "correct horse battery staple"}
    )
    signed_out = client.post("/logout/")

    assert signed_in.headers["Location"] == "/dashboard/"
    assert signed_out.headers["Location"] == "/login/"
    assert client.get("/dashboard/acme/").status_code == 302


# --- What the pages say ----------------------------------------------------------------------


def test_overview_totals_and_latency_percentiles(client, people, frozen_today):
    DailyUsageFactory(tenant=people.tenant, day=TODAY, requests=8, errors=2, cost_usd=Decimal(2))
    DailyUsageFactory(tenant=people.tenant, day=TODAY - timedelta(days=1), requests=2, errors=0)
    for latency in (100, 200, 300, 400, 5000):
        UsageRecordFactory(tenant=people.tenant, latency_ms=latency, started_at=at(TODAY))
    UsageRecordFactory(tenant=people.tenant, latency_ms=1, status="error", started_at=at(TODAY))
    DailyUsageFactory(tenant=people.other, day=TODAY, requests=1000)  # another tenant's
    client.force_login(people.viewer)

    totals = client.get("/dashboard/acme/").context["overview"].totals

    assert (totals.requests, totals.errors, totals.error_rate) == (10, 2, 0.2)
    # percentile_cont over the five successful requests; the failed one is left out.
    assert totals.latency_p50_ms == 300
    assert totals.latency_p95_ms == pytest.approx(400 + 0.8 * 4600)


def test_overview_charts_have_a_point_per_day_and_a_legend_naming_each_model(
    client, people, frozen_today
):
    DailyUsageFactory(tenant=people.tenant, day=TODAY, model="claude-sonnet-4-5", requests=7)
    DailyUsageFactory(tenant=people.tenant, day=TODAY, model="claude-haiku-4-5", requests=3)
    client.force_login(people.owner)

    page = client.get("/dashboard/acme/").content.decode()
    requests_chart = page[page.index('id="chart-requests"') : page.index('id="chart-tokens"')]

    assert requests_chart.count('class="point"') == 2 * 30
    assert "<title>claude-sonnet-4-5, 2026-03-15: 7</title>" in requests_chart
    assert re.search(r'<ul class="legend".*claude-sonnet-4-5.*claude-haiku-4-5', requests_chart)
    assert 'role="img"' in requests_chart


def test_the_date_range_limits_every_number(client, people, frozen_today):
    DailyUsageFactory(tenant=people.tenant, day=date(2026, 1, 10), requests=5)
    DailyUsageFactory(tenant=people.tenant, day=date(2026, 1, 20), requests=7)
    client.force_login(people.owner)

    page = client.get("/dashboard/acme/?start=2026-01-15&end=2026-01-31")

    overview = page.context["overview"]
    assert (overview.period.start, overview.period.end) == (date(2026, 1, 15), date(2026, 1, 31))
    assert overview.totals.requests == 7
    assert b'value="2026-01-15"' in page.content


def test_the_default_range_is_the_last_30_days(client, people, frozen_today):
    client.force_login(people.owner)

    period = client.get("/dashboard/acme/").context["overview"].period

    assert (period.start, period.end) == (TODAY - timedelta(days=29), TODAY)


def test_a_backwards_range_is_reported_and_the_default_shown(client, people, frozen_today):
    client.force_login(people.owner)

    page = client.get("/dashboard/acme/?start=2026-02-10&end=2026-02-01")

    assert b"start must be on or before end" in page.content
    assert page.context["overview"].period.end == TODAY


def test_splitting_by_key_labels_series_by_key_prefix_and_name(client, people, frozen_today):
    DailyUsageFactory(tenant=people.tenant, day=TODAY, api_key=people.key)
    client.force_login(people.owner)

    page = client.get("/dashboard/acme/?by=key").content.decode()

    assert f"<title>{people.key.prefix} (ci), 2026-03-15: 10</title>" in page


def test_requests_page_is_paginated_newest_first(client, people):
    start = timezone.now() - timedelta(hours=2)
    for n in range(55):
        UsageRecordFactory(
            tenant=people.tenant, request_id=f"req_{n:03d}", started_at=start + timedelta(minutes=n)
        )
    UsageRecordFactory(tenant=people.other, request_id="req_globex")
    client.force_login(people.viewer)

    first = client.get("/dashboard/acme/requests/").context["page"]
    second = client.get("/dashboard/acme/requests/?page=2").context["page"]

    assert first.paginator.count == 55
    assert [r.request_id for r in first.object_list][:2] == ["req_054", "req_053"]
    assert [r.request_id for r in second.object_list] == [f"req_{n:03d}" for n in range(4, -1, -1)]


def test_key_page_shows_only_that_keys_usage(client, people, frozen_today):
    DailyUsageFactory(tenant=people.tenant, day=TODAY, api_key=people.key, requests=4)
    DailyUsageFactory(tenant=people.tenant, day=TODAY, requests=40)  # no key
    UsageRecordFactory(tenant=people.tenant, api_key=people.key, request_id="req_mine")
    UsageRecordFactory(tenant=people.tenant, request_id="req_not_mine")
    client.force_login(people.viewer)

    page = client.get(f"/dashboard/acme/keys/{people.key.pk}/")

    assert page.context["overview"].totals.requests == 4
    assert [r.request_id for r in page.context["recent"]] == ["req_mine"]
    assert "key" not in page.context["overview"].breakdowns


# --- CSV export ------------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_csv_export_has_a_line_per_day_model_key_and_provider(client, people):
    DailyUsageFactory(
        tenant=people.tenant,
        day=date(2026, 2, 1),
        api_key=people.key,
        model="claude-sonnet-4-5",
        provider="anthropic-main",
        requests=10,
        errors=1,
        input_tokens=1000,
        output_tokens=500,
        cost_usd=Decimal("0.0105"),
    )
    DailyUsageFactory(tenant=people.tenant, day=date(2026, 2, 2), model="claude-haiku-4-5")
    DailyUsageFactory(tenant=people.tenant, day=date(2026, 3, 1))  # outside the range
    DailyUsageFactory(tenant=people.other, day=date(2026, 2, 1), model="globex-model")
    for latency in (100, 300):
        UsageRecordFactory(
            tenant=people.tenant,
            api_key=people.key,
            model="claude-sonnet-4-5",
            provider="anthropic-main",
            latency_ms=latency,
            started_at=at(date(2026, 2, 1)),
        )
    client.force_login(people.viewer)

    response = client.get("/dashboard/acme/export.csv?start=2026-02-01&end=2026-02-28")
    rows = read_csv(response)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="tollgate-acme-2026-02-01-2026-02-28.csv"' in response["Content-Disposition"]
    assert [(r["day"], r["model"]) for r in rows] == [
        ("2026-02-01", "claude-sonnet-4-5"),
        ("2026-02-02", "claude-haiku-4-5"),
    ]
    assert rows[0] == {
        "day": "2026-02-01",
        "model": "claude-sonnet-4-5",
        "key_prefix": people.key.prefix,
        "key_name": "ci",
        "provider": "anthropic-main",
        "requests": "10",
        "errors": "1",
        "error_rate": "0.1000",
        "input_tokens": "1000",
        "output_tokens": "500",
        "cache_read_tokens": "0",
        "cache_write_tokens": "0",
        "cost_usd": "0.010500",
        "latency_p50_ms": "200.0",
        "latency_p95_ms": "290.0",
    }
    assert rows[1]["key_prefix"] == "" and rows[1]["latency_p50_ms"] == ""


def test_csv_export_defuses_spreadsheet_formulas_in_key_names(client, people):
    people.key.name = "=HYPERLINK(1)"
    people.key.save()
    DailyUsageFactory(tenant=people.tenant, day=date(2026, 2, 1), api_key=people.key)
    client.force_login(people.owner)

    rows = read_csv(client.get("/dashboard/acme/export.csv?start=2026-02-01&end=2026-02-01"))

    assert rows[0]["key_name"] == "'=HYPERLINK(1)"


def test_csv_export_refuses_a_bad_range(client, people):
    client.force_login(people.owner)

    response = client.get("/dashboard/acme/export.csv?start=2025-01-01&end=2026-12-31")

    assert response.status_code == 400
    assert b"at most 366 days" in response.content


# --- Keys --------------------------------------------------------------------------------------


def test_owner_creates_a_key_and_sees_its_secret_only_in_that_response(client, people):
    client.force_login(people.owner)
    nonce = new_key_nonce(client)

    created = client.post(
        "/dashboard/acme/keys/", {"name": "laptop", "expires_in_days": "30", "nonce": nonce}
    )
    secret = created.context["created_secret"]
    later = client.get("/dashboard/acme/keys/")

    key = ApiKey.objects.get(tenant=people.tenant, name="laptop")
    assert SECRET.fullmatch(secret) and key.secret_hash == keys.hash_secret(secret)
    assert secret.encode() in created.content
    assert created["Cache-Control"] == "no-store"
    assert key.expires_at is not None
    assert later.context["created_secret"] is None and secret.encode() not in later.content


def test_sending_the_same_new_key_form_twice_makes_one_key(client, people):
    client.force_login(people.owner)
    form = {"name": "twice", "nonce": new_key_nonce(client)}

    first = client.post("/dashboard/acme/keys/", form)
    again = client.post("/dashboard/acme/keys/", form)

    assert first.status_code == 200 and again.status_code == 302
    assert ApiKey.objects.filter(name="twice").count() == 1
    assert b"shown once" in client.get(again.headers["Location"]).content


def test_an_invalid_new_key_form_shows_its_errors_and_can_be_fixed(client, people):
    client.force_login(people.owner)
    nonce = new_key_nonce(client)

    bad = client.post("/dashboard/acme/keys/", {"expires_in_days": "0", "nonce": nonce})
    fixed = client.post("/dashboard/acme/keys/", {"expires_in_days": "7", "nonce": nonce})

    assert bad.status_code == 200 and bad.context["created_secret"] is None
    assert b"greater than or equal to 1" in bad.content
    assert SECRET.fullmatch(fixed.context["created_secret"])


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN])
def test_owners_and_admins_revoke_keys(client, people, role):
    client.force_login(people.owner if role == Membership.Role.OWNER else people.admin)

    response = client.post(f"/dashboard/acme/keys/{people.key.pk}/revoke/", {"confirm": "revoke"})

    assert response.headers["Location"] == "/dashboard/acme/keys/"
    people.key.refresh_from_db()
    assert people.key.revoked_at is not None


def test_staff_manage_any_tenants_keys(client, people):
    client.force_login(people.staff)

    client.post(f"/dashboard/globex/keys/{people.other_key.pk}/revoke/", {"confirm": "revoke"})

    people.other_key.refresh_from_db()
    assert people.other_key.revoked_at is not None


def test_revoking_needs_a_confirmed_post_with_a_csrf_token(people):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(people.owner)
    path = f"/dashboard/acme/keys/{people.key.pk}/revoke/"

    as_get = client.get(path, {"confirm": "revoke"})
    without_token = client.post(path, {"confirm": "revoke"})

    assert as_get.status_code == 200 and b"This cannot be undone" in as_get.content
    assert without_token.status_code == 403
    people.key.refresh_from_db()
    assert people.key.revoked_at is None


def test_keys_page_shows_each_keys_usage_in_the_range(client, people, frozen_today):
    DailyUsageFactory(tenant=people.tenant, day=TODAY, api_key=people.key, requests=12)
    client.force_login(people.viewer)

    listed = client.get("/dashboard/acme/keys/").context["keys"]

    assert [(item.key.pk, item.usage.requests) for item in listed] == [(people.key.pk, 12)]


def test_usage_of_other_tenants_never_reaches_a_page(client, people, frozen_today):
    DailyUsageFactory(tenant=people.other, day=TODAY, model="globex-secret-model")
    UsageRecordFactory(tenant=people.other, model="globex-secret-model")
    client.force_login(people.owner)

    for path in tenant_pages(people):
        assert b"globex-secret-model" not in client.get(path).content, path
    assert UsageRecord.objects.filter(model="globex-secret-model").exists()


def test_a_second_tenant_with_the_same_model_names_stays_apart(client, people, frozen_today):
    third = TenantFactory(name="initech")
    DailyUsageFactory(tenant=third, day=TODAY, requests=99)
    DailyUsageFactory(tenant=people.tenant, day=TODAY, requests=1)
    client.force_login(people.owner)

    assert client.get("/dashboard/acme/").context["overview"].totals.requests == 1


# --- Platform staff: the admin's permissions, no more ------------------------------------------


def test_staff_without_permissions_see_no_other_tenant(client, people):
    client.force_login(people.bare_staff)

    picker = client.get("/dashboard/")

    assert list(picker.context["tenants"]) == []
    for path in tenant_pages(people):
        assert client.get(path).status_code == 404, path
    assert client.get("/dashboard/?tenant=acme").status_code == 404


def test_staff_without_permissions_cannot_create_revoke_or_limit_keys(client, people):
    client.force_login(people.bare_staff)

    created = client.post("/dashboard/globex/keys/", {"name": "sneaky", "nonce": "x"})
    revoked = client.post(
        f"/dashboard/globex/keys/{people.other_key.pk}/revoke/", {"confirm": "revoke"}
    )
    limited = client.post(f"/dashboard/globex/keys/{people.other_key.pk}/limits/", {"rpm": 1})

    assert [r.status_code for r in (created, revoked, limited)] == [404, 404, 404]
    people.other_key.refresh_from_db()
    assert people.other_key.revoked_at is None and people.other_key.rpm is None


def test_staff_who_may_only_see_tenants_get_usage_but_not_keys(client, people):
    from tests.integration.conftest import platform_admin

    client.force_login(platform_admin("vera", permissions=("view_tenant",)))

    overview = client.get("/dashboard/globex/")
    keys_page = client.get("/dashboard/globex/keys/")
    key_page = client.get(f"/dashboard/globex/keys/{people.other_key.pk}/")
    revoked = client.post(
        f"/dashboard/globex/keys/{people.other_key.pk}/revoke/", {"confirm": "revoke"}
    )

    assert overview.status_code == 200
    assert [r.status_code for r in (keys_page, key_page, revoked)] == [403, 403, 403]
    people.other_key.refresh_from_db()
    assert people.other_key.revoked_at is None


def test_staff_who_may_view_keys_see_them_without_the_forms_to_change_them(client, people):
    from tests.integration.conftest import platform_admin

    client.force_login(platform_admin("viv", permissions=("view_tenant", "view_apikey")))

    keys_page = client.get("/dashboard/globex/keys/")
    revoked = client.post(
        f"/dashboard/globex/keys/{people.other_key.pk}/revoke/", {"confirm": "revoke"}
    )

    assert keys_page.status_code == 200
    assert keys_page.context["create_form"] is None
    assert keys_page.context["can_manage_keys"] is False
    assert revoked.status_code == 403


# --- Hostile parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("query", [{"end": "9999-12-31"}, {"end": "0001-01-05"}])
def test_dates_at_the_calendars_edge_are_a_form_error_not_a_500(client, people, query):
    client.force_login(people.viewer)

    for path in tenant_pages(people)[:-1]:
        response = client.get(path, query)
        assert response.status_code == 200, path
        assert b"dates must lie between 1970-01-01 and 9999-12-30" in response.content
    export = client.get("/dashboard/acme/export.csv", query)
    assert export.status_code == 400


@pytest.mark.parametrize("name", ["\x00", "caf\xe9", "a" * 65])
def test_the_tenant_picker_answers_a_name_no_tenant_can_have_with_a_404(client, people, name):
    client.force_login(people.staff)

    assert client.get("/dashboard/", {"tenant": name}).status_code == 404
