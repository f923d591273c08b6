"""Which address a failed authentication is counted against."""

import pytest

from accounts.auth_failures import address_of


@pytest.fixture
def proxies(settings):
    def trust(hops: int) -> None:
        settings.TOLLGATE = {**settings.TOLLGATE, "TRUSTED_PROXIES": hops}

    return trust


def test_the_peer_counts_and_x_forwarded_for_is_ignored_by_default(proxies):
    proxies(0)

    assert address_of(("203.0.113.7", b"198.51.100.1")) == "203.0.113.7"


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "address"),
    [
        (1, b"198.51.100.1", "198.51.100.1"),
        (1, b"6.6.6.6, 198.51.100.1", "198.51.100.1"),  # what the client wrote is not trusted
        (2, b"6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (2, b"198.51.100.1", "203.0.113.7"),  # fewer entries than proxies: it bypassed one
        (1, None, "203.0.113.7"),
        (1, "198.51.100.9 ", "198.51.100.9"),  # as DRF passes it (str)
    ],
)
def test_behind_trusted_proxies_the_address_the_outermost_one_saw_counts(
    proxies, hops, forwarded_for, address
):
    proxies(hops)

    assert address_of(("203.0.113.7", forwarded_for)) == address


def test_ipv6_addresses_count_per_64_block_and_mapped_ipv4_as_ipv4(proxies):
    proxies(0)

    one = address_of(("2001:db8:1:2:aaaa::1", None))
    assert one == address_of(("2001:db8:1:2:ffff:ffff:ffff:ffff", None)) == "2001:db8:1:2::/64"
    assert address_of(("2001:db8:1:3::1", None)) != one
    assert address_of(("::ffff:192.0.2.5", None)) == "192.0.2.5"


def test_garbage_in_a_trusted_header_is_one_bounded_bucket(proxies):
    proxies(1)

    assert address_of(("203.0.113.7", b"unknown")) == "unknown"
    assert len(address_of(("203.0.113.7", b"x" * 10_000))) == 64
    assert address_of(("203.0.113.7", b",,,")) == "203.0.113.7"


def test_a_request_without_an_origin_is_never_counted():
    assert address_of(None) is None
    assert address_of((None, None)) is None
