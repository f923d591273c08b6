"""Invitations: an owner invites an email address with a role (services, the members page, the
admin REST API); the link is emailed and works once, until it expires or is withdrawn, and only
for the account with the invited email. Only the token's SHA-256 is stored; the token is never
logged or listed again."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.keys import hash_secret
from accounts.models import AuditEntry, Invitation, Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver/invite/(tgi_[A-Za-z0-9_-]+)/")
MEMBERS = "/dashboard/acme/members/"


def invite(people, email="nina@example.com", role="admin"):
    return services.invitation_create(
        tenant=people.tenant, email=email, role=role, invited_by=people.owner
    )


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Services --------------------------------------------------------------------------------


def test_the_token_is_stored_only_as_its_hash_and_the_creation_is_audited(people):
    invitation, token = invite(people)

    row = Invitation.objects.get(pk=invitation.pk)
    assert token.startswith("tgi_") and len(token) > 40
    assert row.token_hash == hash_secret(token) and token not in str(row.__dict__)
    entry = AuditEntry.objects.get(object_type="invitation", action="create")
    assert entry.after["email"] == "nina@example.com" and entry.after["role"] == "admin"
    assert token not in str(entry.after) and row.token_hash not in str(entry.after)


def test_the_invited_account_accepts_once_with_its_email_in_any_case(people):
    invitation, token = invite(people)
    nina = UserFactory(username="nina", email="Nina@Example.COM")

    membership = services.invitation_accept(token=token, user=nina)

    assert membership.tenant == people.tenant and membership.role == "admin"
    invitation.refresh_from_db()
    assert invitation.accepted_by == nina and invitation.accepted_at is not None
    with pytest.raises(services.InvitationRefused, match="already been accepted"):
        services.invitation_accept(token=token, user=nina)
    assert Membership.objects.filter(user=nina).count() == 1


def test_a_leaked_link_is_useless_to_another_account(people):
    _, token = invite(people)
    mallory = UserFactory(username="mallory", email="mallory@example.com")

    with pytest.raises(services.InvitationRefused, match="another email address"):
        services.invitation_accept(token=token, user=mallory)
    assert not Membership.objects.filter(user=mallory).exists()


@pytest.mark.parametrize("state", ["expired", "revoked"])
def test_expired_and_withdrawn_invitations_cannot_be_accepted(people, state):
    invitation, token = invite(people)
    if state == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    else:
        assert services.invitation_revoke(invitation=invitation) is True
        assert services.invitation_revoke(invitation=invitation) is False
    nina = UserFactory(username="nina", email="nina@example.com")

    with pytest.raises(services.InvitationRefused):
        services.invitation_accept(token=token, user=nina)
    assert not Membership.objects.filter(user=nina).exists()


def test_a_new_invitation_replaces_the_pending_one_for_the_same_email(people):
    first, first_token = invite(people, role="viewer")
    second, second_token = invite(people, email="NINA@example.com", role="owner")
    nina = UserFactory(username="nina", email="nina@example.com")

    first.refresh_from_db()
    assert first.revoked_at is not None
    assert list(services.invitations_pending(tenant=people.tenant)) == [second]
    with pytest.raises(services.InvitationRefused):
        services.invitation_accept(token=first_token, user=nina)
    assert services.invitation_accept(token=second_token, user=nina).role == "owner"


@pytest.mark.parametrize(
    ("email", "role", "reason"),
    [
        ("victor@example.com", "viewer", "already a member"),  # victor is acme's viewer
        ("VICTOR@example.com", "viewer", "already a member"),
        ("x" * 250 + "@example.com", "viewer", "254"),
        ("not-an-email", "viewer", "valid email"),
        ("nina@example.com", "god", "role must be one of"),
    ],
)
def test_invitations_that_cannot_be_made_say_why(people, email, role, reason):
    with pytest.raises(services.ServiceError, match=reason):
        invite(people, email=email, role=role)
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("token", ["", "nonsense", "tgi_" + "a" * 43, "tgi_" + "a" * 5000])
def test_an_unknown_token_is_refused(people, token):
    with pytest.raises(services.ServiceError, match="not valid"):
        services.invitation_by_token(token)


# --- Dashboard -------------------------------------------------------------------------------


def test_owner_invites_by_email_and_the_link_is_mailed(people, django_capture_on_commit_callbacks):
    client = signed_in(people.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/dashboard/acme/members/invite/",
            {"invite-email": "nina@example.com", "invite-role": "admin"},
        )

    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nina@example.com"]
    token = LINK.search(mail.outbox[0].body).group(1)
    assert Invitation.objects.get().token_hash == hash_secret(token)
    page = client.get(MEMBERS).content.decode()
    assert "nina@example.com" in page and "Pending invitations" in page
    assert token not in page


def test_adding_an_email_without_an_account_offers_to_invite_them(client, people):
    client.force_login(people.owner)

    response = client.post(MEMBERS, {"user": "nina@example.com", "role": "admin"})

    page = response.content.decode()
    assert response.status_code == 400
    assert "invite them by email below" in page
    assert 'name="invite-email" value="nina@example.com"' in page  # the invite form, filled in


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_only_owners_invite_and_withdraw(people, who):
    invitation, _ = invite(people)
    client = signed_in(getattr(people, who))

    invited = client.post(
        "/dashboard/acme/members/invite/",
        {"invite-email": "zed@example.com", "invite-role": "owner"},
    )
    withdrawn = client.post(
        f"/dashboard/acme/invitations/{invitation.pk}/revoke/", {"confirm": "revoke"}
    )

    assert invited.status_code == 403 and withdrawn.status_code == 403
    assert "nina@example.com" not in client.get(MEMBERS).content.decode()
    assert list(services.invitations_pending(tenant=people.tenant)) == [invitation]


def test_owner_withdraws_an_invitation_and_another_tenants_is_404(people):
    invitation, _ = invite(people)
    theirs, _ = services.invitation_create(
        tenant=people.other, email="z@example.com", role="viewer"
    )
    client = signed_in(people.owner)

    other = client.post(f"/dashboard/acme/invitations/{theirs.pk}/revoke/", {"confirm": "revoke"})
    unconfirmed = client.post(f"/dashboard/acme/invitations/{invitation.pk}/revoke/")
    still = list(services.invitations_pending(tenant=people.tenant))
    done = client.post(
        f"/dashboard/acme/invitations/{invitation.pk}/revoke/", {"confirm": "revoke"}
    )

    assert other.status_code == 404 and theirs.is_pending
    assert unconfirmed.status_code == 302 and still == [invitation]
    assert done.status_code == 302
    assert not services.invitations_pending(tenant=people.tenant).exists()


@pytest.mark.parametrize(
    "form",
    [
        {"invite-email": "x" * 300 + "@example.com", "invite-role": "viewer"},
        {"invite-email": "nina@example.com", "invite-role": "god"},
        {"invite-email": "", "invite-role": "viewer"},
    ],
)
def test_bad_invitation_forms_are_400(people, form):
    response = signed_in(people.owner).post("/dashboard/acme/members/invite/", form)

    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_the_invitee_sees_the_tenant_and_role_then_accepts(people):
    _, token = invite(people)
    nina = UserFactory(username="nina", email="nina@example.com")
    client = signed_in(nina)

    shown = client.get(f"/invite/{token}/")
    accepted = client.post(f"/invite/{token}/")
    again = client.post(f"/invite/{token}/")

    assert shown.status_code == 200
    assert "Acme Corp" in shown.content.decode() and "admin" in shown.content.decode()
    assert Membership.objects.filter(user=nina).count() == 1
    assert accepted.status_code == 302 and accepted.url == "/dashboard/acme/"
    assert again.status_code == 403


def test_the_accept_page_needs_a_signed_in_user(client, people):
    _, token = invite(people)

    response = client.get(f"/invite/{token}/")

    assert response.status_code == 302 and "/login/" in response.url


def test_an_unknown_token_is_404_and_names_no_tenant(people):
    invite(people)
    client = signed_in(UserFactory(username="nina", email="nina@example.com"))

    for token in ["tgi_unknown", "garbage", "tgi_" + "x" * 3000]:
        response = client.get(f"/invite/{token}/")
        assert response.status_code == 404
        assert "Acme" not in response.content.decode()
        assert "acme" not in response.content.decode()


def test_wrong_user_expired_and_withdrawn_links_are_403_without_the_tenant(people):
    invitation, token = invite(people)
    mallory = signed_in(UserFactory(username="mallory", email="mallory@example.com"))

    wrong_get = mallory.get(f"/invite/{token}/")
    wrong_post = mallory.post(f"/invite/{token}/")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(1))
    nina = signed_in(UserFactory(username="nina", email="nina@example.com"))
    expired = nina.post(f"/invite/{token}/")

    assert wrong_get.status_code == 403 and wrong_post.status_code == 403
    assert "another email address" in wrong_get.content.decode()
    assert "Acme" not in wrong_get.content.decode()
    assert expired.status_code == 403 and "expired" in expired.content.decode()
    assert (
        not Membership.objects.filter(tenant=people.tenant, role="admin")
        .exclude(user=people.admin)
        .exists()
    )


def test_the_token_is_never_logged(people, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    client = signed_in(people.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/dashboard/acme/members/invite/",
            {"invite-email": "nina@example.com", "invite-role": "viewer"},
        )
    token = LINK.search(mail.outbox[0].body).group(1)
    nina = signed_in(UserFactory(username="nina", email="nina@example.com"))
    nina.get(f"/invite/{token}/")
    nina.post(f"/invite/{token}/")
    signed_in(UserFactory(username="m", email="m@example.com")).post(f"/invite/{token}/")

    assert token not in caplog.text
    assert all(token not in str(e.after) + str(e.before) for e in AuditEntry.objects.all())


def test_the_admin_shows_invitations_read_only_without_the_hash(people, admin_client):
    invitation, token = invite(people)

    listed = admin_client.get("/admin/accounts/invitation/")
    shown = admin_client.get(f"/admin/accounts/invitation/{invitation.pk}/change/")

    assert listed.status_code == 200 and "nina@example.com" in listed.content.decode()
    assert shown.status_code == 200
    assert invitation.token_hash not in shown.content.decode()
    assert token not in shown.content.decode()
    assert admin_client.get("/admin/accounts/invitation/add/").status_code == 403
