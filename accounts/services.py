"""Writes for tenants and API keys; every cache a change affects is cleared here, after commit.

Key policy (allowed models, debug flag, expiry, revocation, limits, the tenant's name, state
and limits) is cached per key by `accounts.keys`, so any change to it calls `keys.forget`, for
both secrets of a key in its rotation grace. Tenant model lists are part of the routing table,
so changing them calls `gateway.state.config_changed`.
Both run through `transaction.on_commit`: clearing a cache before the commit would let a
concurrent request cache the old row again for minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import msgspec
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from accounts import audit, keys
from accounts.models import (
    MAX_BUDGET_USD,
    MAX_CAPTURE_BYTES,
    MAX_CAPTURE_DAYS,
    MIN_CAPTURE_BYTES,
    ApiKey,
    LimitFields,
    Membership,
    Tenant,
)
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


DEFAULT_ROTATION_GRACE_SECONDS = 24 * 3600
LIMIT_FIELDS = ("rpm", "tpm", "budget_usd", "budget_period")


def _forget_keys_on_commit(secret_hashes: Iterable[str | None]) -> None:
    hashes = [h for h in secret_hashes if h]

    def forget() -> None:
        for secret_hash in hashes:
            keys.forget(secret_hash)

    transaction.on_commit(forget)


def _hashes(keys_qs) -> list[str]:
    """Every secret hash of these keys that may be cached: current and previous (rotation)."""
    pairs = keys_qs.values_list("secret_hash", "previous_secret_hash")
    return [h for pair in pairs for h in pair if h]


NEEDS_REDIS = (
    "rate limits and budgets need Redis: set REDIS_URL (without it, as in the quick start, "
    "no counters are shared between processes, so they would not be enforced)"
)


def limits_check(
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: Decimal | str | float | None = None,
    budget_period: str | None = None,
) -> dict:
    """Limit values as stored (None: no limit), or ServiceError saying what is wrong.

    Without Redis (the quick start) there are no counters shared between processes, so a limit
    would not be enforced: it is refused rather than stored as a promise nobody keeps.
    """
    if not settings.REDIS_URL and any(v is not None for v in (rpm, tpm, budget_usd)):
        raise ServiceError(NEEDS_REDIS)
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ServiceError(f"{name} must be a positive whole number")
    if budget_usd is not None:
        try:
            budget_usd = Decimal(str(budget_usd)).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            raise ServiceError(f"budget_usd {budget_usd!r} is not an amount") from None
        if not Decimal(0) <= budget_usd <= MAX_BUDGET_USD:
            raise ServiceError(f"budget_usd must be between 0 and {MAX_BUDGET_USD}")
    period = budget_period or LimitFields.BudgetPeriod.MONTHLY
    if period not in LimitFields.BudgetPeriod.values:
        raise ServiceError(f"budget_period must be one of: {', '.join(LimitFields.BudgetPeriod)}")
    return {"rpm": rpm, "tpm": tpm, "budget_usd": budget_usd, "budget_period": period}


def _set_limits(row: Tenant | ApiKey, values: dict) -> bool:
    # Compared with the stored row: a form may already have set the new values on `row`.
    stored = type(row).objects.filter(pk=row.pk).values(*LIMIT_FIELDS).get()
    changed = [f for f in LIMIT_FIELDS if stored[f] != values[f]]
    for field in changed:
        setattr(row, field, values[field])
    if changed:
        row.save(update_fields=changed)
        before = {f: audit.plain(stored[f]) for f in changed}
        audit.record(audit.UPDATE, row, before, {f: audit.plain(values[f]) for f in changed})
    return bool(changed)


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
        audit.record(audit.CREATE, tenant)
        transaction.on_commit(state.config_changed)
    return tenant


def tenant_set_models(*, tenant: Tenant, models: list[str] | None) -> Tenant:
    """Restrict a tenant to these models; None or empty means every enabled model."""
    allowed = models_by_name(models)
    with transaction.atomic():
        before = audit.stored(tenant)
        tenant.allowed_models.set(allowed)
        audit.record(audit.UPDATE, tenant, before=before, after=audit.stored(tenant))
        transaction.on_commit(state.config_changed)
    return tenant


def tenant_update(
    *, tenant: Tenant, display_name: str, is_active: bool, models: list[str] | None
) -> Tenant:
    """Change a tenant's editable fields (its name is its identity and does not change)."""
    allowed = models_by_name(models)
    with transaction.atomic():
        before = audit.stored(tenant)
        tenant.display_name = display_name
        tenant.is_active = is_active
        tenant.save(update_fields=["display_name", "is_active"])
        tenant.allowed_models.set(allowed)
        audit.record(audit.UPDATE, tenant, before=before, after=audit.stored(tenant))
        # Every cached key carries its tenant's state.
        _forget_keys_on_commit(_hashes(tenant.api_keys.all()))
        transaction.on_commit(state.config_changed)
    return tenant


def provider_defaults_check(defaults: dict | None) -> dict:
    """A tenant's defaults for the request's `provider` object, checked against the same
    schema as the request field, so a default can never say what a request could not."""
    from gateway.surfaces.anthropic.schema import ProviderPrefsIn

    if not isinstance(defaults, dict | None):
        raise ServiceError("provider defaults: expected an object")
    unknown = sorted(set(defaults or {}) - set(ProviderPrefsIn.__struct_fields__))
    if unknown:
        raise ServiceError(f"provider defaults: unknown field {unknown[0]!r}")
    try:
        prefs = msgspec.convert(defaults or {}, ProviderPrefsIn)
    except msgspec.ValidationError as err:
        raise ServiceError(f"provider defaults: {err}") from None
    return {k: v for k, v in msgspec.structs.asdict(prefs).items() if v is not None}


def tenant_set_provider_defaults(*, tenant: Tenant, defaults: dict | None) -> bool:
    """Set the tenant's defaults for the request's `provider` object; True if they changed."""
    cleaned = provider_defaults_check(defaults)
    stored = Tenant.objects.filter(pk=tenant.pk).values_list("provider_defaults", flat=True).get()
    if cleaned == stored:
        tenant.provider_defaults = cleaned
        return False
    with transaction.atomic():
        tenant.provider_defaults = cleaned
        tenant.save(update_fields=["provider_defaults"])
        before, after = {"provider_defaults": stored}, {"provider_defaults": cleaned}
        audit.record(audit.UPDATE, tenant, before=before, after=after)
        transaction.on_commit(state.config_changed)
    return True


def tenant_set_default_model(*, tenant: Tenant, model: Model | None) -> bool:
    """Set the model an unmatched `claude-*` id means for this tenant (None: such ids are
    unknown); True if it changed. It must be one of the tenant's models when it has a list."""
    allowed = set(tenant.allowed_models.values_list("pk", flat=True))
    if model is not None and allowed and model.pk not in allowed:
        raise ServiceError(f"default model {model.name!r} is not one of the tenant's models")
    stored = Tenant.objects.filter(pk=tenant.pk).values_list("default_model", flat=True).get()
    if stored == (model.pk if model is not None else None):
        tenant.default_model = model
        return False
    with transaction.atomic():
        before = audit.stored(tenant)
        tenant.default_model = model
        tenant.save(update_fields=["default_model"])
        audit.record(audit.UPDATE, tenant, before=before, after=audit.stored(tenant))
        transaction.on_commit(state.config_changed)
    return True


def tenant_set_limits(*, tenant: Tenant, **limits) -> bool:
    """Set a tenant's rpm, tpm, budget_usd and budget_period; True if anything changed.

    Every key of the tenant carries the tenant's limits in its cached info, so all are dropped.
    """
    values = limits_check(**limits)
    with transaction.atomic():
        changed = _set_limits(tenant, values)
        if changed:
            _forget_keys_on_commit(_hashes(tenant.api_keys.all()))
    return changed


def tenant_set_capture(
    *,
    tenant: Tenant,
    enabled: bool,
    retention_days: int | None = None,
    max_bytes: int | None = None,
) -> bool:
    """Turn the request log's body capture on or off, with its retention and size cap (None
    keeps the stored value); True if anything changed. Keys carry the setting: all are dropped
    from the caches, so it applies within KEY_CACHE_SECONDS."""
    days = tenant.capture_retention_days if retention_days is None else retention_days
    size = tenant.capture_max_bytes if max_bytes is None else max_bytes
    if not isinstance(days, int) or not 1 <= days <= MAX_CAPTURE_DAYS:
        raise ServiceError(f"capture retention must be 1 to {MAX_CAPTURE_DAYS} days")
    if not isinstance(size, int) or not MIN_CAPTURE_BYTES <= size <= MAX_CAPTURE_BYTES:
        raise ServiceError(f"capture size must be {MIN_CAPTURE_BYTES} to {MAX_CAPTURE_BYTES} bytes")
    fields = ("capture_bodies", "capture_retention_days", "capture_max_bytes")
    stored = Tenant.objects.filter(pk=tenant.pk).values(*fields).get()
    wanted = dict(zip(fields, (bool(enabled), days, size), strict=True))
    changed = [f for f in fields if stored[f] != wanted[f]]
    if not changed:
        return False
    with transaction.atomic():
        for field in changed:
            setattr(tenant, field, wanted[field])
        tenant.save(update_fields=changed)
        audit.record(
            audit.UPDATE,
            tenant,
            {f: stored[f] for f in changed},
            {f: wanted[f] for f in changed},
        )
        _forget_keys_on_commit(_hashes(tenant.api_keys.all()))
    return True


def tenant_delete(*, tenant: Tenant) -> None:
    """Delete a tenant with its memberships and keys; its keys stop working at once."""
    with transaction.atomic():
        _forget_keys_on_commit(_hashes(tenant.api_keys.all()))
        audit.record(audit.DELETE, tenant)
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
    derived_from: str | None = None,
    **limits,
) -> tuple[ApiKey, str]:
    """A new key and its secret. The secret is returned once and never stored (only a hash).

    `limits` are rpm, tpm, budget_usd and budget_period (see `limits_check`). `derived_from`
    (the quick start's demo key only): a seed the secret is derived from with SECRET_KEY, so
    the same key can be shown again after a restart (`keys.derived_secret`).
    """
    if expires_in_days is not None and expires_in_days <= 0:
        raise ServiceError("expires_in_days must be a positive number of days")
    allowed = api_key_models_check(tenant=tenant, models=models)
    limit_values = limits_check(**limits)
    if derived_from is None:
        secret, prefix, secret_hash = keys.new_secret()
    else:
        secret, prefix, secret_hash = keys.derived_secret(derived_from)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    with transaction.atomic():
        key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=prefix,
            secret_hash=secret_hash,
            allow_debug=allow_debug,
            expires_at=expires_at,
            **limit_values,
        )
        key.allowed_models.set(allowed)
        audit.record(audit.CREATE, key)
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
        before = audit.stored(key)
        key.name = name
        key.expires_at = expires_at
        key.allow_debug = allow_debug
        key.save(update_fields=["name", "expires_at", "allow_debug"])
        key.allowed_models.set(allowed)
        audit.record(audit.UPDATE, key, before=before, after=audit.stored(key))
        _forget_keys_on_commit([key.secret_hash, key.previous_secret_hash])
    return key


def api_key_set_limits(*, key: ApiKey, **limits) -> bool:
    """Set a key's rpm, tpm, budget_usd and budget_period; True if anything changed."""
    values = limits_check(**limits)
    with transaction.atomic():
        changed = _set_limits(key, values)
        if changed:
            _forget_keys_on_commit([key.secret_hash, key.previous_secret_hash])
    return changed


def api_key_rotate(*, key: ApiKey, grace_seconds: int = DEFAULT_ROTATION_GRACE_SECONDS) -> str:
    """Give a key a new secret; the current one keeps working for `grace_seconds`, then 401.

    The key keeps its identity (id, limits, usage history); only its secret changes. A secret
    replaced by an earlier rotation stops working at once: a key has at most two secrets.
    """
    if grace_seconds < 0:
        raise ServiceError("grace_seconds must not be negative")
    if key.revoked_at is not None:
        raise ServiceError(f"key {key.prefix} is revoked and cannot be rotated")
    secret, prefix, secret_hash = keys.new_secret()
    now = timezone.now()
    with transaction.atomic():
        current = ApiKey.objects.select_for_update().get(pk=key.pk)
        before = audit.snapshot(current)
        dropped = current.previous_secret_hash
        key.previous_secret_hash, key.previous_prefix = current.secret_hash, current.prefix
        key.previous_expires_at = now + timedelta(seconds=grace_seconds)
        key.secret_hash, key.prefix, key.rotated_at = secret_hash, prefix, now
        key.save(
            update_fields=[
                "secret_hash",
                "prefix",
                "previous_secret_hash",
                "previous_prefix",
                "previous_expires_at",
                "rotated_at",
            ]
        )
        audit.record(audit.ROTATE, key, before=before, after=audit.stored(key))
        # The old secret's cached info says "no expiry": drop it (and the one before it).
        _forget_keys_on_commit([key.previous_secret_hash, dropped])
    return secret


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time)."""
    with transaction.atomic():
        if key.revoked_at is None:
            before = audit.stored(key)
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit.record(audit.REVOKE, key, before=before, after=audit.stored(key))
        _forget_keys_on_commit([key.secret_hash, key.previous_secret_hash])
    return key


def api_key_delete(*, key: ApiKey) -> None:
    with transaction.atomic():
        _forget_keys_on_commit([key.secret_hash, key.previous_secret_hash])
        audit.record(audit.DELETE, key)
        key.delete()


# --- Memberships -----------------------------------------------------------------------------


def membership_save(*, membership: Membership) -> Membership:
    """Add a person to a tenant or change their role (the admin's form has set the values)."""
    with transaction.atomic():
        before = audit.stored(membership)
        membership.save()
        action = audit.CREATE if before is None else audit.UPDATE
        audit.record(action, membership, before=before, after=audit.stored(membership))
    return membership


def membership_delete(*, membership: Membership) -> None:
    with transaction.atomic():
        audit.record(audit.DELETE, membership)
        membership.delete()
