"""The admin shows a new or rotated key's secret once, in the response to its POST: never in a
message, whose cookie is signed but not encrypted, nor in the session."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from accounts import keys
from accounts.models import ApiKey
from tests.factories import TenantFactory, make_key

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")


def assert_only_in_the_page(client, response, secret: str) -> None:
    tail = secret[-24:]
    assert response.status_code == 200 and secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert tail not in str(response.cookies)
    added = response.wsgi_request._messages
    assert all(tail not in str(m) for m in [*added._loaded_messages, *added._queued_messages])
    assert tail not in json.dumps(dict(client.session.items()), default=str)
    later = client.get(reverse("admin:accounts_apikey_changelist"))
    assert tail not in later.content.decode()


def test_a_key_added_in_the_admin_shows_its_secret_in_that_response_only(admin_client):
    tenant = TenantFactory(name="acme")

    response = admin_client.post(
        reverse("admin:accounts_apikey_add"),
        {"tenant": tenant.pk, "name": "from-admin", "budget_period": "monthly"},
    )

    shown = SECRET.findall(response.content.decode())
    key = ApiKey.objects.get(name="from-admin")
    assert len(shown) == 1 and key.secret_hash == keys.hash_secret(shown[0])
    assert_only_in_the_page(admin_client, response, shown[0])


def test_rotating_in_the_admin_shows_each_new_secret_in_that_response_only(admin_client):
    first, _ = make_key(name="one")
    second, _ = make_key(name="two")

    response = admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "rotate_selected", "_selected_action": [first.pk, second.pk]},
    )

    shown = SECRET.findall(response.content.decode())
    first.refresh_from_db()
    second.refresh_from_db()
    assert {keys.hash_secret(s) for s in shown} == {first.secret_hash, second.secret_hash}
    assert "works until" in response.content.decode()
    for secret in shown:
        assert_only_in_the_page(admin_client, response, secret)


def test_rotating_only_revoked_keys_says_so(admin_client):
    key, _ = make_key()
    ApiKey.objects.filter(pk=key.pk).update(revoked_at="2026-01-01T00:00:00Z")

    response = admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "rotate_selected", "_selected_action": [key.pk]},
        follow=True,
    )

    assert "Revoked keys cannot be rotated." in response.content.decode()
    key.refresh_from_db()
    assert key.rotated_at is None
