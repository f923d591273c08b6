"""Dashboard forms: the date range and split every page shares, the key forms (new key, limits,
allowed models, rotation) and the member forms (add, change role)."""

from __future__ import annotations

import secrets

from django import forms

from accounts.models import ApiKey, Membership
from accounts.services import LIMIT_FIELDS
from gateway.dashboard.selectors import BREAKDOWNS, DateRange

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


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
