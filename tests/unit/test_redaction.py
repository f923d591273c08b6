"""The one redaction rule: secret names, and every configured credential value wherever it is."""

import logging

import pytest

from core import redaction
from core.redaction import REDACTED, Secrets

KEY = "sk-live-0123456789abcdef"
PROXY = "Bearer cf-aig-9876543210"


@pytest.fixture
def configured():
    before = redaction.known()
    redaction.remember([KEY, PROXY, "short"])
    yield
    redaction._Known.secrets = before


@pytest.mark.parametrize(
    "name",
    [
        "authorization",
        "Proxy-Authorization",
        "x-api-key",
        "x-portkey-api-key",
        "cf-aig-authorization",
        "x-goog-api-key",
        "x-auth-token",
        "x-amz-security-token",
        "client_secret",
        "x-signature",
        "cookie",
        "db_password",
        "credential_encrypted",
    ],
)
def test_secret_names_are_recognised(name):
    assert redaction.secret_name(name)


@pytest.mark.parametrize(
    "name", ["content-type", "anthropic-version", "max_tokens", "x-request-id", "options"]
)
def test_ordinary_names_are_not(name):
    assert not redaction.secret_name(name)


def test_headers_redact_secret_names_and_configured_values_whole(configured):
    shown = redaction.headers(
        {
            "content-type": "application/json",
            "proxy-authorization": "Basic dXNlcg==",
            "x-custom-route": KEY,
            "x-trace": f"caller {KEY}",
            "x-short": "short",
        }
    )
    assert shown == {
        "content-type": "application/json",
        "proxy-authorization": REDACTED,
        "x-custom-route": REDACTED,
        "x-trace": f"caller {REDACTED}",
        "x-short": REDACTED,  # a configured value, however short, is never shown as a header
    }


def test_a_bearer_value_is_found_with_or_without_its_scheme(configured):
    assert redaction.scrub("got cf-aig-9876543210 and Bearer cf-aig-9876543210") == (
        f"got {REDACTED} and {REDACTED}"
    )


def test_short_values_are_not_searched_inside_text(configured):
    assert redaction.scrub("a short answer") == "a short answer"


def nested(depth: int) -> dict:
    deep: dict = {"signature": KEY}
    for _ in range(depth):
        deep = {"nested": [deep]}
    return deep


def test_bodies_are_scrubbed_deep_down_and_keep_their_field_names(configured):
    cleaned = redaction.scrub_json({"prompt_cache_key": "tenant-1", "deep": nested(300)})
    assert cleaned["prompt_cache_key"] == "tenant-1"
    assert KEY not in repr(cleaned) and REDACTED in repr(cleaned)
    assert redaction.scrub_json({"ok": True}) == {"ok": True}


def test_a_body_too_deep_to_encode_is_shown_as_nothing(configured):
    assert redaction.scrub_json(nested(5000)) == REDACTED


def test_a_value_with_json_escapes_is_found_in_a_body():
    secrets = Secrets(['pa"ss\\word-1234'])
    assert redaction.scrub_json({"echo": 'x pa"ss\\word-1234 y'}, secrets) == {
        "echo": f"x {REDACTED} y"
    }


def test_the_logging_filter_scrubs_messages_arguments_and_tracebacks(configured):
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "upstream said %s", (KEY,), None)
    try:
        raise RuntimeError(f"refused {PROXY}")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)

    assert redaction.RedactingFilter().filter(record) is True

    text = logging.Formatter().format(record)
    assert KEY not in text and "cf-aig-9876543210" not in text
    assert f"upstream said {REDACTED}" in text and "RuntimeError: refused" in text


def test_remember_replaces_the_previous_values(configured):
    redaction.remember(["another-credential-1"])
    assert redaction.scrub(KEY) == KEY
    assert redaction.scrub("another-credential-1") == REDACTED
