"""One redaction rule for every place that shows a request: debug, echo, errors, audit, logs.

Two parts, applied together:
- by name: a header or field whose name mentions auth, key, token, secret, signature, cookie,
  password or credential holds a secret, and its value is replaced whole (`max_tokens` is a
  count, not a token: "tokens" is allowed);
- by value: every configured credential (providers' API keys and extra header values) is
  replaced wherever it appears inside a string: a header with an unusual name, an upstream
  error body that echoes the key, a log line.

Pure Python without Django, so every layer can use it. The configured values are registered by
whoever loads them (the routing table, on each load) in the one documented cache below.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

REDACTED = "<redacted>"
SECRET_NAME = re.compile(
    r"auth|key|token(?!s)|secret|signature|cookie|password|credential", re.IGNORECASE
)
# Shorter values are not searched for inside text: "1" or "prod" would blank out everything.
# (A header holding one is still redacted whole in `headers`.)
MIN_SECRET_CHARS = 8


def secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


class Secrets:
    """A set of secret values and one pattern that finds any of them in a string."""

    __slots__ = ("pattern", "values")

    def __init__(self, values: Iterable[str] = ()):
        self.values = frozenset(v for v in values if isinstance(v, str) and v)
        findable = set()
        for value in self.values:
            # "Bearer sk-..." is also found as "sk-..." alone, as an upstream may echo it, and
            # each form as JSON escapes it (bodies are scrubbed encoded, see scrub_json).
            for form in (value, *value.split()):
                if len(form) >= MIN_SECRET_CHARS:
                    findable.update((form, msgspec.json.encode(form).decode()[1:-1]))
        ordered = sorted(findable, key=len, reverse=True)  # the longest match wins
        self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return bool(self.values)

    def __add__(self, other: Secrets) -> Secrets:
        return Secrets(self.values | other.values)

    def scrub(self, text: str) -> str:
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(REDACTED, text)


class _Known:
    """Explicit process cache: the credential values configured on this process's providers,
    replaced whole each time the routing table loads (so it never grows past the config)."""

    secrets = Secrets()


def remember(values: Iterable[str]) -> None:
    """Register the configured credential values (replacing the previous set)."""
    _Known.secrets = Secrets(values)


def known() -> Secrets:
    return _Known.secrets


def scrub(text: str, extra: Secrets | None = None) -> str:
    """`text` with every known credential value (and those of `extra`) replaced."""
    secrets = _Known.secrets if extra is None else _Known.secrets + extra
    return secrets.scrub(text)


def scrub_json(value: Any, secrets: Secrets | None = None) -> Any:
    """A JSON-like body with every credential value redacted, as a copy.

    Only values: a body's field names are the protocol's (`prompt_cache_key`, a thinking
    block's `signature`), not configuration, and the client must see them as sent.
    """
    secrets = _Known.secrets if secrets is None else secrets
    if secrets.pattern is None or value is None:
        return value
    # Scrubbed as encoded text: no Python recursion, and a body that was sent encodes again.
    try:
        encoded = msgspec.json.encode(value).decode()
    except (RecursionError, TypeError):
        return REDACTED  # nothing the gateway sent or read: show nothing rather than guess
    cleaned = secrets.scrub(encoded)
    if cleaned == encoded:
        return value
    try:
        return msgspec.json.decode(cleaned)
    except msgspec.DecodeError:  # a secret spanning JSON syntax: show nothing rather than it
        return REDACTED


def headers(values: Mapping[str, str], secrets: Secrets | None = None) -> dict[str, str]:
    """Headers as they may be shown: secret names and configured values redacted whole."""
    secrets = _Known.secrets if secrets is None else secrets
    return {
        name: REDACTED
        if secret_name(name) or value in secrets.values
        else secrets.scrub(str(value))
        for name, value in values.items()
    }


class RedactingFilter(logging.Filter):
    """A logging filter (installed on the handlers by settings.LOGGING) that scrubs every
    record's message and traceback of the known credential values."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _Known.secrets
        if not secrets:
            return True
        message = record.getMessage()
        cleaned = secrets.scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = secrets.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = secrets.scrub(record.stack_info)
        return True
