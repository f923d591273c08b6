"""Admin for providers, models and routes. Every change tells the gateways to reload routing.

A provider's credential and its extra header values are write-only here: the form never
renders them back, only whether a credential is set and the headers' names. Leaving a field
empty keeps what is stored.
"""

from django import forms
from django.contrib import admin
from django.db.models import Count

from accounts.services import ServiceError
from protocols.anthropic import betas
from providers import breaker
from providers.models import Model, ModelAlias, Provider, Route
from providers.services import (
    alias_problems,
    catalog_delete,
    catalog_save,
    headers_problem,
    model_name_check,
)


class ConfigChangedAdmin(admin.ModelAdmin):
    """Saves and deletes through the catalog services: each is audited and announced to all
    gateway replicas once committed. Inline rows (a model's routes) go the same way."""

    def save_model(self, request, obj, form, change):
        catalog_save(row=obj)

    def save_formset(self, request, form, formset, change):
        rows = formset.save(commit=False)
        for row in formset.deleted_objects:
            catalog_delete(row=row)
        for row in rows:
            catalog_save(row=row)
        formset.save_m2m()

    def delete_model(self, request, obj):
        catalog_delete(row=obj)

    def delete_queryset(self, request, queryset):
        for row in queryset:
            catalog_delete(row=row)


class ProviderForm(forms.ModelForm):
    base_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    credential = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The upstream API key. Never shown again; leave empty to keep the current one.",
    )
    clear_credential = forms.BooleanField(required=False, label="Clear credential")
    extra_headers = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=(
            "Replaces every extra header sent upstream: a JSON object of names and values, "
            'e.g. {"cf-aig-authorization": "Bearer ..."}. Stored encrypted and never shown '
            "again; leave empty to keep the current headers, {} removes them."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["betas_mode"].required = False

    class Meta:
        model = Provider
        fields = (
            "name",
            "kind",
            "base_url",
            "enabled",
            "options",
            "betas_mode",
            "betas",
            "extra_headers",
            "connect_timeout",
            "first_byte_timeout",
            "idle_timeout",
        )

    def clean_betas_mode(self):
        return self.cleaned_data.get("betas_mode") or "forward"  # left out: every beta goes

    def clean_betas(self):
        names = self.cleaned_data.get("betas")
        names = [] if names is None else names
        if (problem := betas.names_problem(names)) is not None:
            raise forms.ValidationError(problem)
        return names

    def clean_extra_headers(self):
        headers = self.cleaned_data.get("extra_headers")
        if headers is not None and (problem := headers_problem(headers)) is not None:
            raise forms.ValidationError(problem)
        return headers

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("credential") and cleaned.get("clear_credential"):
            raise forms.ValidationError("Either set a new credential or clear it, not both.")
        return cleaned


# What a route is, at a glance: its model's inline and the route list show the same columns.
ROUTE_COLUMNS = ("provider", "upstream_model", "priority", "weight", "alpha", "enabled")


class RouteInline(admin.TabularInline):
    model = Route
    extra = 0
    fields = (
        *ROUTE_COLUMNS,
        "upstream_price_input",
        "upstream_price_output",
        "long_context_window",
        "long_context_upstream_model",
        "health",
    )
    readonly_fields = ("health",)
    autocomplete_fields = ("provider",)

    @admin.display(description="Health")
    def health(self, obj: Route) -> str:
        return route_health(obj)


def route_health(route: Route) -> str:
    """The route's shared breaker state and recent figures, as every replica sees them."""
    if route.pk is None:
        return "-"
    try:
        h = breaker.health(route.pk)
    except Exception:  # Redis unreachable: the page must still render
        return "unknown (Redis unreachable)"
    latency = f"{h.latency_ms:.0f} ms" if h.latency_ms is not None else "no traffic yet"
    return f"{h.state}, {h.error_rate:.0%} errors, {latency}"


@admin.register(Provider)
class ProviderAdmin(ConfigChangedAdmin):
    form = ProviderForm
    list_display = ("name", "kind", "base_url", "enabled", "credential_state", "updated_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url")
    readonly_fields = ("credential_state", "header_names", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "kind", "base_url", "enabled", "options")}),
        ("Anthropic betas", {"fields": ("betas_mode", "betas")}),
        ("Credential", {"fields": ("credential_state", "credential", "clear_credential")}),
        (
            "Advanced",
            {
                "fields": (
                    "header_names",
                    "extra_headers",
                    "connect_timeout",
                    "first_byte_timeout",
                    "idle_timeout",
                )
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="credential")
    def credential_state(self, obj: Provider) -> str:
        return "set" if obj.has_credential else "not set"

    @admin.display(description="extra headers")
    def header_names(self, obj: Provider) -> str:
        try:
            names = list(obj.extra_headers)
        except ValueError:
            return "set, but cannot be decrypted with TOLLGATE_ENCRYPTION_KEYS"
        return ", ".join(names) if names else "none"

    def save_model(self, request, obj, form, change):
        credential = form.cleaned_data.get("credential") or None
        if form.cleaned_data.get("clear_credential"):
            credential = ""
        headers = form.cleaned_data.get("extra_headers")
        catalog_save(row=obj, credential=credential, extra_headers=headers)


class AliasFormSet(forms.BaseInlineFormSet):
    """The model's aliases as they would be after saving, checked with every other model's
    (providers/aliases.py): the same rules as `gateway_apply`."""

    def clean(self):
        super().clean()
        names = [
            f.cleaned_data["name"]
            for f in self.forms
            if f.cleaned_data.get("name") and not f.cleaned_data.get("DELETE")
        ]
        found = alias_problems(model=self.instance, names=names)
        if found:
            raise forms.ValidationError(found)


class ModelAliasInline(admin.TabularInline):
    model = ModelAlias
    formset = AliasFormSet
    extra = 0
    fields = ("name",)


class PublicModelForm(forms.ModelForm):
    class Meta:
        model = Model
        fields = ("name", "display_name", "enabled", "max_tokens", "routing")
        fields += (
            "price_input",
            "price_output",
            "price_cache_read",
            "price_cache_write",
            "price_web_search",
        )
        fields += ("price_cache_write_1h",)

    def clean_name(self):
        name = self.cleaned_data["name"]
        try:
            model_name_check(name=name)
        except ServiceError as err:
            raise forms.ValidationError(str(err)) from None
        return name


@admin.register(Model)
class PublicModelAdmin(ConfigChangedAdmin):
    form = PublicModelForm
    list_display = (
        "name",
        "display_name",
        "enabled",
        "max_tokens",
        "price_input",
        "price_output",
        "route_count",
        "updated_at",
    )
    list_filter = ("enabled",)
    search_fields = ("name", "display_name")
    readonly_fields = ("created_at", "updated_at")
    inlines = (ModelAliasInline, RouteInline)
    fieldsets = (
        (None, {"fields": ("name", "display_name", "enabled", "max_tokens", "routing")}),
        (
            "Prices, USD per million tokens",
            {
                "fields": (
                    "price_input",
                    "price_output",
                    "price_cache_read",
                    "price_cache_write",
                    "price_web_search",
                    "price_cache_write_1h",
                ),
                "description": "Cache write: a 5-minute write (Anthropic bills 1.25x input). "
                "1-hour cache write: empty means twice the input price, as Anthropic bills it.",
            },
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(route_count=Count("routes"))

    @admin.display(description="routes", ordering="route_count")
    def route_count(self, obj: Model) -> int:
        return obj.route_count


@admin.register(Route)
class RouteAdmin(ConfigChangedAdmin):
    list_display = ("model", *ROUTE_COLUMNS, "health")
    list_filter = ("enabled", "alpha", "provider")
    search_fields = ("model__name", "provider__name", "upstream_model")
    list_select_related = ("model", "provider")
    autocomplete_fields = ("model", "provider")
    readonly_fields = ("health", "created_at", "updated_at")

    @admin.display(description="Health (breaker, error rate, latency EWMA)")
    def health(self, obj: Route) -> str:
        return route_health(obj)
