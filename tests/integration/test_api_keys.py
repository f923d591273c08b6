"""API keys: the commands, the services behind them, and the admin screens for keys/providers."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Tenant
from accounts.selectors import api_key_find
from accounts.services import ServiceError, api_key_create, api_key_revoke, tenant_create
from core import state
from tests.factories import (
    MembershipFactory,
    ModelFactory,
    ProviderFactory,
    TenantFactory,
    make_key,
)

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")


def create_key(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().rstrip("\n").splitlines()


def cache_entry(secret_hash: str) -> None:
    """Pretend a gateway replica cached this key's policy."""
    state.sync_redis().set(keys.redis_key(secret_hash), b"cached")


def is_cached(secret_hash: str) -> bool:
    return state.sync_redis().exists(keys.redis_key(secret_hash)) == 1


# --- create_api_key / revoke_api_key ----------------------------------------------------------


def test_create_api_key_prints_the_secret_alone_on_the_last_line():
    TenantFactory(name="acme")

    lines = create_key("--tenant", "acme", "--name", "ci")

    secret = lines[-1]
    assert SECRET.fullmatch(secret)
    assert all(secret not in line for line in lines[:-1])
    key = ApiKey.objects.get(tenant__name="acme")
    assert key.name == "ci"
    assert key.prefix == secret[: keys.SHOWN_PREFIX_LENGTH]
    assert key.secret_hash == keys.hash_secret(secret)


def test_only_the_hash_of_the_secret_is_stored():
    key, secret = make_key()

    row = ApiKey.objects.filter(pk=key.pk).values().get()

    assert all(secret not in str(value) for value in row.values())
    assert row["secret_hash"] == keys.hash_secret(secret)


def test_create_api_key_for_an_unknown_tenant_fails():
    with pytest.raises(CommandError, match="no tenant named 'nobody'"):
        create_key("--tenant", "nobody")


def test_allowed_models_are_stored():
    ModelFactory(name="claude-sonnet-4-5")
    ModelFactory(name="claude-haiku-4-5")
    TenantFactory(name="acme")

    create_key(
        "--tenant", "acme", "--models", "claude-sonnet-4-5, claude-haiku-4-5", "--allow-debug"
    )

    key = ApiKey.objects.get(tenant__name="acme")
    assert set(key.allowed_models.values_list("name", flat=True)) == {
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    }
    assert key.allow_debug is True


def test_unknown_models_are_refused_by_name():
    ModelFactory(name="claude-sonnet-4-5")
    TenantFactory(name="acme")

    with pytest.raises(CommandError, match="unknown model\\(s\\): claude-x, claude-y"):
        create_key("--tenant", "acme", "--models", "claude-sonnet-4-5,claude-x,claude-y")

    assert not ApiKey.objects.exists()


def test_a_key_cannot_allow_a_model_its_tenant_may_not_use():
    ModelFactory(name="claude-sonnet-4-5")
    ModelFactory(name="claude-opus-4-1")
    tenant = tenant_create(name="acme", models=["claude-sonnet-4-5"])

    with pytest.raises(ServiceError, match="tenant 'acme' may not use: claude-opus-4-1"):
        api_key_create(tenant=tenant, models=["claude-opus-4-1"])


def test_expiry_is_set_from_days():
    TenantFactory(name="acme")

    create_key("--tenant", "acme", "--expires-in-days", "30")

    key = ApiKey.objects.get(tenant__name="acme")
    expected = timezone.now() + timedelta(days=30)
    assert abs(key.expires_at - expected) < timedelta(minutes=1)
    assert key.is_active


def test_an_expired_key_is_not_active():
    key, _ = make_key(expires_in_days=1)
    key.expires_at = timezone.now() - timedelta(seconds=1)

    assert not key.is_active


def test_expiry_must_be_positive():
    TenantFactory(name="acme")

    with pytest.raises(CommandError, match="positive"):
        create_key("--tenant", "acme", "--expires-in-days", "0")


@pytest.mark.parametrize("by", ["prefix", "secret"])
def test_revoke_api_key_by_prefix_or_whole_secret(by, django_capture_on_commit_callbacks):
    key, secret = make_key()
    other, _ = make_key(tenant=key.tenant)
    cache_entry(key.secret_hash)
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("revoke_api_key", key.prefix if by == "prefix" else secret, stdout=out)

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not key.is_active
    assert f"Revoked API key {key.prefix}" in out.getvalue()
    assert not is_cached(key.secret_hash)
    other.refresh_from_db()
    assert other.revoked_at is None


def test_revoking_an_unknown_key_fails_without_echoing_the_secret():
    secret = "tg_" + "x" * 40

    with pytest.raises(CommandError) as refused:
        call_command("revoke_api_key", secret)

    assert secret not in str(refused.value)
    with pytest.raises(CommandError, match="no API key matches 'tg_nothere'"):
        call_command("revoke_api_key", "tg_nothere")


def test_revoking_twice_keeps_the_first_time():
    key, _ = make_key()
    first = api_key_revoke(key=key).revoked_at

    assert api_key_revoke(key=api_key_find(ref=key.prefix)).revoked_at == first


# --- Admin: keys ------------------------------------------------------------------------------


def test_admin_add_shows_the_secret_exactly_once(admin_client):
    tenant = TenantFactory(name="acme")
    model = ModelFactory(name="claude-sonnet-4-5")

    response = admin_client.post(
        reverse("admin:accounts_apikey_add"),
        {
            "tenant": tenant.pk,
            "name": "from-admin",
            "expires_in_days": "7",
            "allowed_models": [model.pk],
            "allow_debug": "on",
        },
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode()
    secrets = SECRET.findall(page)
    assert len(secrets) == 1
    key = ApiKey.objects.get(name="from-admin")
    assert key.secret_hash == keys.hash_secret(secrets[0])
    assert list(key.allowed_models.all()) == [model]
    assert key.allow_debug and key.expires_at is not None
    later = admin_client.get(reverse("admin:accounts_apikey_change", args=[key.pk]))
    assert later.status_code == 200
    assert secrets[0] not in later.content.decode()
    assert key.prefix in later.content.decode()


def test_admin_add_form_refuses_models_outside_the_tenant(admin_client):
    ModelFactory(name="claude-sonnet-4-5")
    opus = ModelFactory(name="claude-opus-4-1")
    tenant = tenant_create(name="acme", models=["claude-sonnet-4-5"])

    response = admin_client.post(
        reverse("admin:accounts_apikey_add"),
        {"tenant": tenant.pk, "name": "x", "allowed_models": [opus.pk]},
    )

    assert response.status_code == 200
    assert "may not use: claude-opus-4-1" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_admin_policy_edit_drops_the_cached_key(admin_client, django_capture_on_commit_callbacks):
    key, _ = make_key(name="before")
    cache_entry(key.secret_hash)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_apikey_change", args=[key.pk]),
            {"name": "after", "allow_debug": "on", "expires_at_0": "", "expires_at_1": ""},
        )

    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.allow_debug) == ("after", True)
    assert not is_cached(key.secret_hash)


def test_admin_revoke_action_revokes_only_the_selected_keys(
    admin_client, django_capture_on_commit_callbacks
):
    chosen, _ = make_key()
    outsider, _ = make_key()
    cache_entry(chosen.secret_hash)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_apikey_changelist"),
            {"action": "revoke_selected", "_selected_action": [chosen.pk]},
            follow=True,
        )

    assert "Revoked 1 key(s)." in response.content.decode()
    chosen.refresh_from_db()
    outsider.refresh_from_db()
    assert chosen.revoked_at is not None
    assert outsider.revoked_at is None
    assert not is_cached(chosen.secret_hash)


def test_admin_key_list_filters_by_revoked(admin_client):
    revoked, _ = make_key()
    api_key_revoke(key=revoked)
    active, _ = make_key()

    response = admin_client.get(reverse("admin:accounts_apikey_changelist"), {"revoked": "no"})

    page = response.content.decode()
    assert active.prefix in page
    assert revoked.prefix not in page


def test_a_tenant_member_without_staff_rights_cannot_open_key_admin(client):
    member = MembershipFactory().user
    client.force_login(member)

    response = client.get(reverse("admin:accounts_apikey_add"))

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def staff_with(*codenames: str):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_staff_without_permissions_are_refused_by_the_key_admin(client):
    client.force_login(staff_with())

    listed = client.get(reverse("admin:accounts_apikey_changelist"))

    assert listed.status_code == 403


def test_staff_who_may_only_view_keys_cannot_revoke_them_with_the_list_action(client):
    key, _ = make_key()
    client.force_login(staff_with("view_apikey"))

    listed = client.get(reverse("admin:accounts_apikey_changelist"))
    acted = client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )

    assert listed.status_code == 200
    assert b"revoke_selected" not in listed.content
    assert acted.status_code in (200, 302)
    key.refresh_from_db()
    assert key.revoked_at is None


def test_staff_who_may_change_keys_revoke_them_with_the_list_action(client):
    key, _ = make_key()
    client.force_login(staff_with("view_apikey", "change_apikey"))

    client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )

    key.refresh_from_db()
    assert key.revoked_at is not None


# --- Admin: provider credentials --------------------------------------------------------------

CREDENTIAL = "sk-live-do-not-render-0123456789"


def provider_form(provider, **changes) -> dict:
    data = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "enabled": "on",
        "extra_headers": "{}",
        "connect_timeout": "10",
        "first_byte_timeout": "120",
        "idle_timeout": "120",
        "credential": "",
    }
    data.update(changes)
    return data


@pytest.fixture
def provider():
    provider = ProviderFactory(
        name="anthropic-main", kind="anthropic", base_url="https://api.anthropic.com"
    )
    provider.set_credential(CREDENTIAL)
    provider.save()
    return provider


def test_admin_provider_change_page_never_contains_the_credential(admin_client, provider):
    response = admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert CREDENTIAL not in page
    assert provider.credential_encrypted not in page
    assert ">set<" in page


def test_admin_provider_save_with_empty_credential_keeps_it(admin_client, provider):
    response = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]),
        provider_form(provider, base_url="https://proxy.example.com"),
    )

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.base_url == "https://proxy.example.com"
    assert provider.credential == CREDENTIAL


def test_admin_provider_credential_can_be_replaced_and_cleared(admin_client, provider):
    url = reverse("admin:providers_provider_change", args=[provider.pk])

    admin_client.post(url, provider_form(provider, credential="sk-new-0001"))
    provider.refresh_from_db()
    assert provider.credential == "sk-new-0001"

    admin_client.post(url, provider_form(provider, clear_credential="on"))
    provider.refresh_from_db()
    assert not provider.has_credential


def test_admin_provider_form_with_an_error_does_not_echo_the_new_credential(admin_client, provider):
    response = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]),
        provider_form(provider, credential="sk-typed-0002", clear_credential="on"),
    )

    assert response.status_code == 200
    assert "sk-typed-0002" not in response.content.decode()
    provider.refresh_from_db()
    assert provider.credential == CREDENTIAL


# --- Admin: tenants ---------------------------------------------------------------------------


def test_admin_adds_a_tenant_with_a_member(admin_client):
    user = MembershipFactory().user
    model = ModelFactory(name="claude-sonnet-4-5")

    response = admin_client.post(
        reverse("admin:accounts_tenant_add"),
        {
            "name": "initech",
            "display_name": "Initech",
            "allowed_models": [model.pk],
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": user.pk,
            "memberships-0-role": "admin",
        },
    )

    assert response.status_code == 302
    tenant = Tenant.objects.get(name="initech")
    assert list(tenant.allowed_models.all()) == [model]
    assert tenant.memberships.get().user == user


def test_admin_disabling_a_tenant_drops_its_cached_keys(
    admin_client, django_capture_on_commit_callbacks
):
    key, _ = make_key()
    outsider, _ = make_key()
    cache_entry(key.secret_hash)
    cache_entry(outsider.secret_hash)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_tenant_change", args=[key.tenant.pk]),
            {
                "display_name": "Off",
                "memberships-TOTAL_FORMS": "0",
                "memberships-INITIAL_FORMS": "0",
            },
        )

    assert response.status_code == 302
    assert Tenant.objects.get(pk=key.tenant.pk).is_active is False
    assert not is_cached(key.secret_hash)
    assert is_cached(outsider.secret_hash)
