"""A key's limits on its dashboard page: shown to everyone who sees the key, set by the tenant's
owners and admins (the tenant's own limits stay with platform admins)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from accounts import keys
from accounts.models import ApiKey, AuditEntry, Membership
from tests.factories import DailyUsageFactory

pytestmark = pytest.mark.django_db

LIMITS = {"rpm": "60", "tpm": "40000", "budget_usd": "25.50", "budget_period": "daily"}


def url(p, tenant: str = "acme", key=None) -> str:
    return f"/dashboard/{tenant}/keys/{(key or p.key).pk}/limits/"


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN])
def test_owners_and_admins_set_a_keys_limits(
    client, people, role, django_capture_on_commit_callbacks
):
    client.force_login(people.owner if role == Membership.Role.OWNER else people.admin)
    shared = redis.Redis.from_url(settings.REDIS_URL)
    entry = keys.redis_key(people.key.secret_hash)
    shared.set(entry, b"cached before the change")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(people), LIMITS)

    assert response.status_code == 302
    assert response.headers["Location"] == f"/dashboard/acme/keys/{people.key.pk}/"
    key = ApiKey.objects.get(pk=people.key.pk)
    assert (key.rpm, key.tpm, key.budget_usd, key.budget_period) == (
        60,
        40000,
        Decimal("25.50"),
        "daily",
    )
    assert not shared.exists(entry)  # gateways learn the new limits at their next lookup
    change = AuditEntry.objects.filter(object_id=str(key.pk)).latest("created_at")
    assert change.after["rpm"] == 60 and change.before["rpm"] is None


def test_emptied_fields_remove_a_limit(client, people):
    ApiKey.objects.filter(pk=people.key.pk).update(rpm=10, budget_usd=Decimal(5))
    client.force_login(people.owner)

    client.post(url(people), {"rpm": "", "tpm": "", "budget_usd": "", "budget_period": "monthly"})

    key = ApiKey.objects.get(pk=people.key.pk)
    assert (key.rpm, key.budget_usd) == (None, None)


@pytest.mark.parametrize(
    "field, value",
    [("rpm", "0"), ("tpm", "-5"), ("budget_usd", "2000000"), ("budget_period", "weekly")],
)
def test_invalid_limits_are_refused_with_the_reason_and_nothing_changes(
    client, people, field, value
):
    client.force_login(people.owner)

    response = client.post(url(people), {**LIMITS, field: value})

    assert response.status_code == 400
    assert field in response.context["limits_form"].errors
    assert b'role="alert"' in response.content
    key = ApiKey.objects.get(pk=people.key.pk)
    assert (key.rpm, key.tpm, key.budget_usd) == (None, None, None)


def test_viewers_see_limits_but_cannot_change_them(client, people):
    ApiKey.objects.filter(pk=people.key.pk).update(rpm=30)
    client.force_login(people.viewer)

    page = client.get(f"/dashboard/acme/keys/{people.key.pk}/")
    refused = client.post(url(people), LIMITS)

    assert b"30 requests/min" in page.content
    assert page.context["limits_form"] is None and b"Save limits" not in page.content
    assert refused.status_code == 403
    assert ApiKey.objects.get(pk=people.key.pk).rpm == 30


def test_another_tenants_key_is_not_found(client, people):
    client.force_login(people.owner)

    direct = client.post(url(people, key=people.other_key), LIMITS)
    via_own = client.post(url(people, tenant="globex"), LIMITS)

    assert (direct.status_code, via_own.status_code) == (404, 404)
    assert ApiKey.objects.get(pk=people.other_key.pk).rpm is None


def test_the_page_shows_each_budget_with_what_its_period_has_cost(client, people):
    people.tenant.budget_usd, people.tenant.budget_period = Decimal(100), "monthly"
    people.tenant.save()
    ApiKey.objects.filter(pk=people.key.pk).update(budget_usd=Decimal(10), budget_period="daily")
    today = datetime.now(UTC).date()
    DailyUsageFactory(tenant=people.tenant, api_key=people.key, day=today, cost_usd=Decimal("2.5"))
    client.force_login(people.viewer)

    page = client.get(f"/dashboard/acme/keys/{people.key.pk}/").content.decode()

    assert "$2.50 of $10.00 spent this day" in page
    assert "$2.50 of $100.00 spent this month" in page
