"""Admin REST API: invitations of a tenant (list, create with the link returned once and
emailed, withdraw), with permissions per caller; another tenant's are 404; bad input is 400."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts import services
from accounts.keys import hash_secret
from accounts.models import Invitation
from tests.integration.admin_api.conftest import BASE, session

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver/invite/(tgi_[A-Za-z0-9_-]+)/")


def invite(people, email="nina@example.com", role="admin"):
    return services.invitation_create(
        tenant=people.tenant, email=email, role=role, invited_by=people.owner
    )


# --- REST admin API --------------------------------------------------------------------------


def test_a_tenant_token_invites_lists_and_withdraws(
    acme, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = acme.post(
            f"{BASE}/tenants/acme/invitations",
            {"email": "nina@example.com", "role": "viewer"},
            format="json",
        )
    listed = acme.get(f"{BASE}/tenants/acme/invitations")

    body = created.json()
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    token = LINK.search(body["accept_url"]).group(1)
    assert LINK.search(mail.outbox[0].body).group(1) == token
    assert Invitation.objects.get().token_hash == hash_secret(token)
    assert Invitation.objects.get().invited_by is None
    assert listed.status_code == 200
    assert [i["email"] for i in listed.json()["results"]] == ["nina@example.com"]
    assert token not in listed.content.decode() and "accept_url" not in listed.content.decode()

    removed = acme.delete(f"{BASE}/tenants/acme/invitations/{body['id']}")
    again = acme.delete(f"{BASE}/tenants/acme/invitations/{body['id']}")
    assert removed.status_code == 204 and again.status_code == 404
    assert acme.get(f"{BASE}/tenants/acme/invitations").json()["results"] == []


def test_the_platform_token_invites_in_any_tenant(platform, people):
    created = platform.post(
        f"{BASE}/tenants/globex/invitations",
        {"email": "g@example.com", "role": "owner"},
        format="json",
    )

    assert created.status_code == 201
    assert Invitation.objects.get().tenant == people.other


def test_another_tenants_invitations_are_404(acme, globex, people):
    theirs, _ = services.invitation_create(
        tenant=people.other, email="z@example.com", role="viewer"
    )

    assert acme.get(f"{BASE}/tenants/globex/invitations").status_code == 404
    assert (
        acme.post(
            f"{BASE}/tenants/globex/invitations",
            {"email": "a@example.com", "role": "viewer"},
            format="json",
        ).status_code
        == 404
    )
    assert acme.delete(f"{BASE}/tenants/acme/invitations/{theirs.pk}").status_code == 404
    assert acme.delete(f"{BASE}/tenants/globex/invitations/{theirs.pk}").status_code == 404
    assert theirs.is_pending


@pytest.mark.parametrize(
    ("who", "can_list", "can_invite"),
    [
        ("owner", True, True),
        ("admin", True, False),
        ("viewer", True, False),
        ("outsider", False, False),
    ],
)
def test_invitations_by_session_per_role(people, who, can_list, can_invite):
    api = session(getattr(people, who))
    invitation, _ = invite(people)

    listed = api.get(f"{BASE}/tenants/acme/invitations")
    created = api.post(
        f"{BASE}/tenants/acme/invitations",
        {"email": "zed@example.com", "role": "viewer"},
        format="json",
    )
    removed = api.delete(f"{BASE}/tenants/acme/invitations/{invitation.pk}")

    hidden = 404  # an outsider does not see that acme exists
    assert listed.status_code == (200 if can_list else hidden)
    assert created.status_code == (201 if can_invite else 403 if can_list else hidden)
    assert removed.status_code == (204 if can_invite else 403 if can_list else hidden)
    if can_invite:
        assert Invitation.objects.get(email="zed@example.com").invited_by == people.owner


def test_anonymous_callers_get_401(people):
    assert APIClient().get(f"{BASE}/tenants/acme/invitations").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x" * 300 + "@example.com", "role": "viewer"},
        {"email": "nina@example.com", "role": "god"},
        {"email": "nina@example.com", "role": "viewer", "expires_at": "2030-01-01T00:00:00Z"},
        {"email": "victor@example.com", "role": "viewer"},  # already a member
        {"email": ["a@example.com"], "role": "viewer"},
        {"role": "viewer"},
    ],
)
def test_bad_invitation_input_is_400(acme, people, body):
    response = acme.post(f"{BASE}/tenants/acme/invitations", body, format="json")

    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_inviting_a_member_is_refused_beside_the_email_field(acme, people):
    response = acme.post(
        f"{BASE}/tenants/acme/invitations",
        {"email": "victor@example.com", "role": "viewer"},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    assert "already a member" in response.json()["email"][0]


def test_adding_an_unknown_email_as_a_member_points_to_invitations(acme, people):
    response = acme.post(
        f"{BASE}/tenants/acme/members",
        {"user": "nina@example.com", "role": "viewer"},
        format="json",
    )

    assert response.status_code == 400
    assert "invite their email" in response.json()["user"][0]
