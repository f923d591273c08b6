"""Admin for alerts: channels and policies (configuration), alerts and deliveries (the log).

Changes go through the alert services (audited, like every administrative change). A
webhook's secret is write-only, like a provider's credential: the form never renders it
back, only whether one is set; leaving the field empty keeps what is stored. The log (alerts,
deliveries, each attempt) is read only.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.validators import validate_email
from django.db.models import Count

from accounts.admin import ReadOnlyAdmin, pretty_json
from gateway.alerts import webhooks
from gateway.alerts.models import (
    Alert,
    AlertAttempt,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    AlertPolicy,
)
from gateway.alerts.services import (
    alert_channel_delete,
    alert_channel_save,
    alert_policy_delete,
    alert_policy_save,
    alert_test_send,
)

MIN_SECRET_CHARS = 16


class AlertChannelForm(forms.ModelForm):
    url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", help_text="Webhook: its URL"
    )
    secret = forms.CharField(
        required=False,
        strip=True,
        min_length=MIN_SECRET_CHARS,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Webhook: the key signing each call (Tollgate-Signature), at least "
        f"{MIN_SECRET_CHARS} characters, e.g. from `python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`. Stored encrypted, never shown again; leave empty "
        "to keep the current one.",
    )
    kinds = forms.MultipleChoiceField(
        required=False,
        choices=AlertKind.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every kind.",
    )

    class Meta:
        model = AlertChannel
        fields = ("tenant", "name", "kind", "url", "emails", "kinds", "all_tenants", "enabled")

    def clean_url(self):
        url = self.cleaned_data.get("url") or ""
        if url:
            allow = settings.TOLLGATE_ALERTS["ALLOW_PRIVATE_URLS"]
            if (problem := webhooks.url_problem(url, allow_private=allow)) is not None:
                raise forms.ValidationError(problem)
        return url

    def clean_emails(self):
        addresses = [a.strip() for a in (self.cleaned_data.get("emails") or "").split(",")]
        addresses = [a for a in addresses if a]
        for address in addresses:
            validate_email(address)
        return ", ".join(addresses)

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == AlertChannel.Kind.WEBHOOK:
            if not cleaned.get("url"):
                self.add_error("url", "A webhook channel needs its URL.")
            if not cleaned.get("secret") and not self.instance.has_secret:
                self.add_error("secret", "A webhook channel needs a signing secret.")
        elif kind == AlertChannel.Kind.EMAIL and not cleaned.get("emails"):
            self.add_error("emails", "An email channel needs at least one address.")
        if cleaned.get("all_tenants") and cleaned.get("tenant") is not None:
            self.add_error("all_tenants", "Only a platform channel (no tenant) takes all tenants.")
        return cleaned


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    form = AlertChannelForm
    list_display = ("name", "tenant", "kind", "target", "enabled", "has_secret")
    list_filter = ("kind", "enabled", "tenant")
    search_fields = ("name", "tenant__name")
    list_select_related = ("tenant",)
    actions = ("send_test_alert",)

    @admin.display(description="sends to")
    def target(self, obj: AlertChannel) -> str:
        if obj.kind == AlertChannel.Kind.WEBHOOK:
            return webhooks.url_origin(obj.url)  # a token in the path or query stays out
        return obj.emails

    @admin.display(description="secret set", boolean=True)
    def has_secret(self, obj: AlertChannel) -> bool:
        return obj.has_secret

    def save_model(self, request, obj, form, change):
        alert_channel_save(channel=obj, secret=form.cleaned_data.get("secret") or "")

    def delete_model(self, request, obj):
        alert_channel_delete(channel=obj)

    def delete_queryset(self, request, queryset):
        for channel in queryset:
            alert_channel_delete(channel=channel)

    @admin.action(description="Send a test alert")
    def send_test_alert(self, request, queryset):
        for channel in queryset:
            alert_test_send(channel=channel)
        self.message_user(
            request,
            f"Test alert queued to {queryset.count()} channel(s); see Alert deliveries.",
            messages.SUCCESS,
        )


class AlertPolicyForm(forms.ModelForm):
    class Meta:
        model = AlertPolicy
        fields = ("tenant", "budget_thresholds", "key_expiry_days")

    def clean_budget_thresholds(self):
        value = self.cleaned_data.get("budget_thresholds") or []
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000 for v in value
        ):
            raise forms.ValidationError("A list of percentages from 1 to 1000, e.g. [50, 80, 100]")
        return sorted(set(value))


@admin.register(AlertPolicy)
class AlertPolicyAdmin(admin.ModelAdmin):
    form = AlertPolicyForm
    list_display = ("tenant", "budget_thresholds", "key_expiry_days")
    search_fields = ("tenant__name",)

    def save_model(self, request, obj, form, change):
        alert_policy_save(policy=obj)

    def delete_model(self, request, obj):
        alert_policy_delete(policy=obj)

    def delete_queryset(self, request, queryset):
        for policy in queryset:
            alert_policy_delete(policy=policy)


class DeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    fields = ("channel_name", "status", "attempt_count", "next_retry_at", "finished_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "title", "tenant", "delivery_count")
    list_filter = ("kind", "tenant")
    search_fields = ("title", "subject")
    date_hierarchy = "created_at"
    list_select_related = ("tenant",)
    fields = ("created_at", "kind", "tenant", "subject", "threshold", "period", "title")
    fields += ("uid", "details_pretty")
    readonly_fields = fields
    inlines = (DeliveryInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(delivery_count=Count("deliveries"))

    @admin.display(description="deliveries", ordering="delivery_count")
    def delivery_count(self, obj: Alert) -> int:
        return obj.delivery_count

    @admin.display(description="details")
    def details_pretty(self, obj: Alert) -> str:
        return pretty_json(obj.details)


class AttemptInline(admin.TabularInline):
    model = AlertAttempt
    extra = 0
    fields = ("number", "at", "status_code", "latency_ms", "error", "next_retry_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: each alert to each channel, with every attempt below it."""

    list_display = ("created_at", "alert", "channel_name", "status", "attempt_count")
    list_display += ("next_retry_at", "finished_at")
    list_filter = ("status", "alert__kind")
    search_fields = ("channel_name", "alert__title")
    list_select_related = ("alert",)
    fields = ("alert", "channel", "channel_name", "status", "attempt_count", "next_retry_at")
    fields += ("created_at", "finished_at")
    readonly_fields = fields
    inlines = (AttemptInline,)
