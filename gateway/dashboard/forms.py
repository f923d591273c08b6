"""Dashboard forms: the date range and split every page shares, the key forms (new key, limits,
allowed models, rotation) and the member forms (add, change role)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django import forms

from accounts.models import ApiKey, Membership, Tenant
from accounts.services import LIMIT_FIELDS
from gateway.dashboard import platform
from gateway.dashboard.selectors import BREAKDOWNS, DateRange, RequestFilter
from gateway.models import UsageRecord

# A form that shows a secret (new key, rotation) may be submitted once: its nonce is spent on
# the first POST, so a reload or double click cannot make a second secret behind the person's
# back (a second rotation would end the first one's grace at once).
_NONCES_SESSION_KEY = "dashboard:key-form-nonces"
_NONCES_KEPT = 20
# Bound of a rotation's grace period: the old secret works at most this long (30 days).
MAX_ROTATION_GRACE_HOURS = 720


class RangeForm(forms.Form):
    """`?start=YYYY-MM-DD&end=YYYY-MM-DD&by=model`; missing values mean the last 30 days."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(
        required=False,
        label="Split by",
        choices=[(d, d.title()) for d in BREAKDOWNS],
    )

    def clean(self):
        data = super().clean()
        try:
            data["period"] = DateRange.build(data.get("start"), data.get("end"))
        except ValueError as err:
            raise forms.ValidationError(str(err)) from None
        return data

    def period(self) -> DateRange:
        """The range asked for, or the default one when the form is invalid (errors shown)."""
        return self.cleaned_data["period"] if self.is_valid() else DateRange.build()

    def dimension(self) -> str:
        return (self.cleaned_data.get("by") if self.is_valid() else None) or "model"


class PlatformUsageForm(forms.Form):
    """`?start&end&granularity=day|hour&by=tenant&tenant=<name>`: the platform usage view.
    Missing dates mean the last 30 days, or the last 2 for hours (31 at most)."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    granularity = forms.ChoiceField(
        required=False, label="Per", choices=[(g, g.title()) for g in platform.GRANULARITIES]
    )
    by = forms.ChoiceField(
        required=False, label="Split by", choices=[(d, d.title()) for d in platform.BREAKDOWNS]
    )
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.order_by("name"),
        to_field_name="name",
        required=False,
        empty_label="All tenants",
    )

    def clean(self):
        data = super().clean()
        granularity = data.get("granularity") or "day"
        end, start = data.get("end"), data.get("start")
        try:
            if granularity == "hour" and start is None:
                end = end or DateRange.build().end
                start = end - timedelta(days=1)
            data["period"] = DateRange.build(start, end)
            platform.check_period(data["period"], granularity)
        except ValueError as err:
            raise forms.ValidationError(str(err)) from None
        return data

    def period(self) -> DateRange:
        return self.cleaned_data["period"] if self.is_valid() else DateRange.build()

    def per(self) -> str:
        return (self.cleaned_data.get("granularity") if self.is_valid() else None) or "day"

    def dimension(self) -> str:
        return (self.cleaned_data.get("by") if self.is_valid() else None) or "tenant"

    def tenant_filter(self) -> Tenant | None:
        return self.cleaned_data.get("tenant") if self.is_valid() else None


class OnceForm(forms.Form):
    """A form with a one-time nonce (see _NONCES_SESSION_KEY), held in the session."""

    nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)

    @staticmethod
    def issue_nonce(session) -> str:
        """A fresh one-time nonce for a form about to be shown."""
        nonce = secrets.token_urlsafe(16)
        kept = session.get(_NONCES_SESSION_KEY, [])[-(_NONCES_KEPT - 1) :]
        session[_NONCES_SESSION_KEY] = [*kept, nonce]
        return nonce

    def nonce_unspent(self, session) -> bool:
        """False when this form was already submitted once (a reload, a double click)."""
        return self.data.get("nonce", "") in session.get(_NONCES_SESSION_KEY, [])

    def spend_nonce(self, session) -> None:
        nonce = self.data.get("nonce", "")
        kept = session.get(_NONCES_SESSION_KEY, [])
        session[_NONCES_SESSION_KEY] = [n for n in kept if n != nonce]


class ApiKeyCreateForm(OnceForm):
    name = forms.CharField(max_length=100, required=False, help_text="A label, e.g. ci or laptop")
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Expires in (days)"
    )
    field_order = ["name", "expires_in_days", "nonce"]


class ApiKeyRotateForm(OnceForm):
    grace_hours = forms.IntegerField(
        min_value=0,
        max_value=MAX_ROTATION_GRACE_HOURS,
        initial=24,
        label="Old secret keeps working for (hours)",
        help_text=f"0 to {MAX_ROTATION_GRACE_HOURS}; 0 ends it at once.",
    )


class ApiKeyModelsForm(forms.Form):
    """The models a key may use, among its tenant's; none ticked means all of the tenant's."""

    models = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Models this key may use"
    )

    def __init__(self, *args, choices: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["models"].choices = [(name, name) for name in choices]


class ApiKeyLimitsForm(forms.ModelForm):
    """Validates a key's limits with the model's own rules; saving goes through
    accounts.services.api_key_set_limits (audit, shared cache), never `form.save()`."""

    class Meta:
        model = ApiKey
        fields = LIMIT_FIELDS
        labels = {
            "rpm": "Requests per minute",
            "tpm": "Tokens per minute",
            "budget_usd": "Budget (USD)",
            "budget_period": "Budget period",
        }

    def limits(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in LIMIT_FIELDS}


class MemberAddForm(forms.Form):
    user = forms.CharField(max_length=254, label="Username or email")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class InviteForm(forms.Form):
    prefix = "invite"  # its fields' ids differ from the add form's on the same page
    email = forms.EmailField(max_length=254, label="Email")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class RequestFilterForm(RangeForm):
    """The request log's search: an id (the gateway's, the client's `x-request-id` or the
    provider's), and exact filters. The keys offered are the tenant's own."""

    q = forms.CharField(required=False, max_length=128, label="Request id")
    key = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Key")
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *UsageRecord.Status.choices]
    )
    error_type = forms.CharField(required=False, max_length=64, label="Error type")
    model = forms.CharField(required=False, max_length=128)
    provider = forms.CharField(required=False, max_length=64)
    endpoint = forms.ChoiceField(
        required=False, choices=[("", "Any endpoint"), *UsageRecord.Endpoint.choices]
    )

    def __init__(self, *args, keys=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].choices = [("", "Any key"), *((k.pk, k.prefix) for k in keys)]

    def filters(self) -> RequestFilter:
        """What to narrow the log to; the default range when the form is invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        return RequestFilter(
            period=self.period(),
            request_id=data.get("q") or None,
            api_key_id=data.get("key"),
            status=data.get("status") or None,
            error_type=data.get("error_type") or None,
            model=data.get("model") or None,
            provider=data.get("provider") or None,
            endpoint=data.get("endpoint") or None,
        )
