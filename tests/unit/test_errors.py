"""The upstream-error table (core/errors.py VERDICTS): who is to blame, as data."""

import pytest

from core.errors import VERDICTS, status_kind, stream_error, upstream_error
from providers.kinds import KINDS
from providers.registry import adapter_for


@pytest.mark.parametrize("status", [400, 403, 404, 409, 413, 422])
def test_no_status_a_request_can_earn_counts_against_a_route(status):
    assert VERDICTS[status_kind(status)].fault is False


@pytest.mark.parametrize("kind", ["credential", "account"])
def test_our_credential_or_account_refused_is_never_the_tenants_error(kind):
    err = upstream_error(401, "Incorrect API key provided: sk-live-123", kind=kind, code="x_y")
    assert (err.status, err.type, err.retryable, err.fallback) == (500, "api_error", False, True)
    assert (err.provider_fault, err.transient) == (True, False)
    assert err.message == f"upstream refused the gateway's {kind} (401 x_y)"  # not its words


def test_a_status_without_details_decides_alone():
    assert upstream_error(418, "teapot").status == 400  # any other 4xx: the request's
    assert upstream_error(507, "").message == "upstream error"  # any other 5xx: the provider's
    assert upstream_error(507, "").provider_fault is True


def test_a_wait_is_kept_only_where_a_retry_may_help():
    assert upstream_error(429, "slow down", retry_after=3).headers["retry-after"] == "3"
    assert upstream_error(429, "no quota", retry_after=3, kind="account").retry_after is None


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_adapter_names_kinds_the_table_knows(kind):
    assert set(getattr(adapter_for(kind), "error_kinds", {}).values()) <= set(VERDICTS)


@pytest.mark.parametrize(
    ("error_type", "status", "shown", "fallback", "fault"),
    [
        ("invalid_request_error", 400, "invalid_request_error", False, False),
        ("request_too_large", 413, "request_too_large", False, False),
        ("rate_limit_error", 529, "overloaded_error", True, True),
        ("overloaded_error", 529, "overloaded_error", True, True),
        ("timeout_error", 504, "timeout_error", True, True),
        ("api_error", 500, "api_error", True, True),
        ("permission_error", 500, "permission_error", True, False),
    ],
)
def test_a_stream_error_event_is_judged_by_its_type(error_type, status, shown, fallback, fault):
    err = stream_error(error_type, "upstream said so")
    seen = (err.status, err.type, err.fallback, err.retryable, err.provider_fault, err.message)
    assert seen == (status, shown, fallback, fallback, fault, "upstream said so")
