"""REST API under `/api/v1`: one tenant's usage, requests and keys, for people and scripts.

Callers authenticate with a tenant key (`x-api-key: KEY` or `Authorization: Bearer KEY`),
which always means that key's tenant, or with a dashboard session (`?tenant=<name>` when
the person sees several tenants). Key-authenticated callers read; they never create or revoke
keys, so a leaked key cannot mint more. Writes to keys need the session of a tenant owner or
admin. Platform staff reach other tenants with the admin's own permissions (`accounts.access`).
A tenant or key the caller may not see is a 404; a visible tenant's keys the caller may not
list or touch, a 403. Errors are DRF's usual JSON (`{"detail": ...}` or field errors); the API
answers JSON only (`Accept: text/html` alone is a 406).
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import access
from accounts.authentication import TenantKeyAuthentication, TenantKeyPrincipal
from accounts.models import ApiKey, Tenant
from accounts.services import api_key_create, api_key_revoke
from gateway.dashboard import exports, selectors
from gateway.models import UsageRecord
from gateway.rest import schema  # noqa: F401  (registers the tenant-key security scheme)
from gateway.rest.input import StrictSerializer, no_body
from providers.models import Model

TENANT_PARAMETER = OpenApiParameter(
    "tenant",
    str,
    description="Tenant name. Sessions seeing several tenants must give it; keys may omit it.",
)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def tenant_for(request: Request) -> Tenant:
    """The one tenant this call is about, or 404 when the caller may not see it."""
    name = request.query_params.get("tenant")
    if isinstance(request.user, TenantKeyPrincipal):
        if name and name != request.auth.tenant_name:
            raise exceptions.NotFound("No such tenant.")
        return Tenant.objects.get(pk=request.user.tenant_id)
    if name:
        try:
            return access.tenant_visible_get(user=request.user, name=name)
        except Tenant.DoesNotExist:
            raise exceptions.NotFound("No such tenant.") from None
    tenant = access.tenant_default(user=request.user)
    if tenant is None:
        raise exceptions.ValidationError({"tenant": ["Name the tenant: ?tenant=<name>."]})
    return tenant


def check_can_view_keys(request: Request, tenant: Tenant) -> None:
    if isinstance(request.user, TenantKeyPrincipal):
        return  # a key reads its own tenant's keys
    if not access.can_view_keys(user=request.user, tenant=tenant):
        raise exceptions.PermissionDenied("You may not see this tenant's keys.")


def check_can_write_keys(request: Request, tenant: Tenant, *, create: bool) -> None:
    if isinstance(request.user, TenantKeyPrincipal):
        raise exceptions.PermissionDenied(
            "API keys cannot create or revoke keys; sign in as a tenant owner or admin."
        )
    allowed = access.can_create_keys if create else access.can_change_keys
    if not allowed(user=request.user, tenant=tenant):
        raise exceptions.PermissionDenied("Only the tenant's owners and admins manage keys.")


def key_for(tenant: Tenant, key_id: int) -> ApiKey:
    try:
        return selectors.api_key_get(tenant=tenant, key_id=key_id)
    except ApiKey.DoesNotExist:
        raise exceptions.NotFound("No such key.") from None


class TenantApi(GenericAPIView):
    # Key first: an anonymous caller gets 401 with `WWW-Authenticate: Bearer`, not 403.
    authentication_classes = [TenantKeyAuthentication, SessionAuthentication]
    pagination_class = Pagination

    def paginated(self, items, serializer_class) -> Response:
        page = self.paginate_queryset(items)
        return self.get_paginated_response(serializer_class(page, many=True).data)


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First day (UTC), YYYY-MM-DD")
    end = serializers.DateField(required=False, help_text="Last day (UTC), included")

    def validate(self, data):
        try:
            data["period"] = selectors.DateRange.build(data.get("start"), data.get("end"))
        except ValueError as err:
            raise serializers.ValidationError(str(err)) from None
        return data


class UsageSumsSerializer(serializers.Serializer):
    """What a usage row sums over its group (tenant usage and the platform's alike)."""

    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=9)
    latency_ms_avg = serializers.FloatField(allow_null=True)


class UsageApi(TenantApi):
    class InputSerializer(PeriodSerializer):
        group_by = serializers.CharField(
            required=False,
            default="day",
            help_text="Comma-separated: day, model, key, provider (empty: one row of totals)",
        )

        def validate_group_by(self, value: str) -> tuple[str, ...]:
            dimensions = tuple(d.strip() for d in value.split(",") if d.strip())
            unknown = [d for d in dimensions if d not in selectors.DIMENSIONS]
            if unknown:
                raise serializers.ValidationError(
                    f"unknown: {', '.join(unknown)}; use {', '.join(selectors.DIMENSIONS)}"
                )
            return dimensions

    @extend_schema_serializer(component_name="UsageRow")
    class OutputSerializer(UsageSumsSerializer):
        day = serializers.DateField(allow_null=True)
        model = serializers.CharField(allow_null=True)
        key_id = serializers.IntegerField(allow_null=True)
        key_prefix = serializers.CharField(allow_null=True)
        key_name = serializers.CharField(allow_null=True)
        provider = serializers.CharField(allow_null=True)
        latency_p50_ms = serializers.FloatField(
            allow_null=True, help_text="Median latency of successful requests"
        )
        latency_p95_ms = serializers.FloatField(allow_null=True)

    @extend_schema(
        operation_id="usage_list",
        parameters=[InputSerializer, TENANT_PARAMETER],
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Usage summed per group (day by default), from the daily roll-ups."""
        tenant = tenant_for(request)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rows = selectors.usage_rows(
            tenant=tenant,
            period=params.validated_data["period"],
            group_by=params.validated_data["group_by"],
        )
        return self.paginated(rows, self.OutputSerializer)


class RequestsApi(TenantApi):
    class FilterSerializer(serializers.Serializer):
        start = serializers.DateField(required=False)
        end = serializers.DateField(required=False)
        q = serializers.CharField(
            required=False,
            max_length=128,
            help_text="A request id: the gateway's, the client's x-request-id or the provider's",
        )
        key = serializers.CharField(required=False, max_length=64, help_text="A key's prefix")
        model = serializers.CharField(required=False, max_length=128)
        provider = serializers.CharField(required=False, max_length=64)
        status = serializers.ChoiceField(choices=UsageRecord.Status.choices, required=False)
        error_type = serializers.CharField(required=False, max_length=64)
        endpoint = serializers.ChoiceField(choices=UsageRecord.Endpoint.choices, required=False)

    @extend_schema_serializer(component_name="RequestRecord")
    class OutputSerializer(serializers.Serializer):
        request_id = serializers.CharField()
        endpoint = serializers.CharField()
        model = serializers.CharField()
        provider = serializers.CharField()
        upstream_model = serializers.CharField()
        key_prefix = serializers.CharField(source="api_key.prefix", allow_null=True, default=None)
        status = serializers.CharField()
        http_status = serializers.IntegerField()
        error_type = serializers.CharField()
        error_message = serializers.CharField()
        input_tokens = serializers.IntegerField()
        output_tokens = serializers.IntegerField()
        cache_read_tokens = serializers.IntegerField()
        cache_write_tokens = serializers.IntegerField()
        reasoning_tokens = serializers.IntegerField()
        estimated = serializers.BooleanField()
        cost_usd = serializers.DecimalField(max_digits=18, decimal_places=9)
        latency_ms = serializers.FloatField()
        ttfb_ms = serializers.FloatField(allow_null=True)
        overhead_ms = serializers.FloatField(allow_null=True)
        streamed = serializers.BooleanField()
        client_request_id = serializers.CharField()
        upstream_request_id = serializers.CharField()
        started_at = serializers.DateTimeField()
        finished_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="requests_list",
        parameters=[FilterSerializer, TENANT_PARAMETER],
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """The tenant's request log, newest first: search by id, filter by key, status, error
        type, model, provider, endpoint and days."""
        tenant = tenant_for(request)
        records = selectors.requests_search(tenant=tenant, filters=request_filter(request, tenant))
        return self.paginated(records, self.OutputSerializer)


def request_filter(request: Request, tenant: Tenant) -> selectors.RequestFilter:
    filters = RequestsApi.FilterSerializer(data=request.query_params)
    filters.is_valid(raise_exception=True)
    data = filters.validated_data
    period = None
    if "start" in data or "end" in data:
        period = _period(data.get("start"), data.get("end"))
    key_id = None
    if "key" in data:  # a prefix of another tenant's key narrows to nothing
        key = ApiKey.objects.filter(tenant=tenant, prefix=data["key"]).first()
        key_id = key.pk if key is not None else -1
    return selectors.RequestFilter(
        period=period,
        request_id=data.get("q"),
        api_key_id=key_id,
        status=data.get("status"),
        error_type=data.get("error_type"),
        model=data.get("model"),
        provider=data.get("provider"),
        endpoint=data.get("endpoint"),
    )


class RequestDetailApi(TenantApi):
    @extend_schema(
        operation_id="requests_retrieve",
        parameters=[TENANT_PARAMETER],
        responses={200: dict},
    )
    def get(self, request: Request, request_id: str) -> Response:
        """One request with every attempt (provider, upstream model, status, latency, error,
        the provider's request id), timings, tokens, cost parts and warnings."""
        tenant = tenant_for(request)
        try:
            record = selectors.request_get(tenant=tenant, request_id=request_id)
        except UsageRecord.DoesNotExist:
            raise exceptions.NotFound("No such request.") from None
        data = exports.request_dict(record)
        # Captured bodies: a tenant owner's or admin's session only, never a key.
        if not isinstance(request.user, TenantKeyPrincipal) and access.can_change_keys(
            user=request.user, tenant=tenant
        ):
            body = selectors.captured_body_get(tenant=tenant, request_id=request_id)
            if body is not None:
                data["captured"] = {
                    "request": body.request,
                    "response": body.response,
                    "truncated": body.truncated,
                    "expires_at": body.expires_at.isoformat(),
                }
        return Response(data)


class RequestsExportApi(TenantApi):
    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # CSV or JSON Lines

    @extend_schema(
        operation_id="requests_export",
        parameters=[RequestsApi.FilterSerializer, TENANT_PARAMETER],
        responses={(200, "text/csv"): str, (200, "application/x-ndjson"): str},
    )
    def get(self, request: Request, fmt: str) -> StreamingHttpResponse:
        """The filtered request log as CSV (`requests/export.csv`) or JSON Lines
        (`requests/export.jsonl`), streamed: every request, not a page."""
        if fmt not in ("csv", "jsonl"):
            raise exceptions.NotFound("Exports are csv or jsonl.")
        tenant = tenant_for(request)
        records = selectors.requests_search(tenant=tenant, filters=request_filter(request, tenant))
        return exports.requests_response(records, fmt, f"{tenant.name}-requests.{fmt}")


def _period(start, end) -> selectors.DateRange:
    try:
        return selectors.DateRange.build(start, end)
    except ValueError as err:
        raise exceptions.ValidationError({"non_field_errors": [str(err)]}) from None


@extend_schema_serializer(component_name="ApiKey")
class KeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    prefix = serializers.CharField()
    name = serializers.CharField()
    allowed_models = serializers.SerializerMethodField(
        help_text="Models the key is limited to (empty: whatever the tenant may use)"
    )
    allow_debug = serializers.BooleanField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    rpm = serializers.IntegerField(allow_null=True, help_text="Requests per minute")
    tpm = serializers.IntegerField(allow_null=True, help_text="Tokens per minute")
    budget_usd = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    budget_period = serializers.CharField()
    rotated_at = serializers.DateTimeField(allow_null=True)
    previous_prefix = serializers.CharField(
        help_text="The secret a rotation replaced (empty: none)"
    )
    previous_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When the replaced secret stops working"
    )

    def get_allowed_models(self, key: ApiKey) -> list[str]:
        return [model.name for model in key.allowed_models.all()]


class LimitsInput(serializers.Serializer):
    """A key's or tenant's limits (accounts.services.limits_check); null: no limit."""

    rpm = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10**9)
    tpm = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10**12)
    budget_usd = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, allow_null=True, min_value=0
    )
    budget_period = serializers.ChoiceField(
        choices=["daily", "monthly"], required=False, default="monthly"
    )


class KeyCreateInput(StrictSerializer, LimitsInput):
    name = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    expires_in_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=3650
    )
    models = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        max_length=500,
        help_text="Limit the key to these models (default: whatever the tenant may use)",
    )


class KeysApi(TenantApi):
    InputSerializer = KeyCreateInput

    @extend_schema_serializer(component_name="ApiKeyCreated")
    class CreatedSerializer(KeyOutputSerializer):
        secret = serializers.CharField(help_text="The key itself: shown in this response only")

    @extend_schema(
        operation_id="keys_list",
        parameters=[TENANT_PARAMETER],
        responses=KeyOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """The tenant's keys, newest first (secrets are never shown again)."""
        tenant = tenant_for(request)
        check_can_view_keys(request, tenant)
        keys = tenant.api_keys.prefetch_related(
            Prefetch("allowed_models", queryset=Model.objects.only("name"))
        ).order_by("-created_at", "-id")
        return self.paginated(keys, KeyOutputSerializer)

    @extend_schema(
        operation_id="keys_create",
        parameters=[TENANT_PARAMETER],
        request=InputSerializer,
        responses={201: CreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        """Create a key (tenant owners and admins, signed in). The secret is in this answer only."""
        tenant = tenant_for(request)
        check_can_write_keys(request, tenant, create=True)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = api_key_create(tenant=tenant, **data.validated_data)
        key.secret = secret
        response = Response(self.CreatedSerializer(key).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class KeyDetailApi(TenantApi):
    @extend_schema(
        operation_id="keys_retrieve",
        parameters=[TENANT_PARAMETER],
        responses=KeyOutputSerializer,
    )
    def get(self, request: Request, key_id: int) -> Response:
        tenant = tenant_for(request)
        check_can_view_keys(request, tenant)
        return Response(KeyOutputSerializer(key_for(tenant, key_id)).data)


class KeyRevokeApi(TenantApi):
    @extend_schema(
        operation_id="keys_revoke",
        parameters=[TENANT_PARAMETER],
        request=None,
        responses=KeyOutputSerializer,
    )
    def post(self, request: Request, key_id: int) -> Response:
        """Revoke a key (idempotent); it stops working within seconds on every replica."""
        tenant = tenant_for(request)
        check_can_view_keys(request, tenant)
        key = key_for(tenant, key_id)
        check_can_write_keys(request, tenant, create=False)
        no_body(request)
        return Response(KeyOutputSerializer(api_key_revoke(key=key)).data)
