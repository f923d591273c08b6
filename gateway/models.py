"""Usage records (one per `/v1/messages` request) and their daily and hourly roll-ups."""

from django.db import models


class UsageRecord(models.Model):
    """What one request used and cost. Written by the Celery worker, idempotent on request id."""

    class Status(models.TextChoices):
        OK = "ok", "Succeeded"
        ERROR = "error", "Failed"
        CANCELLED = "cancelled", "Client disconnected"

    class Endpoint(models.TextChoices):
        MESSAGES = "messages", "/v1/messages"
        CHAT_COMPLETIONS = "chat_completions", "/v1/chat/completions"
        RESPONSES = "responses", "/v1/responses"
        # Counting is recorded (who asked, which counter answered) but never billed or rolled up.
        COUNT_TOKENS = "count_tokens", "/v1/messages/count_tokens"

    request_id = models.CharField(max_length=40, unique=True)
    endpoint = models.CharField(max_length=16, choices=Endpoint.choices, default=Endpoint.MESSAGES)
    tenant = models.ForeignKey(
        "accounts.Tenant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="usage_records",
    )
    model = models.CharField(max_length=128, blank=True, help_text="Public model name asked for")
    provider = models.CharField(max_length=64, blank=True)
    upstream_model = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveBigIntegerField(
        default=0, help_text="Of the cache writes, those with a 1-hour TTL (billed dearer)"
    )
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    estimated = models.BooleanField(default=False, help_text="Token counts are our estimate")
    cost_usd = models.DecimalField(max_digits=18, decimal_places=9, default=0)
    billed = models.BooleanField(default=True)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    # The request log (gateway/usage/record.py builds them; secrets redacted).
    error_message = models.TextField(blank=True)
    client_request_id = models.CharField(
        max_length=128, blank=True, help_text="The client's x-request-id"
    )
    trace_id = models.CharField(max_length=32, blank=True, help_text="W3C trace id")
    upstream_request_id = models.CharField(
        max_length=128, blank=True, help_text="The provider's own id for the call that answered"
    )
    # [{provider, upstream_model, status, latency_ms, error_type, error_message,
    #   upstream_request_id}] in the order tried.
    attempts = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # USD per kind of token (input, cache_read, cache_write, output, reasoning), when billed.
    cost_parts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["tenant", "-started_at"]),
            models.Index(fields=["api_key", "-started_at"]),
            models.Index(fields=["tenant", "client_request_id"]),
            models.Index(fields=["upstream_request_id"]),
            # Retention deletes the oldest records of every tenant, a batch at a time.
            models.Index(fields=["started_at"], name="usage_record_started_at"),
        ]

    def __str__(self) -> str:
        return self.request_id

    @property
    def generation_ms(self) -> float | None:
        """From the first byte to the end: the time spent generating the answer."""
        return None if self.ttfb_ms is None else max(0.0, self.latency_ms - self.ttfb_ms)


class RolledUp(models.Model):
    """What a roll-up row sums, for one tenant, key, model and provider over a day or an hour."""

    api_key_id = models.PositiveBigIntegerField(default=0)
    api_key_prefix = models.CharField(max_length=16, blank=True)
    model = models.CharField(max_length=128, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=9, default=0)
    latency_ms_total = models.FloatField(default=0)

    class Meta:
        abstract = True


class DailyUsage(RolledUp):
    """Per day, tenant, key, model and provider: the dashboards read these, not raw records.

    Only authenticated requests roll up (an unknown key has no tenant). The key is kept as a
    plain id and prefix so a deleted key's history stays; no column is NULL, so the unique
    constraint works the same on every database.
    """

    day = models.DateField()
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="daily_usage"
    )

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "tenant", "api_key_id", "model", "provider"],
                name="unique_daily_usage",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.tenant_id} {self.model}"


class HourlyUsage(RolledUp):
    """DailyUsage's twin per UTC hour, written in the same transaction from the same records.

    The platform usage view reads it for hourly charts. Kept TOLLGATE_HOURLY_USAGE_RETENTION_DAYS
    (pruned by the retention task); the daily roll-ups are kept for good.
    """

    hour = models.DateTimeField(help_text="Start of the UTC hour")
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="hourly_usage"
    )

    class Meta:
        ordering = ["-hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "tenant", "api_key_id", "model", "provider"],
                name="unique_hourly_usage",
            )  # its index, hour first, serves the platform view's ranges and the retention
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.tenant_id} {self.model}"


class UsageDeadLetter(models.Model):
    """A usage record the database refused even on its own (the rest of its batch landed).

    Parked by the worker with the reason, shown read-only in the admin and counted at
    `/metrics` (`tollgate_usage_dead_letters`). The record is kept as ASCII JSON text, so
    whatever made the database refuse it (a NUL, a number out of range) is kept too.
    """

    request_id = models.CharField(
        max_length=64, unique=True, help_text="The record's request id ('frame_…' if unreadable)"
    )
    tenant_id = models.BigIntegerField(null=True, blank=True, help_text="As in the record")
    record = models.TextField(help_text="The record as JSON")
    reason = models.TextField(help_text="Why the database refused it")
    parked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-parked_at"]

    def __str__(self) -> str:
        return self.request_id


class CapturedBody(models.Model):
    """A request's body and answer, kept for the request log when its tenant asks
    (Tenant.capture_bodies): redacted like debug output, each cut to the tenant's size cap, and
    deleted once `expires_at` passes (gateway.tasks.captured_bodies_expire, Celery beat)."""

    request_id = models.CharField(max_length=40, unique=True)
    tenant = models.ForeignKey(
        "accounts.Tenant", on_delete=models.CASCADE, related_name="captured_bodies"
    )
    request = models.TextField(blank=True)
    response = models.TextField(blank=True)
    truncated = models.BooleanField(default=False, help_text="A body or answer was cut")
    captured_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-captured_at"]

    def __str__(self) -> str:
        return self.request_id


# The alert tables belong to this app; their models live with the rest of the alerts.
from gateway.alerts.models import (  # noqa: E402
    Alert,
    AlertAttempt,
    AlertChannel,
    AlertDelivery,
    AlertPolicy,
)

__all__ = [
    "Alert",
    "AlertAttempt",
    "AlertChannel",
    "AlertDelivery",
    "AlertPolicy",
    "CapturedBody",
    "DailyUsage",
    "HourlyUsage",
    "UsageDeadLetter",
    "UsageRecord",
]
