"""Service tokens: credentials for automating the admin REST API (`/api/v1/admin`).

A token is platform-wide, or scoped to one tenant. Its secret is made and hashed by the same
machinery as API keys (`accounts.keys.new_secret`: 238 random bits, SHA-256), with its own
prefix `tgs_` so that neither kind of secret is ever mistaken for the other; only the hash is
stored and the secret is shown once. Tokens are not on the hot path: each call reads its row
(one indexed query), which makes a revocation effective at once.

Every failed token check counts against the caller's address in the same failed-authentication
limit as the gateway's keys (`accounts.auth_failures`), and a secret is never logged: messages
name a token by its prefix only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from accounts import audit, auth_failures, keys
from accounts.auth_failures import Origin
from accounts.models import ServiceToken, Tenant
from accounts.services import ServiceError
from core.errors import AuthenticationFailed

TOKEN_PREFIX = "tgs_"
# last_used_at is written at most this often per token: no write on every call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def service_token_create(
    *,
    name: str,
    tenant: Tenant | None = None,
    expires_at: datetime | None = None,
) -> tuple[ServiceToken, str]:
    """A new token and its secret, returned once and never stored (only its hash)."""
    name = name.strip()
    if not name:
        raise ServiceError("a service token needs a name")
    if len(name) > ServiceToken._meta.get_field("name").max_length:
        raise ServiceError("the token's name is too long")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("expires_at must be in the future")
    secret, prefix, secret_hash = keys.new_secret(TOKEN_PREFIX)
    with transaction.atomic():
        token = ServiceToken.objects.create(
            name=name, tenant=tenant, prefix=prefix, secret_hash=secret_hash, expires_at=expires_at
        )
        audit.record(audit.CREATE, token)
    return token, secret


def service_token_revoke(*, token: ServiceToken) -> ServiceToken:
    """Revoke a token (idempotent); the next call with it is a 401."""
    with transaction.atomic():
        if token.revoked_at is None:
            before = audit.stored(token)
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit.record(audit.REVOKE, token, before=before, after=audit.stored(token))
    return token


def service_token_authenticate(secret: str, origin: Origin | None) -> ServiceToken:
    """The active token with this secret, or AuthenticationFailed (401); RateLimited (429)
    when the caller's address is past its failed-authentication limit."""
    if not secret.startswith(TOKEN_PREFIX):
        _fail(origin, "unknown", "invalid service token")
    async_to_sync(auth_failures.check)(origin)
    token = (
        ServiceToken.objects.select_related("tenant")
        .filter(secret_hash=keys.hash_secret(secret))
        .first()
    )
    if token is None:
        _fail(origin, "unknown", "invalid service token")
    now = timezone.now()
    if token.revoked_at is not None:
        _fail(origin, "revoked", "this service token has been revoked")
    if token.expires_at is not None and token.expires_at <= now:
        _fail(origin, "expired", "this service token has expired")
    if token.tenant is not None and not token.tenant.is_active:
        _fail(origin, "tenant_disabled", "this service token's tenant is disabled")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _fail(origin: Origin | None, reason: str, message: str):
    async_to_sync(auth_failures.failed)(origin, reason)
    raise AuthenticationFailed(message)
