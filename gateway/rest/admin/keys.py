"""Admin API: a tenant's API keys (create with limits and a model allow-list, change, rotate
with a chosen grace period, revoke) and its usage. Secrets appear once, in the answer that
made them (`Cache-Control: no-store`)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.models import ApiKey, Tenant
from gateway.dashboard import selectors
from gateway.rest.admin.base import AdminApi, read, secret_response
from gateway.rest.apis import KeyCreateInput, KeyOutputSerializer, LimitsInput, UsageApi
from gateway.rest.input import StrictInput, no_body
from providers.models import Model

LIMITS = ("rpm", "tpm", "budget_usd", "budget_period")
MAX_GRACE_SECONDS = 30 * 24 * 3600


@extend_schema_serializer(component_name="AdminApiKeyWithSecret")
class KeySecretOutput(KeyOutputSerializer):
    secret = serializers.CharField(help_text="The key's secret: shown in this response only")


class AdminKeyCreateInput(KeyCreateInput):
    allow_debug = serializers.BooleanField(
        required=False, default=False, help_text="Platform operators only"
    )


def check_debug_flag(caller, data: dict, *, current: bool = False) -> None:
    """The debug flag shows platform internals (upstream requests): only platform operators
    set it, as in the admin."""
    if data.get("allow_debug", current) != current:
        caller.require_platform("accounts.change_apikey")


class KeyChangeInput(StrictInput, LimitsInput):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    models = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        allow_null=True,
        max_length=500,
        help_text="Limit the key to these models (null or []: whatever the tenant may use)",
    )
    allow_debug = serializers.BooleanField(required=False, help_text="Platform operators only")
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class RotateInput(StrictInput, serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0,
        max_value=MAX_GRACE_SECONDS,
        default=services.DEFAULT_ROTATION_GRACE_SECONDS,
        help_text="How long the current secret keeps working (default one day; 0: not at all)",
    )


def keys_of(tenant: Tenant):
    return tenant.api_keys.prefetch_related(
        Prefetch("allowed_models", queryset=Model.objects.only("name"))
    ).order_by("-created_at", "-id")


class KeysApi(AdminApi):
    @extend_schema(operation_id="admin_keys_list", responses=KeyOutputSerializer(many=True))
    def get(self, request: Request, tenant: str) -> Response:
        """The tenant's keys, newest first (secrets are never shown again)."""
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_keys(row)
        return self.paginated(keys_of(row), KeyOutputSerializer)

    @extend_schema(
        operation_id="admin_keys_create",
        request=AdminKeyCreateInput,
        responses={201: KeySecretOutput},
    )
    def post(self, request: Request, tenant: str) -> Response:
        """Create a key with its limits and model allow-list; the secret is in this answer only."""
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_keys(row, create=True)
        data = read(AdminKeyCreateInput, request)
        check_debug_flag(caller, data)
        key, secret = services.api_key_create(tenant=row, **data)
        key.secret = secret
        return secret_response(KeySecretOutput(key).data, status.HTTP_201_CREATED)


class KeyApi(AdminApi):
    """Views about one key of one tenant."""

    def key(self, tenant: str, key_id: int, *, write: bool) -> ApiKey:
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_keys(row, write=write)
        try:
            return keys_of(row).select_related("tenant").get(pk=key_id)
        except ApiKey.DoesNotExist:
            raise exceptions.NotFound("No such key.") from None


class KeyDetailApi(KeyApi):
    @extend_schema(operation_id="admin_keys_retrieve", responses=KeyOutputSerializer)
    def get(self, request: Request, tenant: str, key_id: int) -> Response:
        return Response(KeyOutputSerializer(self.key(tenant, key_id, write=False)).data)

    @extend_schema(
        operation_id="admin_keys_update", request=KeyChangeInput, responses=KeyOutputSerializer
    )
    def patch(self, request: Request, tenant: str, key_id: int) -> Response:
        """Change the fields given (name, models, debug, expiry, limits); applies within
        seconds on every replica."""
        key = self.key(tenant, key_id, write=True)
        data = read(KeyChangeInput, request, partial=True)
        check_debug_flag(self.caller(), data, current=key.allow_debug)
        with transaction.atomic():
            if {"name", "models", "allow_debug", "expires_at"} & data.keys():
                models = (
                    data["models"]
                    if "models" in data
                    else [m.name for m in key.allowed_models.all()]
                )
                services.api_key_update(
                    key=key,
                    name=data.get("name", key.name),
                    expires_at=data.get("expires_at", key.expires_at),
                    allow_debug=data.get("allow_debug", key.allow_debug),
                    models=models,
                )
            if set(LIMITS) & data.keys():
                limits = {f: data[f] if f in data else getattr(key, f) for f in LIMITS}
                services.api_key_set_limits(key=key, **limits)
        return Response(KeyOutputSerializer(keys_of(key.tenant).get(pk=key.pk)).data)


class KeyRotateApi(KeyApi):
    @extend_schema(operation_id="admin_keys_rotate", request=RotateInput, responses=KeySecretOutput)
    def post(self, request: Request, tenant: str, key_id: int) -> Response:
        """Give the key a new secret (in this answer only); the current one keeps working for
        `grace_seconds`."""
        key = self.key(tenant, key_id, write=True)
        data = read(RotateInput, request)
        secret = services.api_key_rotate(key=key, grace_seconds=data["grace_seconds"])
        key.secret = secret
        return secret_response(KeySecretOutput(key).data, status.HTTP_200_OK)


class KeyRevokeApi(KeyApi):
    @extend_schema(operation_id="admin_keys_revoke", request=None, responses=KeyOutputSerializer)
    def post(self, request: Request, tenant: str, key_id: int) -> Response:
        """Revoke the key (idempotent); it stops working within seconds on every replica."""
        key = self.key(tenant, key_id, write=True)
        no_body(request)
        return Response(KeyOutputSerializer(services.api_key_revoke(key=key)).data)


class TenantUsageApi(AdminApi):
    """The tenant's usage, as `/api/v1/usage` gives it (the same selectors and fields)."""

    @extend_schema(
        operation_id="admin_usage_list",
        parameters=[UsageApi.InputSerializer],
        responses=UsageApi.OutputSerializer(many=True),
    )
    def get(self, request: Request, tenant: str) -> Response:
        caller = self.caller()
        row = caller.tenant(tenant)
        params = UsageApi.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = selectors.usage_rows(
            tenant=row,
            period=params.validated_data["period"],
            group_by=params.validated_data["group_by"],
        )
        return self.paginated(rows, UsageApi.OutputSerializer)
