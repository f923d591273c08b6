"""The invitation email: the accept link (`/invite/<token>/`) made absolute from the request
that created the invitation, sent through Django's email backend once the invitation is
committed. Shared by the dashboard's members page and the admin REST API. The token appears
only in the link, the mail and the creator's answer; it is never logged."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import Invitation


def accept_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("dashboard:invite", args=[token]))


def send_invitation(*, request: HttpRequest, invitation: Invitation, token: str) -> str:
    """Queue the invitation email for after the commit; returns the accept link."""
    url = accept_url(request, token)
    tenant = invitation.tenant.display_name or invitation.tenant.name
    inviter = getattr(invitation.invited_by, "username", "") or "An owner"
    expires = invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    subject = f"You are invited to {tenant} on Tollgate"
    body = (
        f"{inviter} invited you to join {tenant} on Tollgate as {invitation.role}.\n\n"
        f"Sign in with the account of this email address ({invitation.email}) and open:\n"
        f"{url}\n\n"
        f"The link works once and until {expires}.\n"
    )
    to = [invitation.email]
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to, fail_silently=True)
    )
    return url
