"""Alert channels and policies (configuration), alerts and their deliveries (the log)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from providers import crypto


class AlertKind(models.TextChoices):
    BUDGET = "budget_threshold", "Budget threshold crossed"
    KEY_EXPIRING = "key_expiring", "API key about to expire"
    BREAKER_OPEN = "breaker_open", "Route breaker opened"
    USAGE_BACKLOG = "usage_backlog", "Usage pipeline behind"
    TEST = "test", "Test alert"


# Alerts about one tenant; the others concern the whole platform.
TENANT_KINDS = frozenset({AlertKind.BUDGET, AlertKind.KEY_EXPIRING})


class AlertChannel(models.Model):
    """Where alerts go: a webhook (signed) or email addresses, for one tenant or the platform."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (HMAC-SHA256 signed POST)"
        EMAIL = "email", "Email"

    tenant = models.ForeignKey(
        "accounts.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_channels",
        help_text="Empty: a platform channel (breakers, usage backlog, and every tenant's "
        "alerts if 'all tenants' is set).",
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=500, blank=True, help_text="Webhook: the https:// URL")
    secret_encrypted = models.TextField(blank=True, editable=False)
    emails = models.TextField(blank=True, help_text="Email: addresses, comma separated")
    # Alert kinds sent here; empty means every kind.
    kinds = models.JSONField(default=list, blank=True)
    all_tenants = models.BooleanField(
        default=False, help_text="Platform channel: also every tenant's budget and key alerts"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="unique_alert_channel_name"),
            # NULLs differ in a unique index: platform channels need their own.
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(tenant__isnull=True),
                name="unique_platform_alert_channel_name",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value)

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)

    def email_list(self) -> list[str]:
        return [a.strip() for a in self.emails.split(",") if a.strip()]

    def wants(self, kind: str) -> bool:
        return self.enabled and (not self.kinds or kind in self.kinds)


class AlertPolicy(models.Model):
    """A tenant's thresholds (one row per tenant; no row: the platform's settings)."""

    tenant = models.OneToOneField(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="alert_policy"
    )
    budget_thresholds = models.JSONField(
        default=list, blank=True, help_text="Percentages of a budget, e.g. [50, 80, 100]"
    )
    key_expiry_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Warn this many days before a key expires"
    )

    class Meta:
        verbose_name_plural = "alert policies"

    def __str__(self) -> str:
        return f"alert policy of {self.tenant}"


class Alert(models.Model):
    """Something worth telling, once: `dedupe_key` (kind, subject, threshold, period) is unique,
    so a budget crossing 80 % twice in a period, or two replicas seeing one breaker open, make
    one alert."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    tenant = models.ForeignKey(
        "accounts.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subject = models.CharField(max_length=100, help_text="What it is about, e.g. key:12")
    threshold = models.PositiveIntegerField(default=0)
    period = models.CharField(max_length=40, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True, editable=False)
    title = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class AlertDelivery(models.Model):
    """One alert to one channel, with every attempt in `attempts`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (given up)"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(
        AlertChannel, null=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    channel_name = models.CharField(max_length=100)  # kept if the channel is deleted
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.alert.kind} to {self.channel_name}: {self.status}"


class AlertAttempt(models.Model):
    """One try at a delivery: what came back, how long it took, and what happens next."""

    delivery = models.ForeignKey(AlertDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    error = models.CharField(max_length=500, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="unique_alert_attempt"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
