"""Owners manage their tenant in a real browser: members (add, change role, remove after a
confirmation), a key's allowed models, rotation with a grace period, revocation after a
confirmation, and a secret shown once with a working copy button."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import async_to_sync
from django.db import connections
from playwright.sync_api import Page, expect

from accounts import keys
from accounts.models import ApiKey, Membership
from core import state
from core.errors import AuthenticationFailed
from tests.browser.conftest import log_in
from tests.factories import ModelFactory, UserFactory

SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")


def authenticates(secret: str) -> bool:
    """Whether the gateway accepts the secret now, asked with cold caches (as another replica
    would) from a thread of its own: the browser's event loop runs in this one."""

    def check() -> bool:
        state._async_clients.clear()
        keys._process_cache.clear()
        try:
            async_to_sync(keys.authenticate)(secret)
        except AuthenticationFailed:
            return False
        finally:
            connections.close_all()  # this thread's, so the test database can be dropped
        return True

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(check).result()


def member_row(page: Page, username: str):
    return page.locator(f'table.members tr[data-member="{username}"]')


def test_owner_adds_a_member_changes_their_role_and_removes_them(page: Page, acme):
    UserFactory(username="nina", email="nina@example.com")
    log_in(page, "alice")
    page.get_by_role("link", name="Members").click()
    expect(page.locator("table.members tbody tr")).to_have_count(2)  # alice, victor

    page.get_by_label("Username or email").fill("NINA@example.com")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator(".messages")).to_contain_text("nina added as viewer")
    expect(member_row(page, "nina")).to_contain_text("nina@example.com")

    page.get_by_label("Role of nina", exact=True).select_option("admin")
    page.get_by_role("button", name="Save role of nina").click()
    expect(page.locator(".messages")).to_contain_text("nina is now admin")
    expect(page.get_by_label("Role of nina", exact=True)).to_have_value("admin")

    page.get_by_role("link", name="Remove nina").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Remove nina from Acme Corp?")
    page.get_by_role("link", name="Cancel").click()
    expect(member_row(page, "nina")).to_have_count(1)

    page.get_by_role("link", name="Remove nina").click()
    page.get_by_role("button", name="Remove nina").click()
    expect(page.locator(".messages")).to_contain_text("nina removed from acme")
    expect(member_row(page, "nina")).to_have_count(0)
    assert not Membership.objects.filter(user__username="nina").exists()


def test_the_page_says_why_a_person_cannot_be_added_or_the_last_owner_demoted(page: Page, acme):
    log_in(page, "alice")
    page.goto("/dashboard/acme/members/")

    page.get_by_label("Username or email").fill("stranger@example.com")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#add-member [role=alert]")).to_contain_text(
        "must have a Tollgate account before they can be added"
    )

    page.get_by_label("Role of alice", exact=True).select_option("viewer")
    page.get_by_role("button", name="Save role of alice").click()
    expect(page.locator(".messages")).to_contain_text("last owner cannot be demoted")
    expect(page.get_by_label("Role of alice", exact=True)).to_have_value("owner")


def test_a_viewer_sees_the_members_without_any_control(page: Page, acme):
    log_in(page, "victor")
    page.get_by_role("link", name="Members").click()

    expect(member_row(page, "alice")).to_contain_text("Owner")
    expect(member_row(page, "victor")).to_contain_text("Viewer")
    expect(page.get_by_role("button", name="Add member")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^Remove"))).to_have_count(0)
    expect(page.locator("table.members select")).to_have_count(0)


def test_owner_limits_a_key_to_chosen_models(page: Page, acme):
    for name in ("claude-haiku-4-5", "claude-sonnet-4-5"):
        ModelFactory(name=name)
    key = acme["key"]
    log_in(page, "alice")
    page.goto(f"/dashboard/acme/keys/{key.pk}/")
    expect(page.locator("#key-models")).to_have_text("every model of the tenant")

    page.get_by_label("claude-haiku-4-5").check()
    page.get_by_role("button", name="Save models").click()

    expect(page.locator(".messages")).to_contain_text("may now use: claude-haiku-4-5")
    expect(page.locator("#key-models")).to_have_text("claude-haiku-4-5")
    expect(page.get_by_label("claude-haiku-4-5")).to_be_checked()
    assert list(key.allowed_models.values_list("name", flat=True)) == ["claude-haiku-4-5"]


def test_rotation_shows_the_new_secret_once_and_the_old_one_works_through_the_grace(
    page: Page, acme
):
    key, old = acme["key"], acme["key"].secret
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "alice")
    page.goto(f"/dashboard/acme/keys/{key.pk}/")

    page.get_by_label("Old secret keeps working for (hours)").fill("2")
    page.get_by_role("button", name="Rotate").click()

    new = page.locator("#new-secret").inner_text()
    assert SECRET.fullmatch(new) and new != old
    expect(page.locator("#grace")).to_contain_text(f"The old secret ({old[:11]}…) keeps working")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == new
    assert all(new[-24:] not in c["value"] for c in page.context.cookies())
    key.refresh_from_db()
    assert key.secret_hash == keys.hash_secret(new)
    assert authenticates(new) and authenticates(old)

    page.reload()  # the key's page, without the secret

    expect(page).to_have_url(re.compile(rf"/dashboard/acme/keys/{key.pk}/$"))
    expect(page.locator("#new-secret")).to_have_count(0)
    assert new not in page.content()
    expect(page.locator("#rotation")).to_contain_text(f"the old secret {old[:11]}… works until")
    key.refresh_from_db()
    assert key.secret_hash == keys.hash_secret(new)  # the reload rotated nothing


def test_a_grace_beyond_the_bound_is_refused_on_the_page(page: Page, acme):
    log_in(page, "alice")
    page.goto(f"/dashboard/acme/keys/{acme['key'].pk}/")

    field = page.get_by_label("Old secret keeps working for (hours)")
    field.evaluate("el => el.removeAttribute('max')")  # what a hand-made request would send
    field.fill("100000")
    page.get_by_role("button", name="Rotate").click()

    expect(page.locator("#rotate-key [role=alert]")).to_contain_text("less than or equal to 720")
    acme["key"].refresh_from_db()
    assert acme["key"].rotated_at is None


def test_a_new_keys_copy_button_copies_the_secret_shown_once(page: Page, acme):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "alice")
    page.goto("/dashboard/acme/keys/")

    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").inner_text()
    page.get_by_role("button", name="Copy").click()

    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert all(secret[-24:] not in c["value"] for c in page.context.cookies())
    page.reload()
    expect(page.locator("#new-secret")).to_have_count(0)
    assert ApiKey.objects.filter(name="laptop").count() == 1


def test_revoking_asks_first_and_cancel_keeps_the_key(page: Page, acme):
    key, secret = acme["key"], acme["key"].secret
    log_in(page, "alice")
    page.goto(f"/dashboard/acme/keys/{key.pk}/")

    page.get_by_role("link", name=f"Revoke {key.prefix}").click()
    expect(page).to_have_url(re.compile(rf"/keys/{key.pk}/revoke/$"))
    page.get_by_role("link", name="Cancel").click()
    key.refresh_from_db()
    assert key.revoked_at is None and authenticates(secret)

    page.get_by_role("link", name=f"Revoke {key.prefix}").click()
    page.get_by_role("button", name=f"Revoke {key.prefix}").click()

    expect(page.locator(".messages")).to_contain_text(f"Key {key.prefix}… revoked")
    key.refresh_from_db()
    assert key.revoked_at is not None and not authenticates(secret)
