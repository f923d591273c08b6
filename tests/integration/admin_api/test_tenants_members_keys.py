"""Admin REST API: service tokens, tenants, members, keys and usage, with permissions per
caller (platform token, tenant token, the outsider's token, session roles)."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import keys
from accounts.models import ApiKey, AuditEntry, Membership, ServiceToken, Tenant
from accounts.service_tokens import service_token_create
from core import state
from tests.factories import DailyUsageFactory, ModelFactory, UserFactory
from tests.integration.admin_api.conftest import BASE, TOKEN, bearer, session

pytestmark = pytest.mark.django_db


# --- Authentication ----------------------------------------------------------------------------


def test_anonymous_callers_get_401_with_a_bearer_challenge():
    response = APIClient().get(f"{BASE}/tenants")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_platform_token_lists_every_tenant(platform, people):
    response = platform.get(f"{BASE}/tenants")

    assert response.status_code == 200
    assert [t["name"] for t in response.json()["results"]] == ["acme", "globex"]


def test_a_tenant_token_sees_only_its_tenant(acme, people):
    listed = acme.get(f"{BASE}/tenants").json()["results"]

    assert [t["name"] for t in listed] == ["acme"]
    assert acme.get(f"{BASE}/tenants/acme").status_code == 200
    assert acme.get(f"{BASE}/tenants/globex").status_code == 404


@pytest.mark.parametrize(
    "state_change",
    [
        {"revoked_at": timezone.now()},
        {"expires_at": timezone.now() - timedelta(seconds=1)},
    ],
    ids=["revoked", "expired"],
)
def test_revoked_and_expired_tokens_are_401(tokens, state_change):
    ServiceToken.objects.filter(pk=tokens.platform.pk).update(**state_change)

    response = bearer(tokens.secrets["platform"]).get(f"{BASE}/tenants")

    assert response.status_code == 401


def test_a_token_of_a_disabled_tenant_is_401(tokens, people):
    Tenant.objects.filter(pk=people.tenant.pk).update(is_active=False)

    assert bearer(tokens.secrets["acme"]).get(f"{BASE}/tenants").status_code == 401


def test_tenant_keys_do_not_open_the_admin_api(people):
    assert bearer(people.key.secret).get(f"{BASE}/tenants").status_code == 401
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=people.key.secret)
    assert api.get(f"{BASE}/tenants").status_code == 401


def test_a_used_token_records_when_it_was_last_used(tokens, platform):
    assert tokens.platform.last_used_at is None

    platform.get(f"{BASE}/tenants")

    tokens.platform.refresh_from_db()
    assert tokens.platform.last_used_at is not None


def test_failed_token_checks_count_against_the_address_limit(settings, tokens):
    from accounts import auth_failures

    settings.TOLLGATE = {**settings.TOLLGATE, "AUTH_FAILURES_PER_MINUTE": 3}
    auth_failures._local.clear()
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    wrong = bearer("tgs_" + "x" * 40, REMOTE_ADDR=address)

    statuses = [wrong.get(f"{BASE}/tenants").status_code for _ in range(5)]
    # Past the limit, even the right token from that address waits out the minute.
    after = bearer(tokens.secrets["platform"], REMOTE_ADDR=address).get(f"{BASE}/tenants")

    assert statuses == [401, 401, 401, 429, 429]
    assert after.status_code == 429 and "retry-after" in {k.lower() for k in after.headers}
    auth_failures._local.clear()


def test_a_token_secret_is_never_logged_nor_stored(caplog, tokens):
    caplog.set_level(logging.DEBUG)
    secret = tokens.secrets["acme"]

    bearer(secret).get(f"{BASE}/tenants")
    bearer(secret[:-1] + "Z").get(f"{BASE}/tenants")

    assert secret not in caplog.text
    assert ServiceToken.objects.filter(secret_hash=keys.hash_secret(secret)).exists()
    assert not ServiceToken.objects.filter(secret_hash=secret).exists()
    assert tokens.acme.prefix == secret[:12] and TOKEN.fullmatch(secret)


# --- Tenants -----------------------------------------------------------------------------------


def test_a_platform_token_creates_a_tenant_with_limits_and_models(
    platform, people, django_capture_on_commit_callbacks
):
    ModelFactory(name="claude-haiku-4-5")
    before = state.sync_redis().get(state.CONFIG_VERSION_KEY)

    with django_capture_on_commit_callbacks(execute=True):
        response = platform.post(
            f"{BASE}/tenants",
            {
                "name": "initech",
                "display_name": "Initech",
                "models": ["claude-haiku-4-5"],
                "default_model": "claude-haiku-4-5",
                "rpm": 100,
                "budget_usd": "50",
            },
            format="json",
        )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["allowed_models"] == ["claude-haiku-4-5"]
    assert body["default_model"] == "claude-haiku-4-5"
    assert (body["rpm"], body["budget_usd"], body["budget_period"]) == (100, "50.00", "monthly")
    tenant = Tenant.objects.get(name="initech")
    assert tenant.rpm == 100 and tenant.budget_usd == Decimal("50.00")
    entry = AuditEntry.objects.filter(object_type="tenant", action="create").latest("id")
    assert entry.actor_label == f"service-token:{platform_prefix(platform)}"
    # Every replica's routing snapshot hears of it.
    assert state.sync_redis().get(state.CONFIG_VERSION_KEY) != before


def platform_prefix(client) -> str:
    secret = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    return ServiceToken.objects.get(secret_hash=keys.hash_secret(secret)).prefix


def test_tenant_creation_is_all_or_nothing(platform, people):
    response = platform.post(
        f"{BASE}/tenants", {"name": "initech", "default_model": "nope"}, format="json"
    )

    assert response.status_code == 400
    assert "unknown model(s): nope" in response.json()["non_field_errors"][0]
    assert not Tenant.objects.filter(name="initech").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "acme"},
        {"name": "not a slug"},
        {"name": "x" * 65},
        {"name": "ok", "rpm": -1},
        {"name": "ok", "budget_usd": "1e12"},
        {"name": "ok", "provider_defaults": {"sort": "cheapest-ever"}},
        {"name": "ok", "provider_defaults": {"unknown": 1}},
        {"name": "ok", "models": ["ghost"]},
        {"name": "ok", "owner": "me"},
    ],
)
def test_bad_tenant_input_is_400(platform, people, body):
    count = Tenant.objects.count()

    response = platform.post(f"{BASE}/tenants", body, format="json")

    assert response.status_code == 400, response.content
    assert Tenant.objects.count() == count


def test_tenant_limits_apply_to_its_cached_keys_at_once(
    platform, people, django_capture_on_commit_callbacks
):
    keys._process_cache.put(keys.hash_secret(people.key.secret), None, 0)

    with django_capture_on_commit_callbacks(execute=True):
        response = platform.patch(f"{BASE}/tenants/acme", {"tpm": 5000}, format="json")

    assert response.status_code == 200
    assert response.json()["tpm"] == 5000 and response.json()["display_name"] == "Acme Corp"
    people.tenant.refresh_from_db()
    assert people.tenant.tpm == 5000
    # Every cached key of the tenant carries its limits: dropped so they apply at once.
    assert keys._process_cache.get(keys.hash_secret(people.key.secret), 0) == (False, None)


def test_a_patch_keeps_the_fields_it_leaves_out(platform, people):
    ModelFactory(name="claude-haiku-4-5")
    people.tenant.allowed_models.set([ModelFactory(name="claude-opus-4")])
    Tenant.objects.filter(pk=people.tenant.pk).update(rpm=7)

    platform.patch(f"{BASE}/tenants/acme", {"display_name": "ACME"}, format="json")

    people.tenant.refresh_from_db()
    assert people.tenant.display_name == "ACME" and people.tenant.rpm == 7
    assert list(people.tenant.allowed_models.values_list("name", flat=True)) == ["claude-opus-4"]


def test_a_tenant_token_changes_its_tenants_preferences(acme, people):
    ModelFactory(name="claude-haiku-4-5")

    response = acme.patch(
        f"{BASE}/tenants/acme",
        {
            "display_name": "Acme Inc",
            "default_model": "claude-haiku-4-5",
            "provider_defaults": {"sort": "price"},
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    people.tenant.refresh_from_db()
    assert people.tenant.display_name == "Acme Inc"
    assert people.tenant.default_model.name == "claude-haiku-4-5"
    assert people.tenant.provider_defaults == {"sort": "price"}


@pytest.mark.parametrize(
    "body", [{"is_active": False}, {"budget_usd": "999999"}, {"rpm": 10**6}, {"models": []}]
)
def test_a_tenant_token_cannot_change_what_the_platform_decides(acme, people, body):
    people.tenant.allowed_models.set([ModelFactory(name="claude-haiku-4-5")])

    response = acme.patch(f"{BASE}/tenants/acme", body, format="json")

    assert response.status_code == 403
    assert next(iter(body)) in response.json()["detail"]
    people.tenant.refresh_from_db()
    assert people.tenant.is_active and people.tenant.rpm is None
    assert people.tenant.budget_usd is None
    assert people.tenant.allowed_models.count() == 1


def test_a_tenant_token_cannot_create_delete_or_reach_other_tenants(acme, people):
    assert acme.post(f"{BASE}/tenants", {"name": "mine"}, format="json").status_code == 403
    assert acme.delete(f"{BASE}/tenants/acme").status_code == 403
    assert acme.patch(f"{BASE}/tenants/globex", {"tpm": 1}, format="json").status_code == 404
    assert acme.delete(f"{BASE}/tenants/globex").status_code == 404
    assert Tenant.objects.filter(name="acme", is_active=True).exists()
    assert not Tenant.objects.filter(name="mine").exists()


def test_a_platform_token_deletes_a_tenant_and_its_keys_stop(platform, people):
    response = platform.delete(f"{BASE}/tenants/globex")

    assert response.status_code == 204
    assert not Tenant.objects.filter(name="globex").exists()
    assert not ApiKey.objects.filter(pk=people.other_key.pk).exists()


@pytest.mark.parametrize("who", ["owner", "admin", "viewer", "outsider", "staff"])
def test_sessions_follow_the_dashboard_roles_for_tenants(people, who):
    api = session(getattr(people, who))

    listed = api.get(f"{BASE}/tenants")
    changed = api.patch(f"{BASE}/tenants/acme", {"tpm": 1}, format="json")
    created = api.post(f"{BASE}/tenants", {"name": "newco"}, format="json")

    names = [t["name"] for t in listed.json()["results"]]
    if who == "outsider":
        assert names == ["globex"] and changed.status_code == 404
    elif who == "staff":  # may view tenants, not change or add them
        assert names == ["acme", "globex"] and changed.status_code == 403
    else:  # members see their tenant; tenant settings are the platform's
        assert names == ["acme"] and changed.status_code == 403
    assert created.status_code == 403
    assert Tenant.objects.get(name="acme").tpm is None


def test_staff_with_the_admin_permissions_manage_tenants(people):
    people.staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["add_tenant", "change_tenant", "delete_tenant"],
        )
    )
    api = session(people.staff)

    assert api.post(f"{BASE}/tenants", {"name": "newco"}, format="json").status_code == 201
    assert api.patch(f"{BASE}/tenants/newco", {"tpm": 9}, format="json").status_code == 200
    assert api.delete(f"{BASE}/tenants/newco").status_code == 204


# --- Members -----------------------------------------------------------------------------------


def test_a_tenant_token_adds_changes_and_removes_a_member(acme, people):
    newcomer = UserFactory(username="nina", email="nina@example.com")

    added = acme.post(
        f"{BASE}/tenants/acme/members",
        {"user": "NINA@example.com", "role": "viewer"},
        format="json",
    )
    member_id = added.json()["id"]
    changed = acme.patch(
        f"{BASE}/tenants/acme/members/{member_id}", {"role": "admin"}, format="json"
    )
    listed = acme.get(f"{BASE}/tenants/acme/members").json()["results"]
    removed = acme.delete(f"{BASE}/tenants/acme/members/{member_id}")

    assert added.status_code == 201 and added.json()["username"] == "nina"
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    assert "nina" in [m["username"] for m in listed]
    assert removed.status_code == 204
    assert not Membership.objects.filter(user=newcomer).exists()


def test_member_input_is_checked(acme, people):
    UserFactory(username="nina")

    unknown_user = acme.post(
        f"{BASE}/tenants/acme/members", {"user": "ghost", "role": "viewer"}, format="json"
    )
    bad_role = acme.post(
        f"{BASE}/tenants/acme/members", {"user": "nina", "role": "god"}, format="json"
    )
    extra = acme.post(
        f"{BASE}/tenants/acme/members",
        {"user": "nina", "role": "viewer", "is_staff": True},
        format="json",
    )
    twice = acme.post(
        f"{BASE}/tenants/acme/members", {"user": "victor", "role": "owner"}, format="json"
    )

    assert unknown_user.status_code == 400 and "user" in unknown_user.json()
    assert bad_role.status_code == 400 and "role" in bad_role.json()
    assert extra.status_code == 400 and extra.json() == {"is_staff": ["Unknown field."]}
    assert twice.status_code == 400
    assert not Membership.objects.filter(user__username="nina").exists()


def test_the_last_owner_is_neither_demoted_nor_removed(acme, people):
    owner = Membership.objects.get(user=people.owner, tenant=people.tenant)

    demoted = acme.patch(
        f"{BASE}/tenants/acme/members/{owner.pk}", {"role": "viewer"}, format="json"
    )
    removed = acme.delete(f"{BASE}/tenants/acme/members/{owner.pk}")

    assert demoted.status_code == 400 and removed.status_code == 400
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_another_tenants_member_ids_are_404(acme, people):
    outsider = Membership.objects.get(user=people.outsider)

    assert acme.get(f"{BASE}/tenants/acme/members/{outsider.pk}").status_code == 404
    assert acme.delete(f"{BASE}/tenants/acme/members/{outsider.pk}").status_code == 404
    assert acme.get(f"{BASE}/tenants/globex/members").status_code == 404
    assert Membership.objects.filter(pk=outsider.pk).exists()


@pytest.mark.parametrize("who,can_change", [("owner", True), ("admin", False), ("viewer", False)])
def test_only_owners_manage_members_by_session(people, who, can_change):
    UserFactory(username="nina")
    api = session(getattr(people, who))

    listed = api.get(f"{BASE}/tenants/acme/members")
    added = api.post(
        f"{BASE}/tenants/acme/members", {"user": "nina", "role": "viewer"}, format="json"
    )

    assert listed.status_code == 200
    assert added.status_code == (201 if can_change else 403)


# --- Keys --------------------------------------------------------------------------------------


def test_a_key_is_created_with_limits_and_models_and_its_secret_shown_once(acme, people, caplog):
    caplog.set_level(logging.DEBUG)
    ModelFactory(name="claude-haiku-4-5")

    created = acme.post(
        f"{BASE}/tenants/acme/keys",
        {"name": "deploy", "models": ["claude-haiku-4-5"], "rpm": 30, "budget_usd": "5"},
        format="json",
    )
    secret = created.json()["secret"]
    key_id = created.json()["id"]
    shown = acme.get(f"{BASE}/tenants/acme/keys/{key_id}")
    listed = acme.get(f"{BASE}/tenants/acme/keys")

    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    assert created.json()["allowed_models"] == ["claude-haiku-4-5"]
    assert created.json()["rpm"] == 30
    key = ApiKey.objects.get(pk=key_id)
    assert key.secret_hash == keys.hash_secret(secret) and key.budget_usd == Decimal("5.00")
    for later in (shown, listed):
        assert later.status_code == 200 and secret not in later.content.decode()
    assert secret not in caplog.text


@pytest.mark.parametrize("who", ["acme", "owner"])
def test_only_platform_operators_set_the_debug_flag(acme, people, who):
    api = acme if who == "acme" else session(people.owner)

    created = api.post(f"{BASE}/tenants/acme/keys", {"allow_debug": True}, format="json")
    changed = api.patch(
        f"{BASE}/tenants/acme/keys/{people.key.pk}", {"allow_debug": True}, format="json"
    )

    assert created.status_code == 403 and changed.status_code == 403
    assert not ApiKey.objects.filter(allow_debug=True).exists()


def test_a_platform_token_sets_the_debug_flag(platform, people):
    response = platform.patch(
        f"{BASE}/tenants/acme/keys/{people.key.pk}", {"allow_debug": True}, format="json"
    )

    assert response.status_code == 200 and response.json()["allow_debug"] is True


def test_key_patch_changes_only_what_it_names(acme, people):
    ApiKey.objects.filter(pk=people.key.pk).update(rpm=5, allow_debug=True)

    response = acme.patch(
        f"{BASE}/tenants/acme/keys/{people.key.pk}", {"tpm": 1000, "name": "ci-2"}, format="json"
    )

    assert response.status_code == 200
    people.key.refresh_from_db()
    assert (people.key.name, people.key.rpm, people.key.tpm, people.key.allow_debug) == (
        "ci-2",
        5,
        1000,
        True,
    )


def test_a_key_rotates_with_the_grace_period_asked(acme, people):
    before = timezone.now()

    response = acme.post(
        f"{BASE}/tenants/acme/keys/{people.key.pk}/rotate", {"grace_seconds": 600}, format="json"
    )

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    new_secret = response.json()["secret"]
    people.key.refresh_from_db()
    assert people.key.secret_hash == keys.hash_secret(new_secret)
    assert people.key.previous_secret_hash == keys.hash_secret(people.key.secret)
    grace = people.key.previous_expires_at - before
    assert timedelta(seconds=590) < grace <= timedelta(seconds=610)


@pytest.mark.parametrize("body", [{"grace_seconds": -1}, {"grace_seconds": 10**9}, {"grace": 5}])
def test_bad_rotation_input_is_400_and_keeps_the_secret(acme, people, body):
    response = acme.post(f"{BASE}/tenants/acme/keys/{people.key.pk}/rotate", body, format="json")

    assert response.status_code == 400
    people.key.refresh_from_db()
    assert people.key.secret_hash == keys.hash_secret(people.key.secret)


def test_a_key_is_revoked(acme, people):
    response = acme.post(f"{BASE}/tenants/acme/keys/{people.key.pk}/revoke")

    assert response.status_code == 200 and response.json()["revoked_at"]
    people.key.refresh_from_db()
    assert people.key.revoked_at is not None


def test_another_tenants_keys_are_404_for_a_tenant_token(acme, people):
    other = people.other_key.pk

    assert acme.get(f"{BASE}/tenants/acme/keys/{other}").status_code == 404
    assert acme.post(f"{BASE}/tenants/acme/keys/{other}/revoke").status_code == 404
    assert acme.post(f"{BASE}/tenants/acme/keys/{other}/rotate").status_code == 404
    assert acme.get(f"{BASE}/tenants/globex/keys").status_code == 404
    assert acme.post(f"{BASE}/tenants/globex/keys", {}, format="json").status_code == 404
    people.other_key.refresh_from_db()
    assert people.other_key.revoked_at is None and people.other_key.rotated_at is None


@pytest.mark.parametrize(
    "who,create", [("owner", 201), ("admin", 201), ("viewer", 403), ("outsider", 404)]
)
def test_key_creation_by_session_follows_roles(people, who, create):
    response = session(getattr(people, who)).post(
        f"{BASE}/tenants/acme/keys", {"name": "x"}, format="json"
    )

    assert response.status_code == create


# --- Usage -------------------------------------------------------------------------------------


def test_usage_is_the_tenants_own(acme, globex, people):
    today = timezone.now().date()
    DailyUsageFactory(tenant=people.tenant, day=today, requests=3)
    DailyUsageFactory(tenant=people.other, day=today, requests=9)

    mine = acme.get(f"{BASE}/tenants/acme/usage", {"group_by": ""})
    theirs = acme.get(f"{BASE}/tenants/globex/usage")
    bad = acme.get(f"{BASE}/tenants/acme/usage", {"group_by": "color"})

    assert mine.status_code == 200
    assert [r["requests"] for r in mine.json()["results"]] == [3]
    assert theirs.status_code == 404
    assert bad.status_code == 400


def test_a_token_made_for_one_tenant_never_reaches_a_new_one(platform, people):
    _, secret = service_token_create(name="scoped", tenant=people.tenant)
    platform.post(f"{BASE}/tenants", {"name": "newco"}, format="json")

    assert bearer(secret).get(f"{BASE}/tenants/newco").status_code == 404


def test_session_writes_need_the_csrf_token(people):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(people.owner)

    response = api.post(f"{BASE}/tenants/acme/keys", {"name": "x"}, format="json")

    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not ApiKey.objects.filter(name="x").exists()
