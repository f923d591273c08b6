"""An upstream's error body read into an `UpstreamError`, blamed on the right party. Pure.

Each protocol folder's `errors.py` says where its shape keeps the message, the provider's own
codes and a wait, and which codes blame whom (a kind of core.errors.VERDICTS); `error_from`
is the one reading of them, used by every HTTP adapter (`HttpAdapter.error_from`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from core.errors import UpstreamError, upstream_error
from protocols.stream import UNREADABLE

# A provider's error code as shown to clients: a short name, nothing an upstream could smuggle
# (and not a number, which only repeats the status).
_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def error_message(body: Any) -> str:
    """The message of the common shape: `{"error": {"message": …}}` or `{"error": "…"}`."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
    return ""


def no_codes(body: Any) -> list[Any]:
    return []


def no_wait(body: Any) -> float | None:
    return None


def error_from(
    status: int,
    data: Any,
    *,
    message_of: Callable[[Any], str] = error_message,
    codes_of: Callable[[Any], list[Any]] = no_codes,
    retry_after_of: Callable[[Any], float | None] = no_wait,
    kinds: Mapping[str, str] | None = None,
    retry_after: float | None = None,
) -> UpstreamError:
    """The error an upstream answered (its status and decoded body): the provider's error
    details first (`kinds`, its codes to a verdict kind), its status otherwise."""
    kinds = kinds or {}
    try:
        message = message_of(data)
        codes = [c for c in codes_of(data) if isinstance(c, str) and _CODE.fullmatch(c)]
        if retry_after is None:
            retry_after = retry_after_of(data)
    except UNREADABLE:
        message, codes = "", []
    kind = next((kinds[c] for c in codes if c in kinds), None)
    return upstream_error(
        status,
        message or f"upstream answered HTTP {status}",
        retry_after=retry_after,
        kind=kind,
        code=codes[0] if codes else "",
    )
