"""The process key cache: bounded, known keys never pushed out by unknown ones, and each kind of
entry trusted for its own time."""

import pytest

from accounts.keys import UNKNOWN_KEY_SECONDS, KeyCache, KeyInfo


def info(key_id: int) -> KeyInfo:
    return KeyInfo(
        key_id=key_id,
        tenant_id=1,
        tenant_name="acme",
        prefix="tg_TestTest",
        allowed_models=None,
        allow_debug=False,
        expires_at=None,
        revoked=False,
        tenant_active=True,
    )


@pytest.fixture
def small(settings):
    settings.TOLLGATE = {**settings.TOLLGATE, "KEY_CACHE_SIZE": 3, "KEY_CACHE_SECONDS": 2.0}
    return KeyCache()


def test_the_cache_keeps_at_most_its_size_of_known_keys_dropping_the_oldest(small):
    for n in range(5):
        small.put(f"hash{n}", info(n), now=0.0)

    assert len(small) == 3
    assert small.get("hash0", now=1.0) == (False, None)
    assert small.get("hash4", now=1.0) == (True, info(4))


def test_a_flood_of_unknown_hashes_never_pushes_a_known_key_out(small):
    small.put("real", info(1), now=0.0)

    for n in range(10_000):
        small.put(f"guess{n}", None, now=0.0)

    assert small.get("real", now=1.0) == (True, info(1))
    assert len(small) == 1 + 3


def test_a_key_learned_again_is_the_newest_and_outlives_older_ones(small):
    for n in range(3):
        small.put(f"hash{n}", info(n), now=0.0)
    small.put("hash0", info(0), now=1.0)  # refreshed after KEY_CACHE_SECONDS

    small.put("hash3", info(3), now=1.0)

    assert small.get("hash0", now=1.5) == (True, info(0))
    assert small.get("hash1", now=1.5) == (False, None)


def test_an_unknown_hash_is_remembered_briefly(small):
    small.put("guess", None, now=0.0)

    assert small.get("guess", now=UNKNOWN_KEY_SECONDS - 0.1) == (True, None)
    assert small.get("guess", now=UNKNOWN_KEY_SECONDS) == (False, None)


def test_a_known_key_is_trusted_for_the_key_cache_seconds_only(small):
    small.put("real", info(1), now=0.0)

    assert small.get("real", now=1.9) == (True, info(1))
    assert small.get("real", now=2.0) == (False, None)


def test_a_hash_is_either_known_or_unknown_never_both(small):
    small.put("flip", None, now=0.0)
    small.put("flip", info(1), now=0.5)

    assert small.get("flip", now=1.0) == (True, info(1))
    small.pop("flip")
    assert small.get("flip", now=1.0) == (False, None) and len(small) == 0
