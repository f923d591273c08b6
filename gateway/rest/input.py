"""What every REST write accepts: the fields it declares, nothing else.

A misspelt or unsupported field must never be dropped silently (`POST /api/v1/keys` with
`rpm` once made an unlimited key): `StrictInput` answers 400 naming each unknown field, and
`no_body` refuses a body on actions that take none. Service errors become 400s in one place,
`exception_handler` (settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.services import ServiceError


class StrictInput:
    """Serializer mixin: input keys the serializer does not declare (or declares read-only)
    are a 400 naming them."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(k) for k in data if k not in writable)
            if unknown:
                raise serializers.ValidationError(
                    {name[:100]: ["Unknown field."] for name in unknown[:20]}
                )
        return super().to_internal_value(data)


class StrictSerializer(StrictInput, serializers.Serializer):
    """A plain input serializer that refuses unknown fields."""


def no_body(request: Request) -> None:
    """Actions that take no input (revoke) refuse any field rather than ignore it."""
    data = request.data
    if isinstance(data, Mapping) and data:
        unknown = sorted(str(k)[:100] for k in data)[:20]
        raise exceptions.ValidationError(
            {name: ["Unknown field: this action takes no input."] for name in unknown}
        )
    if data and not isinstance(data, Mapping):
        raise exceptions.ValidationError({"non_field_errors": ["This action takes no input."]})


def exception_handler(exc, context):
    """DRF's handler, plus the services' errors as 400s: a ServiceError's message (or a config
    document's problems) under its field or `non_field_errors`, a model's validation errors per
    field. The one place a service's refusal becomes an HTTP answer: views do not catch them."""
    if isinstance(exc, ServiceError):
        problems = getattr(exc, "problems", None) or [str(exc)]
        exc = exceptions.ValidationError({exc.field or "non_field_errors": problems})
    elif isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {
                "non_field_errors" if k == "__all__" else k: v for k, v in exc.message_dict.items()
            }
        else:
            detail = {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)
