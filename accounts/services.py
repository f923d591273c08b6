"""Writes for tenants and API keys; every cache a change affects is cleared here, after commit.

Key policy (allowed models, debug flag, expiry, revocation, the tenant's name and state) is
cached per key by `accounts.keys`, so any change to it calls `keys.forget`. Tenant model lists
are part of the routing table, so changing them calls `gateway.state.config_changed`.
Both run through `transaction.on_commit`: clearing a cache before the commit would let a
concurrent request cache the old row again for minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Tenant
from gateway import state
from providers.models import Model


class ServiceError(ValueError):
    """A write refused for a reason the caller can show as is (CLI, admin, API)."""


def models_by_name(names: Iterable[str] | None) -> list[Model]:
    """The models named, or ServiceError naming the unknown ones. None or empty: []."""
    wanted = list(dict.fromkeys(n.strip() for n in names or () if n.strip()))
    found = {m.name: m for m in Model.objects.filter(name__in=wanted)}
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise ServiceError(f"unknown model(s): {', '.join(unknown)}")
    return [found[n] for n in wanted]


def _forget_keys_on_commit(secret_hashes: Iterable[str]) -> None:
    hashes = list(secret_hashes)

    def forget() -> None:
        for secret_hash in hashes:
            keys.forget(secret_hash)

    transaction.on_commit(forget)


# --- Tenants ---------------------------------------------------------------------------------


def tenant_create(*, name: str, display_name: str = "", models: list[str] | None = None) -> Tenant:
    try:
        validate_slug(name)
    except ValidationError:
        raise ServiceError(
            f"tenant name {name!r} must be a slug (letters, digits, '-' and '_')"
        ) from None
    if len(name) > Tenant._meta.get_field("name").max_length:
        raise ServiceError(f"tenant name {name!r} is too long")
    if Tenant.objects.filter(name=name).exists():
        raise ServiceError(f"tenant {name!r} already exists")
    allowed = models_by_name(models)
    with transaction.atomic():
        tenant = Tenant.objects.create(name=name, display_name=display_name)
        tenant.allowed_models.set(allowed)
        transaction.on_commit(state.config_changed)
    return tenant


def tenant_set_models(*, tenant: Tenant, models: list[str] | None) -> Tenant:
    """Restrict a tenant to these models; None or empty means every enabled model."""
    allowed = models_by_name(models)
    with transaction.atomic():
        tenant.allowed_models.set(allowed)
        transaction.on_commit(state.config_changed)
    return tenant


def tenant_update(
    *, tenant: Tenant, display_name: str, is_active: bool, models: list[str] | None
) -> Tenant:
    """Change a tenant's editable fields (its name is its identity and does not change)."""
    allowed = models_by_name(models)
    with transaction.atomic():
        tenant.display_name = display_name
        tenant.is_active = is_active
        tenant.save(update_fields=["display_name", "is_active"])
        tenant.allowed_models.set(allowed)
        # Every cached key carries its tenant's state.
        _forget_keys_on_commit(tenant.api_keys.values_list("secret_hash", flat=True))
        transaction.on_commit(state.config_changed)
    return tenant


def tenant_delete(*, tenant: Tenant) -> None:
    """Delete a tenant with its memberships and keys; its keys stop working at once."""
    with transaction.atomic():
        _forget_keys_on_commit(tenant.api_keys.values_list("secret_hash", flat=True))
        tenant.delete()
        transaction.on_commit(state.config_changed)


# --- API keys --------------------------------------------------------------------------------


def api_key_models_check(*, tenant: Tenant, models: list[str] | None) -> list[Model]:
    """The models a key of this tenant may be limited to, or ServiceError saying why not."""
    allowed = models_by_name(models)
    tenant_models = set(tenant.allowed_models.values_list("name", flat=True))
    if tenant_models:
        outside = [m.name for m in allowed if m.name not in tenant_models]
        if outside:
            raise ServiceError(f"tenant {tenant.name!r} may not use: {', '.join(outside)}")
    return allowed


def api_key_create(
    *,
    tenant: Tenant,
    name: str = "",
    expires_in_days: int | None = None,
    models: list[str] | None = None,
    allow_debug: bool = False,
) -> tuple[ApiKey, str]:
    """A new key and its secret. The secret is returned once and never stored (only a hash)."""
    if expires_in_days is not None and expires_in_days <= 0:
        raise ServiceError("expires_in_days must be a positive number of days")
    allowed = api_key_models_check(tenant=tenant, models=models)
    secret, prefix, secret_hash = keys.new_secret()
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    with transaction.atomic():
        key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=prefix,
            secret_hash=secret_hash,
            allow_debug=allow_debug,
            expires_at=expires_at,
        )
        key.allowed_models.set(allowed)
    return key, secret


def api_key_update(
    *,
    key: ApiKey,
    name: str,
    expires_at: datetime | None,
    allow_debug: bool,
    models: list[str] | None,
) -> ApiKey:
    """Change a key's label and policy; the cached policy is dropped so it applies at once."""
    allowed = api_key_models_check(tenant=key.tenant, models=models)
    with transaction.atomic():
        key.name = name
        key.expires_at = expires_at
        key.allow_debug = allow_debug
        key.save(update_fields=["name", "expires_at", "allow_debug"])
        key.allowed_models.set(allowed)
        _forget_keys_on_commit([key.secret_hash])
    return key


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time)."""
    with transaction.atomic():
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
        _forget_keys_on_commit([key.secret_hash])
    return key


def api_key_delete(*, key: ApiKey) -> None:
    with transaction.atomic():
        _forget_keys_on_commit([key.secret_hash])
        key.delete()
