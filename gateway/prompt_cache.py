"""The prompt cache key a translated request carries (OpenAI's `prompt_cache_key`).

OpenAI caches prompt prefixes on its own and routes requests with the same key to the same
cache; the gateway's account is shared by every tenant, so the key is derived from the tenant
and the stable part of the prompt: a tenant's requests with the same system prompt and tools
(a Claude Code session, turn after turn) share one key and hit, and no two tenants ever share
one. A key the client chose (`provider_options.openai.prompt_cache_key`) is hashed with its
tenant too, so it cannot name another tenant's bucket. Anthropic routes need none of this:
`cache_control` goes to them as sent.
"""

from __future__ import annotations

import hashlib

import msgspec

from core import ir

_encode = msgspec.json.Encoder(order="deterministic")
KEY_CHARS = 32


def key_for(tenant_id: int, request: ir.Request) -> str:
    """`tg-` and a hash of the tenant and the request's stable prefix: the system prompt and
    the tools (or, without either, the first turn), or the client's own key."""
    digest = hashlib.sha256(b"tollgate-prompt-cache\x00%d\x00" % tenant_id)
    chosen = _client_key(request)
    if chosen is not None:
        digest.update(b"client\x00" + chosen.encode())
    else:
        digest.update(_encode.encode([t.text for t in request.system]))
        digest.update(_encode.encode(request.tools))
        if not request.system and not request.tools and request.messages:
            digest.update(_encode.encode(request.messages[0]))
    return "tg-" + digest.hexdigest()[:KEY_CHARS]


def _client_key(request: ir.Request) -> str | None:
    family = request.provider_options.get("openai")
    value = family.get("prompt_cache_key") if isinstance(family, dict) else None
    return value if isinstance(value, str) and value else None
