"""Tenants, the people in them, and the API keys they call the gateway with."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

# Budgets are kept in Redis as integer nano-dollars, exact up to 2**53 (about $9M).
MAX_BUDGET_USD = Decimal("1000000")


class LimitFields(models.Model):
    """Rate limits and a spend budget; empty means no limit. Tenants and keys both have them."""

    class BudgetPeriod(models.TextChoices):
        DAILY = "daily", "Daily (UTC)"
        MONTHLY = "monthly", "Monthly (UTC)"

    rpm = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Requests per minute"
    )
    tpm = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Tokens per minute (input + output)",
    )
    budget_usd = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(MAX_BUDGET_USD)],
        help_text="Spend allowed per budget period, in USD",
    )
    budget_period = models.CharField(
        max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTHLY, blank=True
    )

    class Meta:
        abstract = True


MAX_CAPTURE_DAYS = 365
MIN_CAPTURE_BYTES, MAX_CAPTURE_BYTES = 1024, 1024 * 1024


class Tenant(LimitFields):
    name = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    # Empty means every enabled model.
    allowed_models = models.ManyToManyField("providers.Model", blank=True, related_name="+")
    # Defaults for the request's `provider` object (order, only, ignore, include_alpha,
    # allow_fallbacks, sort); a request's own fields win.
    provider_defaults = models.JSONField(default=dict, blank=True)
    # What an unmatched `claude-*` id means for this tenant (providers/aliases.py); empty: 404.
    default_model = models.ForeignKey(
        "providers.Model",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Answers any claude-* id that names no model, alias or pattern this tenant "
        "may use (e.g. Claude Code's own model ids). Empty: such ids are unknown (404).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The request log's optional body capture (off by default): requests and answers kept,
    # redacted and cut to `capture_max_bytes` each, for `capture_retention_days`.
    capture_bodies = models.BooleanField(
        default=False,
        help_text="Keep each request's body and answer in the request log (redacted, capped).",
    )
    capture_retention_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CAPTURE_DAYS)],
        help_text="Days captured bodies are kept.",
    )
    capture_max_bytes = models.PositiveIntegerField(
        default=64 * 1024,
        validators=[MinValueValidator(MIN_CAPTURE_BYTES), MaxValueValidator(MAX_CAPTURE_BYTES)],
        help_text="Bytes kept of each body and of each answer; the rest is cut.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class ApiKey(LimitFields):
    """A tenant key. Only a SHA-256 of the secret is kept; `prefix` identifies it to people."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Empty means whatever the tenant may use.
    allowed_models = models.ManyToManyField("providers.Model", blank=True, related_name="+")
    allow_debug = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Rotation: the secret before the last rotation keeps working until previous_expires_at.
    previous_prefix = models.CharField(max_length=16, blank=True, editable=False)
    previous_secret_hash = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False
    )
    previous_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuditEntry(models.Model):
    """One administrative change: who, what, when, and the fields before and after.

    Written by `accounts.audit.record` inside the changing service's transaction; never holds a
    secret (see `accounts.audit.snapshot`).
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "alice", "cli:gateway_apply", "api-key:tg_AbCdEfGh" or "system"; kept if the user goes.
    actor_label = models.CharField(max_length=150)
    # The tenant the object belongs to, for filtering (empty for providers, models, routes).
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=True
    )
    action = models.CharField(max_length=16)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    # Updates: only the changed fields. Create: the whole new object. Delete: the whole old one.
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_type} {self.object_repr}"


class ServiceToken(models.Model):
    """A credential for automation on the admin REST API (`/api/v1/admin`): platform-wide, or
    scoped to one tenant. Like API keys, only a SHA-256 of the secret is kept (accounts.keys)."""

    name = models.CharField(max_length=100)
    # Empty: platform-wide (every tenant and the catalog). Set: that tenant only.
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="service_tokens",
        help_text="Empty: platform-wide. Set: the token reaches only this tenant.",
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def _invitation_expiry():
    return timezone.now() + timedelta(days=7)


class Invitation(models.Model):
    """An owner's invitation for an email address to join a tenant with a role. Only a SHA-256
    of the token in the link is kept (accounts.keys.hash_secret), so the link is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(
        max_length=16, choices=Membership.Role.choices, default=Membership.Role.VIEWER
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.tenant} ({self.role})"

    @property
    def is_pending(self) -> bool:
        open_ = self.accepted_at is None and self.revoked_at is None
        return open_ and self.expires_at > timezone.now()


class ConfigVersion(models.Model):
    """One row whose `version` moves on every committed change to providers, models, routes,
    aliases or tenants (`accounts.config_version.config_changed`).

    With Redis, replicas learn of a change from Redis at once; this stamp is what processes
    without Redis (the quick start, where the CLI and the server are separate processes) read
    every TOLLGATE_ROUTES_CACHE_SECONDS to see a change made elsewhere.
    """

    version = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Created by the gateway app's migrations before the model moved here (the lowest
        # app, so providers and accounts both reach it without importing the gateway).
        db_table = "gateway_configversion"

    def __str__(self) -> str:
        return f"config version {self.version}"
