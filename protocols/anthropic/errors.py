"""Anthropic's error shape, for an Anthropic upstream (reference 1.8). Pure.

An error body is `{"type": "error", "error": {"type", "message"}}`; a stream's `error` event
carries the same object (read by upstream_stream.py).
"""

from __future__ import annotations

from typing import Any

# A 403 `permission_error` stays the status's: a beta the client chose can earn it.
ERROR_KINDS = {"authentication_error": "credential", "billing_error": "account"}


def error_message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    return ""


def error_codes(body: Any) -> list[Any]:
    """`{"type": "error", "error": {"type", "message"}}` (reference 1.8)."""
    error = body.get("error") if isinstance(body, dict) else None
    return [error.get("type")] if isinstance(error, dict) else []
