"""An owner invites an email address on the members page; the invitee signs in with that
account, opens the emailed link, accepts, and lands on the tenant's dashboard."""

from __future__ import annotations

import re

from django.core import mail
from playwright.sync_api import Page, expect

from accounts.models import Invitation, Membership
from tests.browser.conftest import log_in
from tests.factories import UserFactory

LINK = re.compile(r"https?://[^/\s]+(/invite/tgi_[A-Za-z0-9_-]+/)")


def test_owner_invites_and_the_invitee_accepts_from_the_emailed_link(page: Page, acme, browser):
    log_in(page, "alice")
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Email", exact=True).fill("nina@example.com")
    page.get_by_label("Invited role", exact=True).select_option("admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".messages")).to_contain_text(
        "Invitation sent to nina@example.com as admin"
    )
    expect(
        page.locator('table.invitations tr[data-invitation="nina@example.com"]')
    ).to_contain_text("Admin")

    # A second invitation, withdrawn: its row goes.
    page.get_by_label("Email", exact=True).fill("zed@example.com")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_role("button", name="Withdraw the invitation to zed@example.com").click()
    expect(page.locator(".messages")).to_contain_text("Invitation to zed@example.com withdrawn")
    expect(page.locator('tr[data-invitation="zed@example.com"]')).to_have_count(0)

    sent = [m for m in mail.outbox if m.to == ["nina@example.com"]]
    assert len(sent) == 1
    path = LINK.search(sent[0].body).group(1)

    UserFactory(username="nina", email="nina@example.com")
    invitee = browser.new_context(base_url=page.url.split("/dashboard")[0]).new_page()
    invitee.set_default_timeout(10_000)
    invitee.goto(path)  # not signed in: sent to sign in first, then back to the link
    expect(invitee).to_have_url(re.compile(r"/login/"))
    invitee.get_by_label("Username").fill("nina")
    invitee.get_by_label("Password").fill("correct horse battery staple")
    invitee.get_by_role("button", name="Sign in").click()
    expect(invitee.get_by_role("heading", level=1)).to_contain_text("Join Acme Corp?")
    expect(invitee.locator("main")).to_contain_text("You are invited as admin")
    invitee.get_by_role("button", name="Accept and join Acme Corp").click()
    expect(invitee).to_have_url(re.compile(r"/dashboard/acme/$"))
    expect(invitee.locator(".messages")).to_contain_text("Welcome to Acme Corp: you are admin")
    assert Membership.objects.get(user__username="nina").role == "admin"
    assert Invitation.objects.get(email="nina@example.com").accepted_at is not None
    invitee.context.close()
