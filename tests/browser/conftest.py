"""Browser fixtures: Debian's Chromium driven by Playwright's sync API against `live_server`.

Never `playwright install`: `make browser` installs /usr/bin/chromium with apt. The live
server is Django's threaded WSGI server (dashboards need no ASGI), so tests use
`transactional_db`: the server thread only sees committed rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from accounts.models import Membership
from tests.factories import MembershipFactory, TenantFactory, UserFactory, make_key

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"  # UserFactory's


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():  # make test installs it; a missing browser must fail, not skip
        pytest.fail("no /usr/bin/chromium: run `make browser` (Debian's chromium package)")
    # Playwright's sync API keeps an event loop in this thread while it runs, so Django would
    # refuse the ORM calls tests (and the database flush after each) make between browser steps.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, transactional_db) -> Page:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def acme(transactional_db, settings):
    """Tenant acme with an owner (alice), a viewer (victor) and a key; globex with bob."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed
    tenant = TenantFactory(name="acme", display_name="Acme Corp")
    owner = MembershipFactory(
        tenant=tenant, user=UserFactory(username="alice"), role=Membership.Role.OWNER
    ).user
    viewer = MembershipFactory(tenant=tenant, user=UserFactory(username="victor")).user
    key, _ = make_key(tenant, name="ci")
    other = TenantFactory(name="globex", display_name="Globex")
    outsider = MembershipFactory(
        tenant=other, user=UserFactory(username="bob"), role=Membership.Role.OWNER
    ).user
    other_key, _ = make_key(other, name="prod")
    return {
        "tenant": tenant,
        "owner": owner,
        "viewer": viewer,
        "key": key,
        "other": other,
        "outsider": outsider,
        "other_key": other_key,
    }


def log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
