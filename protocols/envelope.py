"""The gateway's thinking-signature envelope (reference 5.12.3).

Anthropic clients send a thinking block's `signature` back untouched, so a translating adapter
uses it to carry the provider state it needs on the next turn (an OpenAI Responses reasoning
item, a Gemini thought signature). The envelope is signed so a client cannot forge that state:

    "tg1." + base64url(payload) + "." + base64url(HMAC-SHA256(key, payload))[:22]
    payload = {"p": provider, "m": upstream model, "d": provider data}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import msgspec

PREFIX = "tg1."
MAC_CHARS = 22  # 132 bits of the HMAC: plenty, and keeps signatures short

_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(payload: bytes, key: bytes) -> str:
    return _b64(hmac.new(key, payload, hashlib.sha256).digest())[:MAC_CHARS]


def seal(provider: str, model: str, data: dict[str, Any], key: bytes) -> str:
    """A signature carrying `data` for `provider`/`model`, verifiable only with `key`."""
    payload = _encode.encode({"p": provider, "m": model, "d": data})
    return PREFIX + _b64(payload) + "." + _mac(payload, key)


def open_(signature: str, key: bytes) -> dict[str, Any] | None:
    """The payload `{"p", "m", "d"}` of a genuine envelope; None for anything else."""
    if not signature.startswith(PREFIX):
        return None
    body, _, mac = signature[len(PREFIX) :].partition(".")
    try:
        payload = _unb64(body)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(mac.encode(), _mac(payload, key).encode()):
        return None
    try:
        value = _decode.decode(payload)
    except msgspec.DecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("d"), dict):
        return None
    return value


def provider_data(signature: str, key: bytes, provider: str, model: str) -> dict[str, Any] | None:
    """The data of an envelope sealed for exactly this provider and model, else None."""
    payload = open_(signature, key)
    if payload is None or payload.get("p") != provider or payload.get("m") != model:
        return None
    return payload["d"]
