"""REST API for platform admins: `GET /api/v1/platform/usage`, every tenant's usage per day or
hour from the roll-ups (gateway/dashboard/platform.py).

Only a signed-in platform admin (staff who may see every tenant, `accounts.access`) reads it:
a tenant key or a tenant member is a 403, an anonymous caller a 401.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.authentication import TenantKeyPrincipal
from accounts.models import Tenant
from gateway.dashboard import platform
from gateway.rest.apis import PeriodSerializer, TenantApi, UsageSumsSerializer


class IsPlatformAdmin(BasePermission):
    message = "Platform admins only: staff who may see every tenant."

    def has_permission(self, request: Request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False  # DRF answers 401 with the authenticators' challenge
        if isinstance(request.user, TenantKeyPrincipal):
            return False
        return access.can_view_platform_usage(user=request.user)


class PlatformUsageApi(TenantApi):
    permission_classes = [IsPlatformAdmin]

    class InputSerializer(PeriodSerializer):
        granularity = serializers.ChoiceField(
            choices=platform.GRANULARITIES, required=False, default="day"
        )
        group_by = serializers.CharField(
            required=False,
            allow_blank=True,  # `group_by=`: one row of totals
            default="time",
            help_text="Comma-separated: time, tenant, model, provider, key (empty: totals)",
        )
        tenant = serializers.SlugField(
            required=False, max_length=64, help_text="Only this tenant (default: all)"
        )

        def validate_group_by(self, value: str) -> tuple[str, ...]:
            dimensions = tuple(d.strip() for d in value.split(",") if d.strip())
            unknown = [d for d in dimensions if d not in platform.DIMENSIONS]
            if unknown:
                raise serializers.ValidationError(
                    f"unknown: {', '.join(unknown)}; use {', '.join(platform.DIMENSIONS)}"
                )
            return dimensions

        def validate(self, data):
            data = super().validate(data)
            try:
                platform.check_period(data["period"], data["granularity"])
            except ValueError as err:
                raise serializers.ValidationError(str(err)) from None
            return data

    @extend_schema_serializer(component_name="PlatformUsageRow")
    class OutputSerializer(UsageSumsSerializer):
        time = serializers.DateTimeField(allow_null=True, help_text="Start of the UTC day or hour")
        tenant = serializers.CharField(source="tenant_name", allow_null=True)
        model = serializers.CharField(allow_null=True)
        provider = serializers.CharField(allow_null=True)
        key_id = serializers.IntegerField(allow_null=True)
        key_prefix = serializers.CharField(allow_null=True)
        key_name = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="platform_usage_list",
        parameters=[InputSerializer],
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Usage of every tenant summed per group (time by default), per day or UTC hour."""
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        tenant = None
        if "tenant" in data:
            try:
                tenant = Tenant.objects.get(name=data["tenant"])
            except Tenant.DoesNotExist:
                raise exceptions.NotFound("No such tenant.") from None
        rows = platform.platform_usage_rows(
            period=data["period"],
            granularity=data["granularity"],
            group_by=data["group_by"],
            tenant=tenant,
        )
        return self.paginated(rows, self.OutputSerializer)
