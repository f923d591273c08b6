"""Service tokens: made by `manage.py service_token` and the admin, secret shown once and never
stored, revocable, audited."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts import keys
from accounts.models import AuditEntry, ServiceToken
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r"tgs_[A-Za-z0-9]{40}")


def run(*args) -> str:
    out = io.StringIO()
    call_command("service_token", *args, stdout=out)
    return out.getvalue()


def test_the_command_creates_a_tenant_token_and_prints_its_secret_once():
    TenantFactory(name="acme")

    output = run("create", "--name", "ci", "--tenant", "acme", "--expires", "30d")

    secret = output.strip().splitlines()[-1]
    assert TOKEN.fullmatch(secret) and len(TOKEN.findall(output)) == 1
    token = ServiceToken.objects.get(name="ci")
    assert token.tenant.name == "acme" and token.secret_hash == keys.hash_secret(secret)
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    entry = AuditEntry.objects.get(object_type="service_token")
    assert entry.actor_label == "cli:service_token" and entry.tenant.name == "acme"
    assert "secret_hash" not in entry.after and token.secret_hash not in str(entry.after)
    assert secret not in run("list")


def test_the_command_makes_platform_tokens_and_takes_iso_dates():
    output = run("create", "--name", "terraform", "--expires", "2999-01-01")

    token = ServiceToken.objects.get(name="terraform")
    assert token.tenant is None and "platform-wide" in output
    assert token.expires_at.year == 2999 and token.expires_at.tzinfo is not None


@pytest.mark.parametrize(
    "args",
    [
        ["create", "--name", "x", "--tenant", "ghost"],
        ["create", "--name", "x", "--expires", "tomorrow"],
        ["create", "--name", "x", "--expires", "2001-01-01"],
        ["create", "--name", " "],
        ["create", "--name", "x" * 101],
        ["revoke", "tgs_nothing"],
    ],
)
def test_bad_command_input_is_a_clear_error(args):
    with pytest.raises(CommandError):
        run(*args)
    assert not ServiceToken.objects.exists()


def test_the_command_revokes_by_prefix():
    run("create", "--name", "ci")
    token = ServiceToken.objects.get()

    output = run("revoke", token.prefix)

    token.refresh_from_db()
    assert token.revoked_at is not None and token.prefix in output
    assert "revoked" in run("list")


def test_the_admin_shows_a_new_tokens_secret_once_and_never_in_a_cookie(admin_client):
    tenant = TenantFactory(name="acme")

    response = admin_client.post(
        reverse("admin:accounts_servicetoken_add"), {"name": "from-admin", "tenant": tenant.pk}
    )

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secrets = TOKEN.findall(response.content.decode())
    assert len(secrets) == 1
    token = ServiceToken.objects.get(name="from-admin")
    assert token.secret_hash == keys.hash_secret(secrets[0]) and token.tenant == tenant
    assert all(secrets[0] not in morsel.value for morsel in response.cookies.values())
    later = admin_client.get(reverse("admin:accounts_servicetoken_change", args=[token.pk]))
    assert later.status_code == 200 and secrets[0] not in later.content.decode()
    assert token.prefix in later.content.decode()


def test_the_admin_refuses_an_expiry_in_the_past(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_servicetoken_add"),
        {"name": "late", "expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"},
    )

    assert response.status_code == 200 and "Must be in the future" in response.content.decode()
    assert not ServiceToken.objects.exists()


def test_the_admin_revokes_selected_tokens(admin_client):
    run("create", "--name", "ci")
    token = ServiceToken.objects.get()

    admin_client.post(
        reverse("admin:accounts_servicetoken_changelist"),
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
