"""A key's lifecycle in the dashboard: its allow-list among the tenant's models, rotation with a
chosen grace period, revocation after a confirmation; new secrets are shown once in the POST's
response and nowhere else (no cookie, session, message or audit entry)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.messages.storage.cookie import CookieStorage
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, AuditEntry
from core import state
from core.errors import AuthenticationFailed
from gateway.dashboard.forms import MAX_ROTATION_GRACE_HOURS
from tests.factories import ModelFactory
from tests.integration.conftest import platform_admin

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")
# Authentication reads the key from another thread's connection: the rows must be committed.
TRANSACTIONAL = pytest.mark.django_db(transaction=True)


def key_url(key: ApiKey, action: str = "") -> str:
    return f"/dashboard/{key.tenant.name}/keys/{key.pk}/" + (f"{action}/" if action else "")


def rotate_nonce(client, key: ApiKey) -> str:
    return client.get(key_url(key)).context["rotate_form"]["nonce"].value()


def rotate(client, key: ApiKey, grace_hours, nonce: str | None = None):
    nonce = nonce if nonce is not None else rotate_nonce(client, key)
    return client.post(key_url(key, "rotate"), {"grace_hours": grace_hours, "nonce": nonce})


def authenticates(secret: str) -> bool:
    """Whether the gateway accepts this secret now (cold caches, as another replica would)."""
    state._async_clients.clear()
    keys._process_cache.clear()
    try:
        async_to_sync(keys.authenticate)(secret)
    except AuthenticationFailed:
        return False
    return True


def assert_shown_only_in_the_page(client, response, secret: str) -> None:
    """The secret is in this response's body, and in no cookie, session, message or audit."""
    assert secret.encode() in response.content
    assert response["Cache-Control"] == "no-store"
    tail = secret[-24:]  # the part never shown elsewhere (the prefix is public)
    assert tail not in str(response.cookies)  # every Set-Cookie header
    added = response.wsgi_request._messages  # every message of this request, shown or stored
    assert all(tail not in str(m) for m in [*added._loaded_messages, *added._queued_messages])
    storage = CookieStorage(response.wsgi_request)
    cookie = client.cookies.get(storage.cookie_name)
    stored = storage._decode(cookie.value) if cookie is not None and cookie.value else None
    assert all(tail not in str(m) for m in stored or [])
    assert tail not in json.dumps(dict(client.session.items()), default=str)
    for entry in AuditEntry.objects.all():
        assert tail not in json.dumps([entry.before, entry.after, entry.object_repr])
    later = client.get(response.wsgi_request.path if response.status_code == 200 else "/")
    assert tail.encode() not in later.content


@pytest.fixture
def catalog(people):
    """Three models; acme may use two of them."""
    sonnet, haiku = ModelFactory(name="claude-sonnet-4-5"), ModelFactory(name="claude-haiku-4-5")
    ModelFactory(name="gpt-5")
    people.tenant.allowed_models.set([sonnet, haiku])
    return people


# --- Allowed models --------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_owners_and_admins_limit_a_key_to_some_of_the_tenants_models(client, catalog, who):
    client.force_login(getattr(catalog, who))
    key = catalog.key

    page = client.get(key_url(key))
    response = client.post(key_url(key, "models"), {"models": ["claude-haiku-4-5"]})

    offered = [value for value, _ in page.context["models_form"].fields["models"].choices]
    assert offered == ["claude-haiku-4-5", "claude-sonnet-4-5"]  # not gpt-5
    assert response.headers["Location"] == key_url(key)
    assert list(key.allowed_models.values_list("name", flat=True)) == ["claude-haiku-4-5"]
    shown = client.get(key_url(key))
    assert b"may now use: claude-haiku-4-5" in shown.content
    assert shown.context["key_models"] == ["claude-haiku-4-5"]


@TRANSACTIONAL
def test_the_allow_list_applies_to_the_cached_key_at_once(
    client, catalog, django_capture_on_commit_callbacks
):
    client.force_login(catalog.owner)
    secret = catalog.key.secret
    async_to_sync(keys.authenticate)(secret)  # warm the caches

    with django_capture_on_commit_callbacks(execute=True):
        client.post(key_url(catalog.key, "models"), {"models": ["claude-sonnet-4-5"]})

    state._async_clients.clear()
    assert async_to_sync(keys.authenticate)(secret).allowed_models == {"claude-sonnet-4-5"}


def test_ticking_none_lets_the_key_use_every_model_of_the_tenant(client, catalog):
    client.force_login(catalog.owner)
    catalog.key.allowed_models.set(catalog.tenant.allowed_models.all())

    client.post(key_url(catalog.key, "models"), {})

    assert not catalog.key.allowed_models.exists()
    assert b"every model of the tenant" in client.get(key_url(catalog.key)).content


def test_a_tenant_without_a_list_offers_every_enabled_model(client, people):
    ModelFactory(name="claude-sonnet-4-5")
    ModelFactory(name="retired", enabled=False)
    client.force_login(people.owner)

    form = client.get(key_url(people.key)).context["models_form"]

    assert [v for v, _ in form.fields["models"].choices] == ["claude-sonnet-4-5"]


@pytest.mark.parametrize(
    "models",
    [["gpt-5"], ["no-such-model"], ["claude-haiku-4-5", "x" * 10_000], ["claude-haiku-4-5\x00"]],
)
def test_models_outside_the_tenants_or_unknown_are_a_form_error(client, catalog, models):
    client.force_login(catalog.owner)

    response = client.post(key_url(catalog.key, "models"), {"models": models})

    assert response.status_code == 400
    assert b"Select a valid choice" in response.content and b'role="alert"' in response.content
    assert not catalog.key.allowed_models.exists()


def test_a_model_the_tenant_no_longer_allows_is_shown_and_refused_with_the_reason(client, catalog):
    client.force_login(catalog.owner)
    catalog.key.allowed_models.set(
        [ModelFactory(name="gpt-4o")]
    )  # allowed before the tenant's list

    page = client.get(key_url(catalog.key))
    response = client.post(key_url(catalog.key, "models"), {"models": ["gpt-4o"]})

    assert "gpt-4o" in [v for v, _ in page.context["models_form"].fields["models"].choices]
    assert response.status_code == 400 and b"may not use: gpt-4o" in response.content


# --- Rotation ----------------------------------------------------------------------------------


@TRANSACTIONAL
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_rotating_shows_the_new_secret_once_and_the_old_one_works_during_the_grace(
    client, people, who, django_capture_on_commit_callbacks
):
    client.force_login(getattr(people, who))
    key, old = people.key, people.key.secret
    nonce = rotate_nonce(client, key)

    with django_capture_on_commit_callbacks(execute=True):
        response = rotate(client, key, 6, nonce)

    new = response.context["secret"]
    key.refresh_from_db()
    assert response.status_code == 200 and SECRET.fullmatch(new)
    assert key.secret_hash == keys.hash_secret(new) and key.previous_prefix == old[:11]
    grace_end = key.previous_expires_at - key.rotated_at
    assert grace_end == timedelta(hours=6)
    assert b"keeps working until" in response.content
    assert authenticates(new) and authenticates(old)
    assert_shown_only_in_the_page(client, response, new)
    detail = client.get(key_url(key))
    assert b"the old secret" in detail.content and new.encode() not in detail.content


@TRANSACTIONAL
def test_a_zero_grace_ends_the_old_secret_at_once(
    client, people, django_capture_on_commit_callbacks
):
    client.force_login(people.owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = rotate(client, people.key, 0)

    assert b"no longer works" in response.content
    assert authenticates(response.context["secret"]) and not authenticates(people.key.secret)


def test_sending_the_rotation_form_twice_rotates_once(client, people):
    client.force_login(people.owner)
    nonce = rotate_nonce(client, people.key)

    first = rotate(client, people.key, 24, nonce)
    again = rotate(client, people.key, 24, nonce)

    people.key.refresh_from_db()
    assert first.status_code == 200 and again.status_code == 302
    assert people.key.secret_hash == keys.hash_secret(first.context["secret"])
    assert b"a new secret is shown once" in client.get(again.headers["Location"]).content


@pytest.mark.parametrize(
    ("grace", "error"),
    [
        (MAX_ROTATION_GRACE_HOURS + 1, b"less than or equal to 720"),
        (10**30, b"less than or equal to 720"),
        (-1, b"greater than or equal to 0"),
        ("1.5", b"Enter a whole number"),
        ("a day", b"Enter a whole number"),
        ("", b"This field is required"),
    ],
)
def test_a_grace_out_of_bounds_is_a_form_error_and_nothing_rotates(client, people, grace, error):
    client.force_login(people.owner)
    before = people.key.secret_hash

    response = rotate(client, people.key, grace)

    assert response.status_code == 400 and error in response.content
    people.key.refresh_from_db()
    assert people.key.secret_hash == before and people.key.rotated_at is None


def test_a_revoked_key_is_not_rotated(client, people):
    client.force_login(people.owner)
    nonce = rotate_nonce(client, people.key)
    ApiKey.objects.filter(pk=people.key.pk).update(revoked_at=timezone.now())

    response = rotate(client, people.key, 24, nonce)

    assert response.status_code == 400 and b"is revoked and cannot be rotated" in response.content
    assert response.context["rotate_form"] is not None
    assert b"Rotate the secret" not in client.get(key_url(people.key)).content


# --- Revocation --------------------------------------------------------------------------------


def test_revoking_shows_a_confirmation_and_a_get_changes_nothing(client, people):
    client.force_login(people.owner)
    keys_page = client.get("/dashboard/acme/keys/")

    asked = client.get(key_url(people.key, "revoke"), {"confirm": "revoke"})
    unconfirmed = client.post(key_url(people.key, "revoke"), {"confirm": "yes"})

    assert f'href="{key_url(people.key, "revoke")}"'.encode() in keys_page.content
    for page in (asked, unconfirmed):
        assert page.status_code == 200 and b"This cannot be undone" in page.content
    people.key.refresh_from_db()
    assert people.key.revoked_at is None


@TRANSACTIONAL
def test_a_confirmed_revocation_stops_the_key(client, people, django_capture_on_commit_callbacks):
    client.force_login(people.owner)
    assert authenticates(people.key.secret)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(key_url(people.key, "revoke"), {"confirm": "revoke"})

    assert not authenticates(people.key.secret)
    again = client.get(key_url(people.key, "revoke"))
    assert b"Already revoked" in again.content


# --- Who may: every new view, per role ---------------------------------------------------------


def writes(key: ApiKey) -> list[tuple[str, str, dict]]:
    return [
        ("post", key_url(key, "models"), {"models": []}),
        ("post", key_url(key, "rotate"), {"grace_hours": 1, "nonce": "x"}),
        ("get", key_url(key, "revoke"), {}),
        ("post", key_url(key, "revoke"), {"confirm": "revoke"}),
    ]


def test_a_viewer_sees_no_lifecycle_forms_and_every_write_is_403(client, people):
    client.force_login(people.viewer)

    page = client.get(key_url(people.key))
    statuses = [getattr(client, m)(path, data).status_code for m, path, data in writes(people.key)]

    assert page.context["models_form"] is None and page.context["rotate_form"] is None
    assert b"Rotate" not in page.content and b"Revoke" not in page.content
    assert statuses == [403] * 4
    people.key.refresh_from_db()
    assert people.key.rotated_at is None and people.key.revoked_at is None


def test_an_outsider_gets_404_for_another_tenants_key_by_either_tenants_path(client, people):
    client.force_login(people.outsider)
    key = people.key
    via_own = [(m, p.replace("/acme/", "/globex/"), d) for m, p, d in writes(key)]

    statuses = [getattr(client, m)(p, d).status_code for m, p, d in [*writes(key), *via_own]]

    assert statuses == [404] * 8
    key.refresh_from_db()
    assert key.rotated_at is None and key.revoked_at is None


def test_a_key_id_that_does_not_exist_is_404(client, people):
    client.force_login(people.owner)
    for action in ("models", "rotate", "revoke"):
        path = f"/dashboard/acme/keys/99999999999999999999999/{action}/"
        assert client.post(path, {"grace_hours": 1, "nonce": "x"}).status_code == 404, path


def test_staff_with_the_admins_key_permissions_manage_any_tenants_keys(client, people):
    client.force_login(people.staff)

    response = rotate(client, people.other_key, 1)

    assert response.status_code == 200 and SECRET.fullmatch(response.context["secret"])


def test_staff_who_may_only_view_keys_get_no_forms_and_403(client, people):
    client.force_login(platform_admin("vera", ("view_tenant", "view_apikey")))

    page = client.get(key_url(people.key))
    statuses = [getattr(client, m)(path, data).status_code for m, path, data in writes(people.key)]

    assert page.context["rotate_form"] is None and page.context["models_form"] is None
    assert statuses == [403] * 4


# --- A new key's secret ------------------------------------------------------------------------


def test_a_new_keys_secret_is_in_the_response_and_no_cookie_session_or_message(client, people):
    client.force_login(people.owner)
    nonce = client.get("/dashboard/acme/keys/").context["create_form"]["nonce"].value()

    response = client.post("/dashboard/acme/keys/", {"name": "laptop", "nonce": nonce})

    secret = response.context["created_secret"]
    assert SECRET.fullmatch(secret)
    assert b'id="copy-secret"' in response.content
    assert_shown_only_in_the_page(client, response, secret)
