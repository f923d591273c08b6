"""The platform usage view (dashboard page, CSV, REST): every tenant's usage per day or hour from
the roll-ups, for platform admins only; members, outsiders and bare staff find nothing there."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from tests.integration.test_usage_task import record, run

pytestmark = pytest.mark.django_db
with_keys = pytest.mark.django_db(transaction=True)

# Two days of traffic: acme at 09:10, 09:50 and 10:05 on the 1st and 08:00 on the 2nd; globex
# at 09:30 on the 1st and 23:59 on the 2nd.
DAY1 = datetime(2026, 11, 1, tzinfo=UTC)
RANGE = "start=2026-11-01&end=2026-11-02"
PAGES = ["/platform/usage/", "/platform/usage.csv"]


def at(hours: float) -> float:
    return (DAY1 + timedelta(hours=hours)).timestamp()


@pytest.fixture
def traffic(people):
    acme, globex = people.key, people.other_key
    run(
        [
            record(acme, 1, started_at=at(9 + 10 / 60), input_tokens=10),
            record(acme, 2, started_at=at(9 + 50 / 60), input_tokens=20, model="claude-b"),
            record(acme, 3, started_at=at(10 + 5 / 60), input_tokens=40, status="error"),
            record(acme, 4, started_at=at(24 + 8), input_tokens=80),
            record(globex, 5, started_at=at(9.5), input_tokens=1000, provider="backup"),
            record(globex, 6, started_at=at(47 + 59 / 60), input_tokens=2000),
            record(acme, 7, started_at=at(9), endpoint="count_tokens", input_tokens=99999),
        ]
    )
    return people


def rest(api: APIClient, query: str) -> list[dict]:
    response = api.get(f"/api/v1/platform/usage?{RANGE}&{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- Who may see it ----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login/?next=/platform/usage"), path


def test_tenant_members_outsiders_and_bare_staff_find_no_such_page(client, people):
    for user in (people.owner, people.viewer, people.outsider, people.bare_staff):
        client.force_login(user)
        for path in PAGES:
            assert client.get(path).status_code == 404, (user.username, path)
        assert b"Platform usage" not in client.get("/dashboard/").content


def test_platform_admins_see_every_tenant(client, traffic):
    client.force_login(traffic.staff)

    response = client.get(f"/platform/usage/?{RANGE}")

    assert response.status_code == 200
    overview = response.context["overview"]
    assert overview.totals.requests == 6  # the token count is not a request
    assert overview.totals.input_tokens == 3150
    assert {row.tenant_name: row.requests for row in overview.breakdowns["tenant"]} == {
        "acme": 4,
        "globex": 2,
    }
    assert b"Platform usage" in client.get("/dashboard/").content


def test_rest_refuses_anyone_but_platform_admins(people):
    api = APIClient()
    anonymous = api.get("/api/v1/platform/usage")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    for user in (people.owner, people.outsider, people.bare_staff):
        api.force_login(user)
        response = api.get("/api/v1/platform/usage")
        assert response.status_code == 403, user.username
        assert "Platform admins only" in response.json()["detail"]


@with_keys
def test_rest_refuses_tenant_keys(people):
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=people.key.secret)

    assert api.get("/api/v1/platform/usage").status_code == 403


# --- What it shows -----------------------------------------------------------------------------


def test_daily_rows_per_tenant_sum_the_records(traffic):
    api = APIClient()
    api.force_login(traffic.staff)

    rows = rest(api, "group_by=time,tenant")

    assert [(r["time"], r["tenant"], r["requests"], r["input_tokens"]) for r in rows] == [
        ("2026-11-01T00:00:00Z", "acme", 3, 70),
        ("2026-11-01T00:00:00Z", "globex", 1, 1000),
        ("2026-11-02T00:00:00Z", "acme", 1, 80),
        ("2026-11-02T00:00:00Z", "globex", 1, 2000),
    ]
    assert rows[0]["errors"] == 1
    assert Decimal(rows[0]["cost_usd"]) == 3 * Decimal("0.000600001")


def test_hourly_rows_split_the_day_at_each_hour(traffic):
    api = APIClient()
    api.force_login(traffic.staff)

    rows = rest(api, "granularity=hour&group_by=time")

    assert [(r["time"], r["requests"], r["input_tokens"]) for r in rows] == [
        ("2026-11-01T09:00:00Z", 3, 1030),
        ("2026-11-01T10:00:00Z", 1, 40),
        ("2026-11-02T08:00:00Z", 1, 80),
        ("2026-11-02T23:00:00Z", 1, 2000),
    ]
    by_key = rest(api, "granularity=hour&group_by=tenant,key,model,provider&tenant=acme")
    assert {(r["key_prefix"], r["model"], r["requests"]) for r in by_key} == {
        (traffic.key.prefix, "claude-test", 3),
        (traffic.key.prefix, "claude-b", 1),
    }
    assert {r["key_name"] for r in by_key} == {"ci"}
    totals = rest(api, "granularity=hour&group_by=")
    assert [(r["time"], r["requests"]) for r in totals] == [(None, 6)]


def test_rest_names_what_it_refuses(people):
    api = APIClient()
    api.force_login(people.staff)
    refused = {
        "group_by=tenant,colour": "unknown: colour",
        "granularity=minute": "minute",
        "granularity=hour&start=2026-01-01&end=2026-03-01": "at most 31 days",
        "start=2026-03-01&end=2026-01-01": "start must be on or before end",
        "tenant=../etc": "slug",
    }
    for query, reason in refused.items():
        response = api.get(f"/api/v1/platform/usage?{query}")
        assert response.status_code == 400, query
        assert reason in response.content.decode(), (query, response.content)
    assert api.get("/api/v1/platform/usage?tenant=nobody").status_code == 404


def test_the_hourly_page_draws_every_hour_of_the_range(client, traffic):
    client.force_login(traffic.staff)

    response = client.get(f"/platform/usage/?{RANGE}&granularity=hour&by=provider")

    overview = response.context["overview"]
    assert len(overview.buckets) == 48
    assert overview.buckets[9] == DAY1 + timedelta(hours=9)
    page = response.content.decode()
    assert "Requests per hour, by provider" in page
    assert ">Nov 1</text>" in page and ">06:00</text>" in page  # midnights by date, hours by hour
    assert [row.provider for row in overview.breakdowns["provider"]] == ["fake", "backup"]


def test_an_hourly_range_too_long_falls_back_with_the_reason(client, people):
    client.force_login(people.staff)

    response = client.get("/platform/usage/?granularity=hour&start=2026-01-01&end=2026-03-01")

    assert response.status_code == 200
    assert "at most 31 days" in response.content.decode()
    assert response.context["overview"].granularity == "day"
    csv_response = client.get("/platform/usage.csv?granularity=hour&start=2026-01-01")
    assert csv_response.status_code == 400


def test_one_tenant_can_be_singled_out(client, traffic):
    client.force_login(traffic.staff)

    response = client.get(f"/platform/usage/?{RANGE}&tenant=globex")

    assert response.context["overview"].totals.input_tokens == 3000
    assert [r.tenant_name for r in response.context["overview"].breakdowns["tenant"]] == ["globex"]


def test_the_csv_has_a_line_per_hour_tenant_model_key_and_provider(client, traffic):
    client.force_login(traffic.staff)

    response = client.get(f"/platform/usage.csv?{RANGE}&granularity=hour")

    assert response["Content-Type"].startswith("text/csv")
    assert "tollgate-platform-hour-2026-11-01-2026-11-02.csv" in response["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(lines) == 6  # acme 09:00 splits by model; globex's 09:00 by provider
    assert sum(int(line["input_tokens"]) for line in lines) == 3150
    first = lines[0]
    assert (first["time"], first["tenant"], first["key_name"]) == (
        "2026-11-01T09:00Z",
        "acme",
        "ci",
    )
    daily = client.get(f"/platform/usage.csv?{RANGE}")
    days = {line["time"] for line in csv.DictReader(io.StringIO(daily.content.decode()))}
    assert days == {"2026-11-01", "2026-11-02"}


def test_garbage_in_the_page_query_shows_the_default_view_and_the_reasons(client, traffic):
    client.force_login(traffic.staff)

    response = client.get(
        "/platform/usage/?granularity=<b>x</b>&by=colour&tenant=nobody&start=0000-13-45"
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page  # named, escaped
    overview = response.context["overview"]
    assert (overview.granularity, overview.dimension, overview.tenant) == ("day", "tenant", None)
    assert client.get("/platform/usage.csv?tenant=nobody").status_code == 400
