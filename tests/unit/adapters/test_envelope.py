"""The thinking-signature envelope (reference 5.12.3): sealed by the gateway, opened only intact."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from protocols.envelope import open_, provider_data, seal

KEY = b"k" * 32


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_sealed_envelope_opens_to_its_payload():
    signature = seal("gemini", "gemini-2.5-flash", {"ts": "CiQB0e2Kb3=="}, KEY)
    assert open_(signature, KEY) == {
        "p": "gemini",
        "m": "gemini-2.5-flash",
        "d": {"ts": "CiQB0e2Kb3=="},
    }


def test_envelope_has_the_documented_layout():
    # Rebuilt here with the standard library alone, from the formula in the reference.
    payload = json.dumps({"p": "openai-chat", "m": "gpt-4.1", "d": {}}, separators=(",", ":"))
    mac = hmac.new(KEY, payload.encode(), hashlib.sha256).digest()
    expected = "tg1." + _b64(payload.encode()) + "." + _b64(mac)[:22]
    assert seal("openai-chat", "gpt-4.1", {}, KEY) == expected


def test_tampered_payload_is_refused():
    signature = seal("openai-responses", "gpt-5", {"id": "rs_1", "enc": "gAAA"}, KEY)
    _, body, mac = signature.split(".")
    forged = json.dumps({"p": "openai-responses", "m": "gpt-5", "d": {"id": "rs_2", "enc": "x"}})
    assert open_(f"tg1.{_b64(forged.encode())}.{mac}", KEY) is None
    assert open_(f"tg1.{body}.{'A' * 22}", KEY) is None


def test_envelope_sealed_with_another_key_is_refused():
    assert open_(seal("gemini", "gemini-2.5-pro", {}, b"other key"), KEY) is None


def test_signature_without_the_gateway_prefix_is_refused():
    genuine = seal("gemini", "gemini-2.5-pro", {}, KEY)
    assert open_("tg2." + genuine[4:], KEY) is None
    assert open_("EqQBCkgIARABGAIiQNbp", KEY) is None  # an Anthropic signature
    assert open_("", KEY) is None


def test_garbage_after_the_prefix_is_refused():
    assert open_("tg1.%%%.abc", KEY) is None
    assert open_("tg1.", KEY) is None


def test_provider_data_requires_the_same_provider_and_model():
    signature = seal("gemini", "gemini-2.5-flash", {"ts": "c2ln"}, KEY)
    assert provider_data(signature, KEY, "gemini", "gemini-2.5-flash") == {"ts": "c2ln"}
    assert provider_data(signature, KEY, "gemini", "gemini-2.5-pro") is None
    assert provider_data(signature, KEY, "openai-responses", "gemini-2.5-flash") is None
