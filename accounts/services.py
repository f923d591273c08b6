"""Writes for tenants and API keys; every cache a change affects is cleared here, after commit.

Key policy (allowed models, debug flag, expiry, revocation, limits, the tenant's name, state
and limits) is cached per key by `accounts.keys`, so any change to it calls `keys.forget`, for
both secrets of a key in its rotation grace. Tenant model lists are part of the routing table,
so changing them calls `accounts.config_version.config_changed`.
Both run through `transaction.on_commit`: clearing a cache before the commit would let a
concurrent request cache the old row again for minutes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import msgspec
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import transaction
from django.utils import timezone

from accounts import audit, config_version, keys
from accounts.models import (
    MAX_BUDGET_USD,
    MAX_CAPTURE_BYTES,
    MAX_CAPTURE_DAYS,
    MIN_CAPTURE_BYTES,
    ApiKey,
    Invitation,
    LimitFields,
    Membership,
    Tenant,
)


class ServiceError(ValueError):
    """A write refused for a reason the caller can show as is (CLI, admin, API).

    `field`: the input the reason is about, when it is one (the REST API shows it there, see
    gateway/rest/input.py); None for the request as a whole.
    """

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.field = field


# The catalog's model, reached through the relation that names it: accounts sits below
# providers and never imports it (imports go one way, see README "Architecture").
Model = Tenant._meta.get_field("allowed_models").related_model


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
        transaction.on_commit(config_version.config_changed)
    return tenant


def tenant_set_models(*, tenant: Tenant, models: list[str] | None) -> Tenant:
    """Restrict a tenant to these models; None or empty means every enabled model."""
    allowed = models_by_name(models)
    with transaction.atomic():
        before = audit.stored(tenant)
        tenant.allowed_models.set(allowed)
        audit.record(audit.UPDATE, tenant, before=before, after=audit.stored(tenant))
        transaction.on_commit(config_version.config_changed)
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
        transaction.on_commit(config_version.config_changed)
    return tenant


def provider_defaults_check(defaults: dict | None) -> dict:
    """A tenant's defaults for the request's `provider` object, checked against the same
    schema as the request field, so a default can never say what a request could not."""
    from protocols.surface import ProviderPrefsIn

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
        transaction.on_commit(config_version.config_changed)
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
        transaction.on_commit(config_version.config_changed)
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
        transaction.on_commit(config_version.config_changed)


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


MEMBER_NOT_FOUND = (
    "no account has that username or email: the person must have a Tollgate account before "
    "they can be added (a platform admin creates it)"
)


def user_by_username_or_email(identifier: str):
    """The active account named by its username (exact) or email (any case); ServiceError else."""
    User = get_user_model()
    identifier = identifier.strip()
    if not identifier or len(identifier) > 254:
        raise ServiceError(MEMBER_NOT_FOUND)
    user = User.objects.filter(**{User.USERNAME_FIELD: identifier}).first()
    if user is None and "@" in identifier:
        by_email = list(User.objects.filter(email__iexact=identifier)[:2])
        if len(by_email) > 1:
            raise ServiceError("several accounts have that email: give the username instead")
        user = by_email[0] if by_email else None
    if user is None or not user.is_active:
        raise ServiceError(MEMBER_NOT_FOUND)
    return user


def _role_checked(role: str) -> str:
    if role not in Membership.Role.values:
        raise ServiceError(
            f"role must be one of: {', '.join(Membership.Role.values)}", field="role"
        )
    return role


def membership_add(*, tenant: Tenant, identifier: str, role: str) -> Membership:
    """Add an existing account (username or email) to the tenant with this role."""
    role = _role_checked(role)
    user = user_by_username_or_email(identifier)
    with transaction.atomic():
        _tenant_locked(tenant.pk)
        existing = Membership.objects.filter(tenant=tenant, user=user).first()
        if existing is not None:
            raise ServiceError(
                f"{user.get_username()} is already a member ({existing.role}): change their role"
            )
        return membership_save(membership=Membership(tenant=tenant, user=user, role=role))


def _tenant_locked(tenant_id: int) -> None:
    """Member changes of one tenant happen one at a time (the tenant's row is locked first), so
    two owners demoting or removing each other at once cannot leave it without an owner."""
    Tenant.objects.select_for_update().filter(pk=tenant_id).values_list("pk").first()


def _last_owner(membership: Membership) -> bool:
    if membership.role != Membership.Role.OWNER:
        return False
    owners = Membership.objects.filter(tenant_id=membership.tenant_id, role=Membership.Role.OWNER)
    return not owners.exclude(pk=membership.pk).exists()


def membership_set_role(*, membership: Membership, role: str) -> bool:
    """Change a member's role; the tenant's last owner keeps theirs. True if it changed."""
    role = _role_checked(role)
    with transaction.atomic():
        _tenant_locked(membership.tenant_id)
        current = Membership.objects.filter(pk=membership.pk).first()
        if current is None:
            raise ServiceError("that person is no longer a member of the tenant")
        if current.role == role:
            return False
        if _last_owner(current):
            raise ServiceError("the tenant's last owner cannot be demoted: make another owner")
        current.role = role
        membership_save(membership=current)
    membership.role = role
    return True


def membership_remove(*, membership: Membership) -> None:
    """Remove a member from the tenant; the tenant's last owner cannot be removed."""
    with transaction.atomic():
        _tenant_locked(membership.tenant_id)
        current = Membership.objects.filter(pk=membership.pk).first()
        if current is None:
            return  # already removed (a second click)
        if _last_owner(current):
            raise ServiceError("the tenant's last owner cannot be removed: make another owner")
        membership_delete(membership=current)


# --- Invitations -----------------------------------------------------------------------------

INVITATION_TOKEN_PREFIX = "tgi_"
INVITATION_NOT_FOUND = "this invitation link is not valid"


def _email_checked(email: str) -> str:
    email = (email or "").strip()
    if not email or len(email) > 254:
        raise ServiceError("give a valid email address (at most 254 characters)", field="email")
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError("give a valid email address", field="email") from None
    return email


def invitation_create(
    *, tenant: Tenant, email: str, role: str, invited_by=None
) -> tuple[Invitation, str]:
    """Invite an email address to the tenant with this role (an owner's action). A pending
    invitation for the same address is replaced (its link stops working). Returns the
    invitation and its token, which is never stored (only its SHA-256) nor shown again."""
    role = _role_checked(role)
    email = _email_checked(email)
    with transaction.atomic():
        _tenant_locked(tenant.pk)
        if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
            raise ServiceError(
                f"{email} is already a member of {tenant.name}: change their role", field="email"
            )
        now = timezone.now()
        for old in Invitation.objects.filter(
            tenant=tenant,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        ):
            _invitation_revoked(old, now)
        token = INVITATION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        invitation = Invitation(
            tenant=tenant,
            email=email,
            role=role,
            token_hash=keys.hash_secret(token),
            invited_by=invited_by if getattr(invited_by, "pk", None) else None,
        )
        invitation.save()
        audit.record(audit.CREATE, invitation, after=audit.stored(invitation))
    return invitation, token


def _invitation_revoked(invitation: Invitation, now: datetime) -> None:
    before = audit.stored(invitation)
    invitation.revoked_at = now
    invitation.save(update_fields=["revoked_at"])
    audit.record(audit.REVOKE, invitation, before=before, after=audit.stored(invitation))


def invitation_by_token(token: str) -> Invitation:
    """The invitation this link's token names, whatever its state; ServiceError when none does
    (nothing about any tenant is said then)."""
    if not isinstance(token, str) or not token.startswith(INVITATION_TOKEN_PREFIX):
        raise ServiceError(INVITATION_NOT_FOUND)
    if len(token) > 100:
        raise ServiceError(INVITATION_NOT_FOUND)
    found = (
        Invitation.objects.select_related("tenant")
        .filter(token_hash=keys.hash_secret(token))
        .first()
    )
    if found is None:
        raise ServiceError(INVITATION_NOT_FOUND)
    return found


class InvitationRefused(ServiceError):
    """A known invitation that this user cannot accept (now): wrong account, used, revoked or
    expired. The message names no tenant."""


def invitation_check(*, invitation: Invitation, user) -> None:
    """InvitationRefused unless this signed-in user may accept this invitation now."""
    if invitation.accepted_at is not None:
        raise InvitationRefused("this invitation has already been accepted")
    if invitation.revoked_at is not None:
        raise InvitationRefused("this invitation was withdrawn: ask the tenant's owner again")
    if invitation.expires_at <= timezone.now():
        raise InvitationRefused("this invitation has expired: ask the tenant's owner again")
    if (getattr(user, "email", "") or "").strip().lower() != invitation.email.lower():
        raise InvitationRefused(
            "this invitation was sent to another email address: sign in with that account"
        )


def invitation_accept(*, token: str, user) -> Membership:
    """Accept an invitation as the signed-in user, whose email must be the invited one (any
    case): a leaked link is useless to anyone else. Makes them a member with the invited role;
    a second accept is refused."""
    found = invitation_by_token(token)
    with transaction.atomic():
        _tenant_locked(found.tenant_id)
        invitation = Invitation.objects.select_for_update().get(pk=found.pk)
        invitation.tenant = found.tenant
        invitation_check(invitation=invitation, user=user)
        if Membership.objects.filter(tenant_id=invitation.tenant_id, user=user).exists():
            raise InvitationRefused("you are already a member of this tenant")
        membership = membership_save(
            membership=Membership(tenant=invitation.tenant, user=user, role=invitation.role)
        )
        before = audit.stored(invitation)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit.record(audit.UPDATE, invitation, before=before, after=audit.stored(invitation))
    return membership


def invitation_revoke(*, invitation: Invitation) -> bool:
    """Withdraw a pending invitation (its link stops working). False if it was not pending."""
    with transaction.atomic():
        current = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
        if current is None or not current.is_pending:
            return False
        _invitation_revoked(current, timezone.now())
    invitation.revoked_at = current.revoked_at
    return True


def invitations_pending(*, tenant: Tenant):
    return Invitation.objects.filter(
        tenant=tenant,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).order_by("-created_at", "-id")
