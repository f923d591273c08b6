"""REST API under /api/v1: authentication, tenant scoping, reads, key writes, pagination, schema."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import yaml
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import ApiKey, Membership
from tests.factories import DailyUsageFactory, MembershipFactory, ModelFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db
# Key checks go through `database_sync_to_async`, which closes a connection found inside a
# transaction it did not open: tests authenticating with a key commit for real.
with_keys = pytest.mark.django_db(transaction=True)

SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")
READS = ["/api/v1/usage", "/api/v1/requests", "/api/v1/keys"]


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def reads(p) -> list[str]:
    return [*READS, f"/api/v1/keys/{p.key.pk}"]


def writes(p) -> list[str]:
    return ["/api/v1/keys", f"/api/v1/keys/{p.key.pk}/revoke"]


def with_key(api: APIClient, key: ApiKey) -> APIClient:
    api.credentials(HTTP_X_API_KEY=key.secret)
    return api


def on(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


# --- Authentication and scoping --------------------------------------------------------------


def test_anonymous_callers_get_401_on_every_endpoint(api, people):
    for path in reads(people):
        response = api.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
    for path in writes(people):
        assert api.post(path).status_code == 401, path


@with_keys
def test_a_revoked_key_is_refused(api, people):
    people.key.revoked_at = timezone.now()
    people.key.save()

    assert with_key(api, people.key).get("/api/v1/usage").status_code == 401


def test_outsider_session_gets_404_for_another_tenant_on_every_endpoint(api, people):
    api.force_login(people.outsider)
    for path in reads(people):
        assert api.get(path, {"tenant": "acme"}).status_code == 404, path
    for path in writes(people):
        assert api.post(f"{path}?tenant=acme").status_code == 404, path
    # Under their own tenant, acme's key does not exist.
    assert api.get(f"/api/v1/keys/{people.key.pk}").status_code == 404
    assert api.post(f"/api/v1/keys/{people.key.pk}/revoke").status_code == 404
    people.key.refresh_from_db()
    assert people.key.revoked_at is None


@with_keys
def test_outsider_key_gets_404_for_another_tenant_on_every_endpoint(api, people):
    with_key(api, people.other_key)
    for path in reads(people):
        assert api.get(path, {"tenant": "acme"}).status_code == 404, path
    assert api.get(f"/api/v1/keys/{people.key.pk}").status_code == 404
    assert api.post(f"/api/v1/keys/{people.key.pk}/revoke").status_code == 404


@with_keys
def test_a_key_reads_only_its_own_tenant(api, people):
    UsageRecordFactory(tenant=people.tenant, request_id="req_acme")
    UsageRecordFactory(tenant=people.other, request_id="req_globex")
    DailyUsageFactory(tenant=people.other, requests=1000)

    with_key(api, people.other_key)
    requests = api.get("/api/v1/requests").json()["results"]
    usage = api.get("/api/v1/usage", {"group_by": ""}).json()["results"]
    listed = api.get("/api/v1/keys").json()["results"]

    assert [r["request_id"] for r in requests] == ["req_globex"]
    assert usage[0]["requests"] == 1000
    assert [k["prefix"] for k in listed] == [people.other_key.prefix]


@with_keys
def test_a_key_may_name_its_own_tenant(api, people):
    response = with_key(api, people.key).get("/api/v1/keys", {"tenant": "acme"})

    assert response.status_code == 200


def test_a_session_in_one_tenant_needs_no_tenant_parameter(api, people):
    api.force_login(people.viewer)

    listed = api.get("/api/v1/keys").json()["results"]

    assert [k["prefix"] for k in listed] == [people.key.prefix]


def test_a_session_in_several_tenants_must_name_one(api, people):
    MembershipFactory(user=people.viewer, tenant=people.other)
    api.force_login(people.viewer)

    unnamed = api.get("/api/v1/keys")
    named = api.get("/api/v1/keys", {"tenant": "globex"})

    assert unnamed.status_code == 400 and "tenant" in unnamed.json()
    assert [k["prefix"] for k in named.json()["results"]] == [people.other_key.prefix]


def test_staff_name_any_tenant(api, people):
    api.force_login(people.staff)

    unnamed = api.get("/api/v1/keys")
    acme = api.get("/api/v1/keys", {"tenant": "acme"})
    globex = api.get("/api/v1/keys", {"tenant": "globex"})
    missing = api.get("/api/v1/keys", {"tenant": "nobody"})

    assert unnamed.status_code == 400
    assert acme.json()["results"][0]["prefix"] == people.key.prefix
    assert globex.json()["results"][0]["prefix"] == people.other_key.prefix
    assert missing.status_code == 404


# --- Usage -------------------------------------------------------------------------------------


def test_usage_by_day_defaults_to_the_last_30_days(api, people):
    today = timezone.now().date()
    DailyUsageFactory(tenant=people.tenant, day=today, requests=3, errors=1)
    DailyUsageFactory(tenant=people.tenant, day=today - timedelta(days=29), requests=5)
    DailyUsageFactory(tenant=people.tenant, day=today - timedelta(days=30), requests=7)
    api.force_login(people.viewer)

    rows = api.get("/api/v1/usage").json()["results"]

    assert [(r["day"], r["requests"]) for r in rows] == [
        ((today - timedelta(days=29)).isoformat(), 5),
        (today.isoformat(), 3),
    ]
    assert rows[1]["error_rate"] == pytest.approx(1 / 3)


@with_keys
def test_usage_grouped_by_model_and_key_with_latency_percentiles(api, people):
    day = date(2026, 2, 3)
    DailyUsageFactory(
        tenant=people.tenant,
        day=day,
        api_key=people.key,
        model="claude-sonnet-4-5",
        requests=4,
        cost_usd=Decimal("1.5"),
    )
    DailyUsageFactory(
        tenant=people.tenant,
        day=day + timedelta(days=1),
        api_key=people.key,
        model="claude-sonnet-4-5",
    )
    DailyUsageFactory(tenant=people.tenant, day=day, api_key=people.key, model="claude-haiku-4-5")
    for latency in (100, 200, 300):
        UsageRecordFactory(
            tenant=people.tenant,
            api_key=people.key,
            model="claude-sonnet-4-5",
            latency_ms=latency,
            started_at=on(day),
        )
    with_key(api, people.key)

    response = api.get(
        "/api/v1/usage", {"start": "2026-02-01", "end": "2026-02-28", "group_by": "model,key"}
    )
    rows = {r["model"]: r for r in response.json()["results"]}

    sonnet = rows["claude-sonnet-4-5"]
    assert sonnet["requests"] == 14 and sonnet["cost_usd"] == "1.510500000"
    assert (sonnet["key_id"], sonnet["key_prefix"], sonnet["key_name"]) == (
        people.key.pk,
        people.key.prefix,
        "ci",
    )
    assert (sonnet["latency_p50_ms"], sonnet["latency_p95_ms"]) == (200, pytest.approx(290))
    assert sonnet["day"] is None and sonnet["provider"] is None
    assert rows["claude-haiku-4-5"]["latency_p50_ms"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "day,colour"}, "group_by"),
        ({"start": "2026-02-10", "end": "2026-02-01"}, "non_field_errors"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "non_field_errors"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_usage_parameters_are_400_naming_the_problem(api, people, params, field):
    api.force_login(people.viewer)

    response = api.get("/api/v1/usage", params)

    assert response.status_code == 400
    assert field in response.json()


# --- Requests and pagination -------------------------------------------------------------------


def test_requests_are_newest_first_with_their_details(api, people):
    start = timezone.now() - timedelta(hours=1)
    UsageRecordFactory(tenant=people.tenant, request_id="req_old", started_at=start)
    UsageRecordFactory(
        tenant=people.tenant,
        request_id="req_new",
        api_key=people.key,
        status="error",
        http_status=529,
        error_type="overloaded_error",
        latency_ms=812.5,
        started_at=start + timedelta(minutes=5),
    )
    api.force_login(people.viewer)

    results = api.get("/api/v1/requests").json()["results"]

    assert [r["request_id"] for r in results] == ["req_new", "req_old"]
    newest = results[0]
    assert newest["key_prefix"] == people.key.prefix
    assert (newest["status"], newest["http_status"], newest["error_type"]) == (
        "error",
        529,
        "overloaded_error",
    )
    assert newest["latency_ms"] == 812.5
    assert {"model", "provider", "input_tokens", "output_tokens", "cost_usd"} <= newest.keys()
    assert {"started_at", "finished_at"} <= newest.keys()
    assert results[1]["key_prefix"] is None


def test_requests_filter_by_status_model_and_range(api, people):
    UsageRecordFactory(
        tenant=people.tenant, request_id="req_a", model="m1", started_at=on(date(2026, 1, 5))
    )
    UsageRecordFactory(
        tenant=people.tenant, request_id="req_b", model="m2", started_at=on(date(2026, 1, 5))
    )
    UsageRecordFactory(tenant=people.tenant, request_id="req_c", model="m1", status="error")
    api.force_login(people.viewer)

    by_model = api.get("/api/v1/requests", {"model": "m1"}).json()["results"]
    by_status = api.get("/api/v1/requests", {"status": "error"}).json()["results"]
    in_range = api.get("/api/v1/requests", {"start": "2026-01-01", "end": "2026-01-31"}).json()

    assert {r["request_id"] for r in by_model} == {"req_a", "req_c"}
    assert [r["request_id"] for r in by_status] == ["req_c"]
    assert {r["request_id"] for r in in_range["results"]} == {"req_a", "req_b"}


def test_requests_filter_by_endpoint_and_refuse_an_unknown_one(api, people):
    UsageRecordFactory(tenant=people.tenant, request_id="req_msg")
    UsageRecordFactory(tenant=people.tenant, request_id="req_cnt", endpoint="count_tokens")
    api.force_login(people.viewer)

    counts = api.get("/api/v1/requests", {"endpoint": "count_tokens"}).json()["results"]
    unknown = api.get("/api/v1/requests", {"endpoint": "embeddings"})

    assert [(r["request_id"], r["endpoint"]) for r in counts] == [("req_cnt", "count_tokens")]
    assert unknown.status_code == 400 and "endpoint" in unknown.json()


@with_keys
def test_requests_are_paginated(api, people):
    start = timezone.now() - timedelta(hours=2)
    for n in range(60):
        UsageRecordFactory(
            tenant=people.tenant, request_id=f"req_{n:03d}", started_at=start + timedelta(minutes=n)
        )
    with_key(api, people.key)

    first = api.get("/api/v1/requests").json()
    second = api.get(first["next"]).json()
    small = api.get("/api/v1/requests", {"page_size": 7, "page": 3}).json()

    assert (first["count"], len(first["results"]), first["previous"]) == (60, 50, None)
    assert first["results"][0]["request_id"] == "req_059"
    assert [r["request_id"] for r in second["results"]] == [
        f"req_{n:03d}" for n in range(9, -1, -1)
    ]
    assert second["next"] is None
    assert [r["request_id"] for r in small["results"]] == [
        f"req_{n:03d}" for n in range(45, 38, -1)
    ]
    assert api.get("/api/v1/requests", {"page": 9}).status_code == 404


# --- Keys --------------------------------------------------------------------------------------


def test_owner_creates_a_key_and_gets_its_secret_once(api, people):
    ModelFactory(name="claude-haiku-4-5")
    api.force_login(people.owner)

    response = api.post(
        "/api/v1/keys",
        {"name": "deploy", "expires_in_days": 7, "models": ["claude-haiku-4-5"]},
        format="json",
    )
    created = response.json()
    listed = api.get("/api/v1/keys")

    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    assert SECRET.fullmatch(created["secret"])
    key = ApiKey.objects.get(pk=created["id"])
    assert key.tenant == people.tenant and key.secret_hash == keys.hash_secret(created["secret"])
    assert created["allowed_models"] == ["claude-haiku-4-5"] and created["expires_at"]
    assert created["secret"] not in listed.content.decode()
    assert all("secret" not in k and "secret_hash" not in k for k in listed.json()["results"])


@with_keys
def test_a_created_key_works_for_reading(api, people):
    api.force_login(people.admin)
    secret = api.post("/api/v1/keys", {"name": "bot"}, format="json").json()["secret"]

    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert reader.get("/api/v1/usage").status_code == 200


def test_creating_a_key_for_a_model_the_tenant_may_not_use_is_400(api, people):
    allowed, other = ModelFactory(name="claude-haiku-4-5"), ModelFactory(name="claude-opus-4")
    people.tenant.allowed_models.set([allowed])
    api.force_login(people.owner)

    response = api.post("/api/v1/keys", {"models": [other.name]}, format="json")

    assert response.status_code == 400
    assert "may not use: claude-opus-4" in response.json()["non_field_errors"][0]


@with_keys
def test_owner_revokes_a_key_and_it_stops_working(api, people):
    api.force_login(people.owner)

    response = api.post(f"/api/v1/keys/{people.key.pk}/revoke")

    assert response.status_code == 200
    assert response.json()["revoked_at"] and response.json()["is_active"] is False
    assert with_key(APIClient(), people.key).get("/api/v1/usage").status_code == 401


@with_keys
@pytest.mark.parametrize("who", ["viewer", "key"])
def test_viewers_and_keys_cannot_create_or_revoke_keys(api, people, who):
    if who == "viewer":
        api.force_login(people.viewer)
    else:
        with_key(api, people.key)

    created = api.post("/api/v1/keys", {"name": "mine"}, format="json")
    revoked = api.post(f"/api/v1/keys/{people.key.pk}/revoke")

    assert (created.status_code, revoked.status_code) == (403, 403)
    assert "detail" in created.json()
    assert not ApiKey.objects.filter(name="mine").exists()
    people.key.refresh_from_db()
    assert people.key.revoked_at is None


def test_session_writes_need_the_csrf_token(people):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(people.owner)

    response = api.post("/api/v1/keys", {"name": "csrf"}, format="json")

    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not ApiKey.objects.filter(name="csrf").exists()


def test_staff_create_keys_for_any_tenant(api, people):
    api.force_login(people.staff)

    response = api.post("/api/v1/keys?tenant=globex", {"name": "ops"}, format="json")

    assert response.status_code == 201
    assert ApiKey.objects.get(pk=response.json()["id"]).tenant == people.other


def test_key_detail(api, people):
    api.force_login(people.viewer)

    body = api.get(f"/api/v1/keys/{people.key.pk}").json()

    assert (body["id"], body["prefix"], body["name"], body["is_active"]) == (
        people.key.pk,
        people.key.prefix,
        "ci",
        True,
    )


def test_roles_come_from_memberships_not_from_other_tenants(api, people):
    # Owner of globex, viewer of acme: may not manage acme's keys.
    MembershipFactory(user=people.outsider, tenant=people.tenant, role=Membership.Role.VIEWER)
    api.force_login(people.outsider)

    response = api.post(f"/api/v1/keys/{people.key.pk}/revoke?tenant=acme")

    assert response.status_code == 403


# --- Schema ------------------------------------------------------------------------------------


def test_schema_is_openapi_yaml_by_default_and_json_on_request(api):
    as_yaml = api.get("/api/v1/schema")
    as_json = api.get("/api/v1/schema", {"format": "json"})

    assert as_yaml.status_code == 200 and "openapi" in as_yaml["Content-Type"]
    document = yaml.safe_load(as_yaml.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Tollgate REST API"
    assert json.loads(as_json.content)["paths"].keys() == document["paths"].keys()
    assert {
        "/api/v1/usage",
        "/api/v1/requests",
        "/api/v1/keys",
        "/api/v1/keys/{key_id}",
        "/api/v1/keys/{key_id}/revoke",
    } <= set(document["paths"])
    assert "tenantKey" in document["components"]["securitySchemes"]
    listed = document["paths"]["/api/v1/requests"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"]["$ref"].endswith(
        "PaginatedRequestRecordList"
    )


# --- Platform staff: the admin's permissions, no more ------------------------------------------


def test_staff_without_permissions_cannot_see_other_tenants(api, people):
    api.force_login(people.bare_staff)

    for path in READS:
        response = api.get(path, {"tenant": "globex"})
        assert response.status_code == 404, path
        assert response.json() == {"detail": "No such tenant."}
    assert api.get(f"/api/v1/keys/{people.other_key.pk}", {"tenant": "globex"}).status_code == 404


def test_staff_without_permissions_cannot_create_or_revoke_other_tenants_keys(api, people):
    api.force_login(people.bare_staff)

    created = api.post("/api/v1/keys?tenant=globex", {"name": "sneaky"}, format="json")
    revoked = api.post(f"/api/v1/keys/{people.other_key.pk}/revoke?tenant=globex")

    assert (created.status_code, revoked.status_code) == (404, 404)
    assert not ApiKey.objects.filter(name="sneaky").exists()
    people.other_key.refresh_from_db()
    assert people.other_key.revoked_at is None


def test_staff_who_may_only_see_tenants_read_usage_but_not_keys(api, people):
    from tests.integration.conftest import platform_admin

    api.force_login(platform_admin("vera", permissions=("view_tenant",)))

    usage = api.get("/api/v1/usage", {"tenant": "globex"})
    listed = api.get("/api/v1/keys", {"tenant": "globex"})
    one = api.get(f"/api/v1/keys/{people.other_key.pk}", {"tenant": "globex"})
    created = api.post("/api/v1/keys?tenant=globex", {"name": "sneaky"}, format="json")
    revoked = api.post(f"/api/v1/keys/{people.other_key.pk}/revoke?tenant=globex")

    assert usage.status_code == 200
    assert [r.status_code for r in (listed, one, created, revoked)] == [403, 403, 403, 403]
    assert listed.json() == {"detail": "You may not see this tenant's keys."}
    assert not ApiKey.objects.filter(name="sneaky").exists()
    people.other_key.refresh_from_db()
    assert people.other_key.revoked_at is None


def test_staff_who_may_view_keys_list_them_but_neither_create_nor_revoke(api, people):
    from tests.integration.conftest import platform_admin

    api.force_login(platform_admin("viv", permissions=("view_tenant", "view_apikey")))

    listed = api.get("/api/v1/keys", {"tenant": "globex"})
    created = api.post("/api/v1/keys?tenant=globex", {"name": "sneaky"}, format="json")
    revoked = api.post(f"/api/v1/keys/{people.other_key.pk}/revoke?tenant=globex")

    assert [k["prefix"] for k in listed.json()["results"]] == [people.other_key.prefix]
    assert (created.status_code, revoked.status_code) == (403, 403)
    people.other_key.refresh_from_db()
    assert people.other_key.revoked_at is None


def test_staff_who_may_add_keys_create_but_do_not_revoke(api, people):
    from tests.integration.conftest import platform_admin

    api.force_login(platform_admin("ada", permissions=("view_tenant", "add_apikey")))

    created = api.post("/api/v1/keys?tenant=globex", {"name": "ops"}, format="json")
    revoked = api.post(f"/api/v1/keys/{people.other_key.pk}/revoke?tenant=globex")

    assert created.status_code == 201
    assert revoked.status_code == 403


def test_superusers_manage_any_tenants_keys(api, people):
    from tests.factories import UserFactory

    api.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    created = api.post("/api/v1/keys?tenant=globex", {"name": "ops"}, format="json")
    revoked = api.post(f"/api/v1/keys/{people.other_key.pk}/revoke?tenant=globex")

    assert (created.status_code, revoked.status_code) == (201, 200)


def test_staff_keep_their_own_tenants_rights_without_any_permission(api, people):
    MembershipFactory(user=people.bare_staff, tenant=people.tenant, role=Membership.Role.ADMIN)
    api.force_login(people.bare_staff)

    created = api.post("/api/v1/keys?tenant=acme", {"name": "mine"}, format="json")
    other = api.get("/api/v1/keys", {"tenant": "globex"})

    assert created.status_code == 201
    assert other.status_code == 404


# --- Hostile parameters and bodies -------------------------------------------------------------


@pytest.mark.parametrize("query", [{"end": "9999-12-31"}, {"end": "0001-01-05"}])
def test_dates_at_the_calendars_edge_are_a_400_naming_the_bounds(api, people, query):
    api.force_login(people.viewer)

    for path in ("/api/v1/usage", "/api/v1/requests"):
        response = api.get(path, query)
        assert response.status_code == 400, path
        assert response.json() == {
            "non_field_errors": ["dates must lie between 1970-01-01 and 9999-12-30"]
        }


@pytest.mark.parametrize("name", ["\x00", "caf\xe9", "a" * 65])
def test_a_tenant_name_no_tenant_can_have_is_a_404(api, people, name):
    api.force_login(people.staff)

    assert api.get("/api/v1/usage", {"tenant": name}).status_code == 404


def test_the_api_answers_json_only(api, people):
    api.force_login(people.viewer)

    html = api.get("/api/v1/keys", HTTP_ACCEPT="text/html")
    anything = api.get("/api/v1/keys", HTTP_ACCEPT="text/html,*/*;q=0.8")

    assert html.status_code == 406
    assert html.json() == {"detail": "Could not satisfy the request Accept header."}
    assert anything.status_code == 200 and anything["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "body, problem",
    [
        (b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}", "deeper than 128 levels"),
        (b'{"name":"ops","expires_in_days":1e400}', "expires_in_days: Number out of range"),
        (b'{"name":"caf\xe9"}', "name: invalid UTF-8 in a string"),
        (b'{"name":', "not valid JSON"),
    ],
)
def test_a_hostile_json_body_is_a_400_in_json(api, people, body, problem):
    api.force_login(people.owner)

    response = api.post("/api/v1/keys", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")
    assert problem in response.json()["detail"]
    assert not ApiKey.objects.exclude(pk=people.key.pk).filter(tenant=people.tenant).exists()
