"""Key rotation: both secrets work during the grace period, then only the new one; revocation
still stops both at once."""

import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey
from accounts.services import ServiceError, api_key_revoke, api_key_rotate
from core import state
from core.errors import AuthenticationFailed
from tests.factories import make_key

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = re.compile(r"tg_[A-Za-z0-9]{40}")


def check(secret: str, *, cold: bool = True) -> keys.KeyInfo:
    """`authenticate` as a gateway replica runs it; `cold` drops this process's cache first."""
    state._async_clients.clear()  # a new event loop each call: never reuse a dead loop's client
    if cold:
        keys._process_cache.clear()
    return async_to_sync(keys.authenticate)(secret)


def rotate(key: ApiKey, grace_seconds: int, on_commit) -> str:
    with on_commit(execute=True):
        return api_key_rotate(key=key, grace_seconds=grace_seconds)


def test_both_secrets_work_during_the_grace_period(django_capture_on_commit_callbacks):
    key, old = make_key()

    new = rotate(key, 3600, django_capture_on_commit_callbacks)

    assert new != old and key.prefix == new[: keys.SHOWN_PREFIX_LENGTH]
    assert check(new).key_id == check(old).key_id == key.pk
    assert check(new).expires_at is None
    assert abs(check(old).expires_at - (time.time() + 3600)) < 5


def test_the_old_secret_is_refused_once_the_grace_ends_even_from_a_warm_cache(
    django_capture_on_commit_callbacks,
):
    key, old = make_key()
    new = rotate(key, 1, django_capture_on_commit_callbacks)
    check(old)  # cached in this process and in Redis, with the grace's end

    time.sleep(1.1)

    with pytest.raises(AuthenticationFailed, match="rotated; use its new secret"):
        check(old, cold=False)
    with pytest.raises(AuthenticationFailed):
        check(old)
    assert check(new).key_id == key.pk


def test_rotation_drops_the_old_secrets_cached_view(django_capture_on_commit_callbacks):
    key, old = make_key()
    assert check(old).expires_at is None  # cached: "never expires"

    rotate(key, 60, django_capture_on_commit_callbacks)

    assert not state.sync_redis().exists(keys.redis_key(keys.hash_secret(old)))
    assert check(old).expires_at is not None


def test_revoking_during_the_grace_stops_both_secrets(django_capture_on_commit_callbacks):
    key, old = make_key()
    new = rotate(key, 3600, django_capture_on_commit_callbacks)
    check(old), check(new)

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=key)

    for secret in (old, new):
        with pytest.raises(AuthenticationFailed, match="revoked"):
            check(secret)


def test_rotating_again_retires_the_first_secret_at_once(django_capture_on_commit_callbacks):
    key, first = make_key()
    second = rotate(key, 3600, django_capture_on_commit_callbacks)
    check(first)

    third = rotate(key, 3600, django_capture_on_commit_callbacks)

    with pytest.raises(AuthenticationFailed, match="invalid x-api-key"):
        check(first)
    assert check(second).key_id == check(third).key_id == key.pk


def test_a_revoked_key_cannot_be_rotated():
    key, _ = make_key()
    api_key_revoke(key=key)

    with pytest.raises(ServiceError, match="revoked"):
        api_key_rotate(key=key, grace_seconds=60)


def test_rotate_command_prints_the_new_secret_alone_on_the_last_line(
    django_capture_on_commit_callbacks,
):
    key, old = make_key()
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("rotate_api_key", key.prefix, "--grace-hours", "0", stdout=out)

    lines = out.getvalue().rstrip("\n").splitlines()
    new = lines[-1]
    assert SECRET.fullmatch(new) and all(new not in line for line in lines[:-1])
    assert f"Rotated API key {key.prefix}" in lines[0]
    assert check(new).key_id == key.pk
    with pytest.raises(AuthenticationFailed, match="rotated"):
        check(old)


def test_rotate_command_default_grace_is_a_day():
    key, old = make_key()

    call_command("rotate_api_key", old, stdout=StringIO())

    key.refresh_from_db()
    assert abs(key.previous_expires_at - (timezone.now() + timedelta(hours=24))) < timedelta(
        minutes=1
    )
    with pytest.raises(CommandError, match="no API key matches"):
        call_command("rotate_api_key", "tg_nothere", stdout=StringIO())


def test_admin_rotate_action_shows_each_new_secret_once(admin_client):
    chosen, old = make_key()
    outsider, _ = make_key()

    response = admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "rotate_selected", "_selected_action": [chosen.pk]},
        follow=True,
    )

    page = response.content.decode()
    shown = SECRET.findall(page)
    assert len(shown) == 1
    chosen.refresh_from_db()
    assert chosen.secret_hash == keys.hash_secret(shown[0])
    assert chosen.previous_secret_hash == keys.hash_secret(old)
    outsider_before = outsider.secret_hash
    outsider.refresh_from_db()
    assert outsider.secret_hash == outsider_before and outsider.rotated_at is None
