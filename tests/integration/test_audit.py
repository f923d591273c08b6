"""The audit log: who changed what and when, before and after, never a secret."""

from __future__ import annotations

import json
import re
from io import StringIO
from types import SimpleNamespace

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse

from accounts import audit, keys
from accounts.authentication import TenantKeyPrincipal
from accounts.models import ApiKey, AuditEntry
from accounts.services import api_key_revoke, api_key_rotate, tenant_set_limits
from providers.models import Provider
from tests.factories import (
    MembershipFactory,
    ModelFactory,
    ProviderFactory,
    TenantFactory,
    UserFactory,
    make_key,
)

pytestmark = pytest.mark.django_db

CREDENTIAL = "sk-live-never-in-the-log-0123456789"


def entries_json() -> str:
    return json.dumps(list(AuditEntry.objects.values()), default=str)


def test_admin_key_creation_records_who_what_and_when_without_the_secret(admin_client):
    tenant = TenantFactory(name="acme")
    AuditEntry.objects.all().delete()

    response = admin_client.post(
        reverse("admin:accounts_apikey_add"),
        {"tenant": tenant.pk, "name": "from-admin", "rpm": "60"},
        follow=True,
    )

    assert response.status_code == 200
    key = ApiKey.objects.get(name="from-admin")
    (secret,) = re.findall(r"tg_[A-Za-z0-9]{40}", response.content.decode())
    assert keys.hash_secret(secret) == key.secret_hash
    entry = AuditEntry.objects.get(object_type="api_key")
    assert (entry.actor.username, entry.actor_label) == ("admin", "admin")
    assert (entry.action, entry.object_id, entry.tenant) == ("create", str(key.pk), tenant)
    assert entry.before is None
    assert entry.after["name"] == "from-admin" and entry.after["rpm"] == 60
    assert entry.after["prefix"] == key.prefix
    assert entry.created_at is not None
    logged = entries_json()
    assert secret not in logged
    assert key.secret_hash not in logged
    assert "secret" not in logged


def test_revoke_and_rotate_are_recorded_without_hashes():
    key, secret = make_key(name="ci")
    old_hash = key.secret_hash

    new_secret = api_key_rotate(key=key)
    api_key_revoke(key=key)
    api_key_revoke(key=key)  # already revoked: nothing changed, nothing recorded

    rotate = AuditEntry.objects.get(action="rotate")
    revoke = AuditEntry.objects.get(action="revoke")
    assert rotate.before["prefix"] == rotate.after["previous_prefix"] != key.prefix
    assert rotate.after["prefix"] == key.prefix
    assert revoke.before == {"revoked_at": None}
    assert revoke.after == {"revoked_at": key.revoked_at.isoformat()}
    logged = entries_json()
    for value in (secret, new_secret, old_hash, key.secret_hash, key.previous_secret_hash):
        assert value not in logged


def test_tenant_limit_change_records_only_the_changed_fields():
    tenant = TenantFactory(name="acme")

    tenant_set_limits(tenant=tenant, rpm=60, budget_period="monthly")
    tenant_set_limits(tenant=tenant, rpm=60, budget_period="monthly")  # no-op: no entry

    entry = AuditEntry.objects.get(object_type="tenant", action="update")
    assert (entry.before, entry.after) == ({"rpm": None}, {"rpm": 60})
    assert (entry.tenant, entry.actor_label, entry.actor) == (tenant, "system", None)


def test_provider_credential_change_records_that_it_is_set_never_its_value(admin_client):
    provider = ProviderFactory(name="anthropic-main", kind="anthropic")
    form = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": "",
        "enabled": "on",
        "extra_headers": '{"x-api-key": "hdr-secret-value", "anthropic-beta": "x"}',
        "connect_timeout": "10",
        "first_byte_timeout": "120",
        "idle_timeout": "120",
        "credential": CREDENTIAL,
    }

    response = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]), form
    )

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.credential == CREDENTIAL
    entry = AuditEntry.objects.get(object_type="provider")
    assert (entry.action, entry.actor_label) == ("update", "admin")
    assert entry.before["credential"] == "not set"
    assert entry.after["credential"] == "set"
    # Extra header values are credentials too: the entry names the headers only.
    assert entry.after["extra_headers"] == {
        "x-api-key": "<redacted>",
        "anthropic-beta": "<redacted>",
    }
    logged = entries_json()
    assert CREDENTIAL not in logged
    assert provider.credential_encrypted not in logged
    assert "hdr-secret-value" not in logged


CONFIG = {
    "providers": [{"name": "anthropic-main", "kind": "anthropic", "api_key": CREDENTIAL}],
    "models": [
        {
            "name": "claude-sonnet-4-5",
            "routes": [{"provider": "anthropic-main", "upstream_model": "claude-sonnet-4-5"}],
        }
    ],
    "tenants": [{"name": "acme", "models": ["claude-sonnet-4-5"], "rpm": 100}],
}


def test_gateway_apply_records_every_row_as_the_command(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(CONFIG))

    call_command("gateway_apply", str(path), stdout=StringIO())

    entries = AuditEntry.objects.all()
    assert {e.actor_label for e in entries} == {"cli:gateway_apply"}
    created = {(e.object_type, e.object_repr) for e in entries if e.action == "create"}
    assert created == {
        ("provider", "anthropic-main"),
        ("model", "claude-sonnet-4-5"),
        ("route", "claude-sonnet-4-5 -> anthropic-main:claude-sonnet-4-5"),
        ("tenant", "acme"),
    }
    tenant_entry = entries.get(object_type="tenant", action="create")
    assert tenant_entry.after["allowed_models"] == ["claude-sonnet-4-5"]
    assert entries.get(object_type="provider").after["credential"] == "set"
    assert CREDENTIAL not in entries_json()


def test_config_apply_records_routes_deleted_by_replacement(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    call_command("gateway_apply", str(path), stdout=StringIO())
    AuditEntry.objects.all().delete()
    changed = yaml.safe_load(yaml.safe_dump(CONFIG))
    changed["models"][0]["routes"][0]["upstream_model"] = "claude-sonnet-4-5-v2"
    path.write_text(yaml.safe_dump(changed))

    call_command("gateway_apply", str(path), stdout=StringIO())

    routes = AuditEntry.objects.filter(object_type="route")
    assert sorted(e.action for e in routes) == ["create", "delete"]
    assert not AuditEntry.objects.exclude(object_type="route").exists()  # the rest is as it was


def test_a_refused_config_records_nothing(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(CONFIG))
    bad["models"][0]["routes"][0]["provider"] = "nowhere"
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(bad))

    with pytest.raises(CommandError, match="unknown provider"):
        call_command("gateway_apply", str(path))

    assert not AuditEntry.objects.exists()
    assert not Provider.objects.exists()


def test_a_rolled_back_change_leaves_no_entry():
    tenant = TenantFactory(name="acme")

    with pytest.raises(RuntimeError), transaction.atomic():
        tenant_set_limits(tenant=tenant, rpm=5)
        raise RuntimeError

    assert not AuditEntry.objects.exists()


def test_dashboard_key_creation_records_the_tenant_owner(client, people):
    client.force_login(people.owner)
    nonce = client.get("/dashboard/acme/keys/").context["create_form"]["nonce"].value()

    response = client.post("/dashboard/acme/keys/", {"name": "laptop", "nonce": nonce})

    assert response.status_code == 200
    entry = AuditEntry.objects.get(action="create", object_repr__contains="laptop")
    assert (entry.actor, entry.actor_label, entry.tenant) == (
        people.owner,
        "olivia",
        people.tenant,
    )
    assert response.context["created_secret"] not in entries_json()


def test_rest_key_revoke_by_a_signed_in_admin_records_them(client, people):
    client.force_login(people.admin)

    response = client.post(f"/api/v1/keys/{people.key.pk}/revoke?tenant=acme")

    assert response.status_code == 200
    entry = AuditEntry.objects.get(action="revoke")
    assert (entry.actor, entry.actor_label) == (people.admin, "adam")


def test_a_key_authenticated_caller_is_named_by_its_prefix(people):
    principal = TenantKeyPrincipal(SimpleNamespace(prefix=people.key.prefix, tenant_id=1))

    assert audit.actor_for(principal) == audit.Actor(label=f"api-key:{people.key.prefix}")


async def test_the_middleware_sets_the_actor_in_async_requests_too(rf):
    seen = []

    async def view(request):
        seen.append(audit.current_actor())
        return None

    request = rf.get("/admin/")
    request.user = SimpleNamespace(is_authenticated=True, get_username=lambda: "alice")

    await audit.ActorMiddleware(view)(request)

    assert [actor.label for actor in seen] == ["alice"]
    assert audit.current_actor() == audit.SYSTEM  # reset after the response


def test_audit_admin_lists_entries_for_a_superuser_and_cannot_add(admin_client):
    key, _ = make_key(name="visible")

    listing = admin_client.get(reverse("admin:accounts_auditentry_changelist"))
    detail = admin_client.get(
        reverse("admin:accounts_auditentry_change", args=[AuditEntry.objects.get().pk])
    )
    add = admin_client.get(reverse("admin:accounts_auditentry_add"))

    assert listing.status_code == 200
    assert str(key) in listing.content.decode()
    assert detail.status_code == 200
    assert "<pre>{" in detail.content.decode()
    assert add.status_code == 403
    assert not listing.context["cl"].model_admin.has_add_permission(listing.wsgi_request)


def test_a_tenant_member_without_staff_rights_cannot_reach_the_audit_log(client):
    member = MembershipFactory(user=UserFactory(username="mia")).user
    client.force_login(member)

    response = client.get(reverse("admin:accounts_auditentry_changelist"))

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_snapshots_leave_out_secret_fields_but_keep_token_counts():
    model = ModelFactory(name="claude-x", max_tokens=4096)
    key, _ = make_key()

    assert audit.snapshot(model)["max_tokens"] == 4096
    snap = audit.snapshot(key)
    assert not {"secret_hash", "previous_secret_hash"} & snap.keys()
