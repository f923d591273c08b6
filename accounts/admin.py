"""Admin for tenants, memberships and API keys; writes go through accounts.services.

An API key's secret (a new key's, or a rotated one's) is shown exactly once, in the response to
the POST that made it (no-store), never in a message: Django's messages travel in a cookie,
signed but not encrypted. The change form shows only the prefix. Edits, revocations and
deletions drop the key's cached policy.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.db import models as db
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import ApiKey, AuditEntry, Invitation, Membership, ServiceToken, Tenant
from accounts.service_tokens import service_token_create, service_token_revoke
from accounts.services import (
    ServiceError,
    api_key_create,
    api_key_delete,
    api_key_models_check,
    api_key_revoke,
    api_key_rotate,
    api_key_set_limits,
    api_key_update,
    limits_check,
    membership_delete,
    membership_save,
    provider_defaults_check,
    tenant_create,
    tenant_delete,
    tenant_set_capture,
    tenant_set_default_model,
    tenant_set_limits,
    tenant_set_provider_defaults,
    tenant_update,
)

LIMITS = ("rpm", "tpm", "budget_usd", "budget_period")


CAPTURE = ("capture_bodies", "capture_retention_days", "capture_max_bytes")


def _capture(cleaned_data: dict) -> dict:
    return {
        "enabled": bool(cleaned_data.get("capture_bodies")),
        "retention_days": cleaned_data.get("capture_retention_days"),
        "max_bytes": cleaned_data.get("capture_max_bytes"),
    }


def _limits(cleaned_data: dict) -> dict:
    return {name: cleaned_data.get(name) for name in LIMITS}


def _check_limits(form: forms.Form, cleaned_data: dict) -> None:
    """The services' rules for limits (e.g. none without Redis), shown on the form."""
    try:
        limits_check(**_limits(cleaned_data))
    except ServiceError as exc:
        form.add_error(None, str(exc))


def _model_names(cleaned_data: dict) -> list[str]:
    return [m.name for m in cleaned_data.get("allowed_models") or []]


def _adopt(obj: db.Model, saved: db.Model) -> None:
    """Make the admin's unsaved instance the row a service created (admin keeps using `obj`)."""
    obj.pk = saved.pk
    obj.refresh_from_db()
    obj._state.adding = False


# --- Tenants ---------------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = (
            "name",
            "display_name",
            "is_active",
            "allowed_models",
            "default_model",
            "rpm",
            "tpm",
            "budget_usd",
            "budget_period",
            "provider_defaults",
            *CAPTURE,
        )
        help_texts = {"provider_defaults": 'e.g. {"order": ["anthropic-main"], "sort": "latency"}'}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("capture_retention_days", "capture_max_bytes"):
            if name in self.fields:  # left empty: the stored value (or the default) stays
                self.fields[name].required = False

    def clean_provider_defaults(self):
        try:
            return provider_defaults_check(self.cleaned_data.get("provider_defaults"))
        except ServiceError as err:
            raise forms.ValidationError(str(err)) from None

    def clean(self):
        cleaned = super().clean()
        _check_limits(self, cleaned)
        default, allowed = cleaned.get("default_model"), cleaned.get("allowed_models")
        if default is not None and allowed and default not in allowed:
            self.add_error("default_model", "The default model must be one of allowed models.")
        return cleaned


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = ("name", "display_name", "is_active", *LIMITS, "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "display_name")
    filter_horizontal = ("allowed_models",)
    inlines = (MembershipInline,)

    def get_fields(self, request, obj=None):
        if obj is None:  # new tenants start active
            return (
                "name",
                "display_name",
                "allowed_models",
                "default_model",
                *LIMITS,
                "provider_defaults",
                *CAPTURE,
            )
        return (
            "name",
            "display_name",
            "is_active",
            "allowed_models",
            "default_model",
            *LIMITS,
            "provider_defaults",
            *CAPTURE,
            "created_at",
        )

    def get_readonly_fields(self, request, obj=None):
        # The name is the tenant's identity: config files and key caches refer to it.
        return ("created_at",) if obj is None else ("name", "created_at")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            tenant_update(
                tenant=obj,
                display_name=data["display_name"],
                is_active=data["is_active"],
                models=_model_names(data),
            )
            tenant_set_limits(tenant=obj, **_limits(data))
            tenant_set_provider_defaults(tenant=obj, defaults=data["provider_defaults"])
            tenant_set_default_model(tenant=obj, model=data.get("default_model"))
            tenant_set_capture(tenant=obj, **_capture(data))
        else:
            tenant = tenant_create(
                name=data["name"], display_name=data["display_name"], models=_model_names(data)
            )
            tenant_set_limits(tenant=tenant, **_limits(data))
            tenant_set_provider_defaults(tenant=tenant, defaults=data["provider_defaults"])
            tenant_set_default_model(tenant=tenant, model=data.get("default_model"))
            tenant_set_capture(tenant=tenant, **_capture(data))
            _adopt(obj, tenant)

    def save_related(self, request, form, formsets, change):
        # The service already set the allowed models; only the membership inline is left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership_delete(membership=membership)
        for membership in memberships:
            membership_save(membership=membership)

    def delete_model(self, request, obj):
        tenant_delete(tenant=obj)

    def delete_queryset(self, request, queryset):
        for tenant in queryset:
            tenant_delete(tenant=tenant)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("user", "tenant")
    readonly_fields = ("created_at",)

    def save_model(self, request, obj, form, change):
        membership_save(membership=obj)

    def delete_model(self, request, obj):
        membership_delete(membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            membership_delete(membership=membership)


# --- API keys --------------------------------------------------------------------------------


class ApiKeyFormMixin:
    """Refuse models outside the tenant's list on the form, where the error can be shown."""

    def tenant_for_check(self) -> Tenant | None:
        return self.instance.tenant if self.instance.pk else self.cleaned_data.get("tenant")

    def clean(self):
        cleaned = super().clean()
        _check_limits(self, cleaned)
        tenant = self.tenant_for_check()
        if tenant is not None:
            try:
                api_key_models_check(tenant=tenant, models=_model_names(cleaned))
            except ServiceError as exc:
                self.add_error("allowed_models", str(exc))
        return cleaned


class ApiKeyAddForm(ApiKeyFormMixin, forms.ModelForm):
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, help_text="Leave empty for a key that never expires."
    )

    class Meta:
        model = ApiKey
        fields = ("tenant", "name", "allowed_models", "allow_debug", *LIMITS)


class ApiKeyChangeForm(ApiKeyFormMixin, forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "allowed_models", "allow_debug", "expires_at", *LIMITS)


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyChangeForm
    list_display = (
        "prefix",
        "name",
        "tenant",
        "created_at",
        "last_used_at",
        "expires_at",
        "rpm",
        "tpm",
        "budget_usd",
        "is_revoked",
    )
    list_filter = ("tenant", RevokedFilter)
    search_fields = ("prefix", "name", "tenant__name")
    list_select_related = ("tenant",)
    filter_horizontal = ("allowed_models",)
    autocomplete_fields = ("tenant",)
    actions = ("revoke_selected", "rotate_selected")
    add_fields = ("tenant", "name", "expires_in_days", "allowed_models", "allow_debug", *LIMITS)
    change_fields = (
        "tenant",
        "prefix",
        "name",
        "allowed_models",
        "allow_debug",
        "expires_at",
        *LIMITS,
        "created_at",
        "last_used_at",
        "revoked_at",
        "rotated_at",
        "previous_prefix",
        "previous_expires_at",
    )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.change_fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "tenant",
            "prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
            "rotated_at",
            "previous_prefix",
            "previous_expires_at",
        )

    @admin.display(description="revoked", boolean=True, ordering="revoked_at")
    def is_revoked(self, obj: ApiKey) -> bool:
        return obj.revoked_at is not None

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            api_key_update(
                key=obj,
                name=data["name"],
                expires_at=data["expires_at"],
                allow_debug=data["allow_debug"],
                models=_model_names(data),
            )
            api_key_set_limits(key=obj, **_limits(data))
            return
        key, secret = api_key_create(
            tenant=data["tenant"],
            name=data["name"],
            expires_in_days=data["expires_in_days"],
            models=_model_names(data),
            allow_debug=data["allow_debug"],
            **_limits(data),
        )
        _adopt(obj, key)
        request._tollgate_new_secrets = [(key, secret)]  # for response_add, this request only

    def response_add(self, request, obj, post_url_continue=None):
        shown = getattr(request, "_tollgate_new_secrets", None)
        if not shown:
            return super().response_add(request, obj, post_url_continue)
        return self._secrets_page(request, shown, "API key created")

    def _secrets_page(self, request, shown: list, title: str) -> TemplateResponse:
        """The new secrets, in this response only: no redirect, no message, not cached."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "shown": shown,
        }
        response = TemplateResponse(request, "admin/accounts/apikey/secrets.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def save_related(self, request, form, formsets, change):
        """Nothing left to save: the service set the allowed models, and there are no inlines."""

    def delete_model(self, request, obj):
        api_key_delete(key=obj)

    def delete_queryset(self, request, queryset):
        for key in queryset:
            api_key_delete(key=key)

    # Both actions change keys: a staff member who may only view keys does not get them.
    @admin.action(description="Revoke selected keys", permissions=("change",))
    def revoke_selected(self, request, queryset):
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)

    @admin.action(
        description="Rotate selected keys (old secrets work 24 more hours)", permissions=("change",)
    )
    def rotate_selected(self, request, queryset):
        shown = [(key, api_key_rotate(key=key)) for key in queryset.filter(revoked_at__isnull=True)]
        if not shown:
            self.message_user(request, "Revoked keys cannot be rotated.", messages.WARNING)
            return None
        return self._secrets_page(request, shown, "API keys rotated")


# --- Service tokens --------------------------------------------------------------------------


class ServiceTokenAddForm(forms.ModelForm):
    class Meta:
        model = ServiceToken
        fields = ("name", "tenant", "expires_at")

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return expires_at


class ServiceTokenAdmin(admin.ModelAdmin):
    """Tokens for the admin REST API. The secret is shown once, on the page answering the add
    form (never through the messages cookie); afterwards only its prefix."""

    list_display = ("prefix", "name", "scope", "created_at", "last_used_at", "expires_at")
    list_display += ("is_revoked",)
    list_filter = (RevokedFilter,)
    search_fields = ("prefix", "name", "tenant__name")
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    actions = ("revoke_selected",)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ServiceTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "tenant", "expires_at")
        return ("name", "tenant", "prefix", "created_at", "last_used_at", "expires_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("name", "tenant", "prefix", "created_at", "last_used_at", "expires_at")

    @admin.display(description="scope", ordering="tenant__name")
    def scope(self, obj: ServiceToken) -> str:
        return f"tenant {obj.tenant.name}" if obj.tenant_id else "platform"

    @admin.display(description="revoked", boolean=True, ordering="revoked_at")
    def is_revoked(self, obj: ServiceToken) -> bool:
        return obj.revoked_at is not None

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing is editable: revoke and create another instead
        data = form.cleaned_data
        token, secret = service_token_create(
            name=data["name"], tenant=data["tenant"], expires_at=data["expires_at"]
        )
        _adopt(obj, token)
        obj.shown_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Service token {obj.prefix} created",
            "token": obj,
            "secret": obj.shown_secret,
        }
        response = TemplateResponse(request, "admin/accounts/servicetoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens", permissions=("change",))
    def revoke_selected(self, request, queryset):
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            service_token_revoke(token=token)
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)


admin.site.register(ServiceToken, ServiceTokenAdmin)


# --- Audit log -------------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence (audit entries, parked usage records): shown, never added, edited or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def pretty_json(value) -> str:
    if value is None:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read only: entries are written by the services (accounts.audit), never edited here."""

    list_display = ("created_at", "actor_label", "action", "object_type", "object_repr", "tenant")
    list_filter = ("action", "object_type", "tenant")
    search_fields = ("object_repr", "actor_label")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "actor_label",
        "actor",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "tenant",
        "before_pretty",
        "after_pretty",
    )
    readonly_fields = fields

    @admin.display(description="before")
    def before_pretty(self, obj: AuditEntry) -> str:
        return pretty_json(obj.before)

    @admin.display(description="after")
    def after_pretty(self, obj: AuditEntry) -> str:
        return pretty_json(obj.after)


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    """Shown only: owners invite on the members page or the admin REST API, which email the
    link (only there is the token ever known; the hash is not shown)."""

    list_display = (
        "email",
        "tenant",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    list_filter = ("role", "tenant")
    search_fields = ("email",)
    list_select_related = ("tenant",)
    fields = (
        "tenant",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    )
    readonly_fields = fields
