"""Limits are set through the command, `gateway_apply` and the admin, and reach the hot path
through the key's cached info (changes drop it: tenant changes drop all its keys)."""

from decimal import Decimal
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts import keys
from accounts.keys import Limits
from accounts.models import ApiKey, Tenant
from accounts.services import (
    ServiceError,
    api_key_create,
    api_key_set_limits,
    tenant_set_limits,
)
from core import state
from providers.services import ConfigError, config_apply
from tests.factories import TenantFactory, make_key

pytestmark = pytest.mark.django_db(transaction=True)


def info(secret: str) -> keys.KeyInfo:
    state._async_clients.clear()
    keys._process_cache.clear()
    return async_to_sync(keys.authenticate)(secret)


def is_cached(secret_hash: str) -> bool:
    return state.sync_redis().exists(keys.redis_key(secret_hash)) == 1


def test_create_api_key_takes_limits_and_they_reach_the_key_info():
    TenantFactory(name="acme")
    out = StringIO()

    call_command(
        "create_api_key",
        "--tenant=acme",
        "--rpm=60",
        "--tpm=100000",
        "--budget-usd=12.5",
        "--budget-period=daily",
        stdout=out,
    )

    secret = out.getvalue().splitlines()[-1]
    assert "limits: rpm 60, tpm 100000, $12.50 daily" in out.getvalue()
    key = ApiKey.objects.get()
    assert (key.rpm, key.tpm, key.budget_usd, key.budget_period) == (
        60,
        100000,
        Decimal("12.50"),
        "daily",
    )
    assert info(secret).key_limits == Limits(60, 100000, Decimal("12.50"), "daily")
    assert info(secret).tenant_limits is None


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--rpm=0", "rpm must be a positive whole number"),
        ("--budget-usd=lots", "is not an amount"),
        ("--budget-usd=2000000", "budget_usd must be between 0 and 1000000"),
    ],
)
def test_create_api_key_refuses_bad_limits(option, message):
    TenantFactory(name="acme")

    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", "--tenant=acme", option, stdout=StringIO())

    assert not ApiKey.objects.exists()


def test_a_key_without_limits_carries_none_so_admission_skips_redis():
    _, secret = make_key()

    assert info(secret).key_limits is None and info(secret).tenant_limits is None


def test_gateway_apply_sets_tenant_limits_and_drops_every_cached_key(
    django_capture_on_commit_callbacks,
):
    config_apply(data={"tenants": [{"name": "acme"}]})
    tenant = Tenant.objects.get(name="acme")
    (one, first), _ = make_key(tenant=tenant), make_key(tenant=tenant)
    info(first)
    assert is_cached(one.secret_hash)

    limited = {
        "name": "acme",
        "rpm": 100,
        "tpm": 50000,
        "budget_usd": 250,
        "budget_period": "daily",
    }
    with django_capture_on_commit_callbacks(execute=True):
        summary = config_apply(data={"tenants": [limited]}).summary

    assert summary["tenants"]["updated"] == 1
    assert not is_cached(one.secret_hash)
    assert info(first).tenant_limits == Limits(100, 50000, Decimal("250.00"), "daily")
    assert config_apply(data={"tenants": [limited]}).summary["tenants"]["unchanged"] == 1
    config_apply(data={"tenants": [{"name": "acme"}]})  # left out: kept
    tenant.refresh_from_db()
    assert (tenant.rpm, tenant.tpm, tenant.budget_usd) == (100, 50000, Decimal("250.00"))
    config_apply(data={"tenants": [{"name": "acme", "rpm": None, "tpm": None, "budget_usd": None}]})
    tenant.refresh_from_db()
    assert (tenant.rpm, tenant.tpm, tenant.budget_usd) == (None, None, None)


def test_gateway_apply_refuses_a_bad_limit_naming_the_tenant():
    bad = {"tenants": [{"name": "acme", "budget_period": "weekly"}]}

    with pytest.raises(ConfigError, match=r"tenants\[0\] \(acme\)"):
        config_apply(data=bad)
    with pytest.raises(ConfigError, match=r"tenants\[0\] \(acme\)\.rpm"):
        config_apply(data={"tenants": [{"name": "acme", "rpm": 0}]})
    assert not Tenant.objects.exists()


def test_services_drop_cached_keys_only_when_a_limit_changes(django_capture_on_commit_callbacks):
    key, secret = make_key()
    info(secret)

    with django_capture_on_commit_callbacks(execute=True):
        assert not api_key_set_limits(key=key)  # nothing to change
    assert is_cached(key.secret_hash)

    with django_capture_on_commit_callbacks(execute=True):
        assert api_key_set_limits(key=key, rpm=10)
    assert not is_cached(key.secret_hash)
    with pytest.raises(ServiceError, match="budget_period"):
        tenant_set_limits(tenant=key.tenant, budget_period="hourly")


def test_admin_edits_tenant_and_key_limits(admin_client, django_capture_on_commit_callbacks):
    key, secret = make_key()
    tenant = key.tenant

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_tenant_change", args=[tenant.pk]),
            {
                "display_name": "Acme",
                "is_active": "on",
                "rpm": "30",
                "budget_usd": "99.99",
                "budget_period": "monthly",
                "memberships-TOTAL_FORMS": "0",
                "memberships-INITIAL_FORMS": "0",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        response = admin_client.post(
            reverse("admin:accounts_apikey_change", args=[key.pk]),
            {"name": "k", "expires_at_0": "", "expires_at_1": "", "tpm": "5000"},
        )
        assert response.status_code == 302

    seen = info(secret)
    assert seen.tenant_limits == Limits(30, None, Decimal("99.99"), "monthly")
    assert seen.key_limits == Limits(None, 5000, None, "monthly")


@pytest.mark.parametrize("limit", [{"rpm": 10}, {"tpm": 1000}, {"budget_usd": 5}])
def test_the_quick_start_refuses_limits_it_could_not_enforce(settings, limit):
    settings.REDIS_URL = ""
    tenant = Tenant.objects.create(name="acme")

    with pytest.raises(ServiceError, match="need Redis: set REDIS_URL"):
        api_key_create(tenant=tenant, name="k", **limit)
    with pytest.raises(ConfigError) as refused:
        config_apply(data={"tenants": [{"name": "acme", **limit}]})

    assert "tenants[0] (acme): rate limits and budgets need Redis" in str(refused.value)
    api_key_create(tenant=tenant, name="unlimited")  # no limit: fine without Redis
    config_apply(data={"tenants": [{"name": "acme", "rpm": None}]})


def test_the_admin_shows_why_a_limit_is_refused_without_redis(settings, admin_client):
    settings.REDIS_URL = ""
    tenant = Tenant.objects.create(name="acme")
    page = admin_client.post(
        f"/admin/accounts/tenant/{tenant.pk}/change/",
        {
            "name": "acme",
            "is_active": "on",
            "rpm": "10",
            "budget_period": "monthly",
            "provider_defaults": "{}",
        },
    )
    assert page.status_code == 200  # the form again, with the reason
    assert "need Redis" in page.content.decode()
    tenant.refresh_from_db()
    assert tenant.rpm is None
