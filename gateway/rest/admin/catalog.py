"""Admin API: the catalog (providers, models with their prices, routes, aliases), for platform
tokens and staff holding the admin's `providers.*` permissions.

Each resource is one small table of serializers and a lookup; writes set the fields given, let
the model validate itself (`full_clean`: field errors as a 400), and save through
providers.services (`catalog_save`, `catalog_delete`, `alias_create`), as the admin and
`gateway_apply` do: audited, and announced to every replica once committed. A provider's
credential and extra header values are write-only: answers say whether they are set, never
what they are.
"""

from __future__ import annotations

from django.core.validators import URLValidator
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core import redaction
from gateway.rest.admin.base import AdminApi, read
from gateway.rest.input import StrictInput, no_body
from providers import aliases, kinds
from providers.models import Model, ModelAlias, Provider, Route
from providers.services import (
    alias_create,
    catalog_delete,
    catalog_save,
    headers_problem,
    model_name_check,
)

Price = dict(max_digits=12, decimal_places=6, min_value=0)
Seconds = dict(min_value=0.1, max_value=3600)


# --- Providers ---------------------------------------------------------------------------------


@extend_schema_serializer(component_name="AdminProvider")
class ProviderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    base_url = serializers.CharField()
    options = serializers.DictField()
    enabled = serializers.BooleanField()
    connect_timeout = serializers.FloatField()
    first_byte_timeout = serializers.FloatField()
    idle_timeout = serializers.FloatField()
    credential_set = serializers.BooleanField(source="has_credential")
    header_names = serializers.SerializerMethodField(help_text="Values are never shown")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_header_names(self, provider: Provider) -> list[str]:
        try:
            return sorted(provider.extra_headers)
        except ValueError:  # encrypted with a key no longer configured
            return []

    def to_representation(self, provider: Provider) -> dict:
        """The provider's credential values are redacted wherever else they appear (a URL, its
        options), by the one redaction rule, as in the audit log."""
        data = super().to_representation(provider)
        try:
            secrets = redaction.Secrets([provider.credential, *provider.extra_headers.values()])
        except ValueError:
            return data
        data["base_url"] = redaction.scrub_json(data["base_url"], secrets)
        data["options"] = redaction.scrub_json(data["options"], secrets)
        return data


class ProviderChangeInput(StrictInput, serializers.Serializer):
    kind = serializers.ChoiceField(choices=kinds.choices(), required=False)
    base_url = serializers.URLField(
        max_length=500,
        required=False,
        allow_blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
    )
    options = serializers.DictField(required=False)
    enabled = serializers.BooleanField(required=False)
    connect_timeout = serializers.FloatField(required=False, **Seconds)
    first_byte_timeout = serializers.FloatField(required=False, **Seconds)
    idle_timeout = serializers.FloatField(required=False, **Seconds)
    credential = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=8192,
        help_text="The upstream API key; write-only. Empty string: remove it.",
    )
    extra_headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        write_only=True,
        required=False,
        help_text="Replaces every extra header sent upstream; write-only. {}: remove them.",
    )

    def validate_extra_headers(self, headers: dict) -> dict:
        if (problem := headers_problem(headers)) is not None:
            raise serializers.ValidationError(problem)
        return headers


class ProviderCreateInput(ProviderChangeInput):
    name = serializers.SlugField(max_length=64)
    kind = serializers.ChoiceField(choices=kinds.choices())


def provider_save(row: Provider, data: dict) -> None:
    credential = data.pop("credential", None)
    headers = data.pop("extra_headers", None)
    _set(row, data, exclude=["credential_encrypted", "extra_headers_encrypted"])
    catalog_save(row=row, credential=credential, extra_headers=headers)


# --- Models (and their prices) -----------------------------------------------------------------


@extend_schema_serializer(component_name="AdminModel")
class ModelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    display_name = serializers.CharField()
    enabled = serializers.BooleanField()
    max_tokens = serializers.IntegerField(allow_null=True)
    routing = serializers.CharField()
    price_input = serializers.DecimalField(max_digits=12, decimal_places=6)
    price_output = serializers.DecimalField(max_digits=12, decimal_places=6)
    price_cache_read = serializers.DecimalField(max_digits=12, decimal_places=6)
    price_cache_write = serializers.DecimalField(max_digits=12, decimal_places=6)
    aliases = serializers.SerializerMethodField(help_text="Its aliases and patterns")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_aliases(self, model: Model) -> list[str]:
        return sorted(alias.name for alias in model.aliases.all())


class ModelChangeInput(StrictInput, serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    max_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10**9
    )
    routing = serializers.ChoiceField(choices=Model.Routing.choices, required=False)
    price_input = serializers.DecimalField(required=False, help_text="USD per MTok", **Price)
    price_output = serializers.DecimalField(required=False, help_text="USD per MTok", **Price)
    price_cache_read = serializers.DecimalField(required=False, **Price)
    price_cache_write = serializers.DecimalField(required=False, **Price)


class ModelCreateInput(ModelChangeInput):
    name = serializers.CharField(max_length=aliases.MAX_NAME_LENGTH)

    def validate_name(self, name: str) -> str:
        model_name_check(name=name)
        return name


def model_save(row: Model, data: dict) -> None:
    _set(row, data)
    catalog_save(row=row)


# --- Routes ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="AdminRoute")
class RouteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model.name")
    provider = serializers.CharField(source="provider.name")
    upstream_model = serializers.CharField()
    priority = serializers.IntegerField()
    weight = serializers.IntegerField()
    alpha = serializers.BooleanField()
    enabled = serializers.BooleanField()
    upstream_price_input = serializers.DecimalField(
        max_digits=12, decimal_places=6, allow_null=True
    )
    upstream_price_output = serializers.DecimalField(
        max_digits=12, decimal_places=6, allow_null=True
    )
    long_context_window = serializers.IntegerField(allow_null=True)
    long_context_upstream_model = serializers.CharField()


class RouteChangeInput(StrictInput, serializers.Serializer):
    upstream_model = serializers.CharField(max_length=200, required=False)
    priority = serializers.IntegerField(required=False, min_value=-1000, max_value=1000)
    weight = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    alpha = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)
    upstream_price_input = serializers.DecimalField(required=False, allow_null=True, **Price)
    upstream_price_output = serializers.DecimalField(required=False, allow_null=True, **Price)
    long_context_window = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=aliases.MAX_MILLIONS * aliases.MILLION,
    )
    long_context_upstream_model = serializers.CharField(
        max_length=200, required=False, allow_blank=True
    )


class RouteCreateInput(RouteChangeInput):
    model = serializers.SlugRelatedField(slug_field="name", queryset=Model.objects.all())
    provider = serializers.SlugRelatedField(slug_field="name", queryset=Provider.objects.all())
    upstream_model = serializers.CharField(max_length=200)


def route_save(row: Route, data: dict) -> None:
    _set(row, data)
    catalog_save(row=row)


# --- Aliases -----------------------------------------------------------------------------------


@extend_schema_serializer(component_name="AdminModelAlias")
class AliasOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    model = serializers.CharField(source="model.name")
    created_at = serializers.DateTimeField()


class AliasCreateInput(StrictInput, serializers.Serializer):
    name = serializers.CharField(
        max_length=aliases.MAX_NAME_LENGTH, help_text="An id clients send, or a pattern with *"
    )
    model = serializers.SlugRelatedField(slug_field="name", queryset=Model.objects.all())


# --- The views ---------------------------------------------------------------------------------


def _set(row, data: dict, exclude: list[str] | None = None) -> None:
    """Set the fields given, then let the model check itself (a 400 per field if not)."""
    for field, value in data.items():
        setattr(row, field, value)
    row.full_clean(exclude=exclude)


class Resource:
    """One catalog resource: its rows, how its URL names one, its serializers and its save."""

    model: type
    permission: str  # providers.<action>_<permission>
    lookup = "pk"
    queryset_related: tuple[str, ...] = ()
    output: type[serializers.Serializer]
    create_input: type[serializers.Serializer]
    change_input: type[serializers.Serializer] | None = None

    @classmethod
    def rows(cls, request: Request):
        return cls.model.objects.select_related(*cls.queryset_related)

    @staticmethod
    def save(row, data: dict) -> None:
        raise NotImplementedError

    @classmethod
    def create(cls, data: dict):
        row = cls.model()
        cls.save(row, data)
        return row


class Providers(Resource):
    model, permission, lookup = Provider, "provider", "name"
    output, create_input, change_input = ProviderOutput, ProviderCreateInput, ProviderChangeInput
    save = staticmethod(provider_save)


class Models(Resource):
    model, permission, lookup = Model, "model", "name"
    output, create_input, change_input = ModelOutput, ModelCreateInput, ModelChangeInput
    save = staticmethod(model_save)

    @classmethod
    def rows(cls, request: Request):
        return Model.objects.prefetch_related("aliases")


class Routes(Resource):
    model, permission = Route, "route"
    queryset_related = ("model", "provider")
    output, create_input, change_input = RouteOutput, RouteCreateInput, RouteChangeInput
    save = staticmethod(route_save)

    @classmethod
    def rows(cls, request: Request):
        rows = super().rows(request)
        if "model" in request.query_params:
            rows = rows.filter(model__name=request.query_params["model"][:200])
        return rows.order_by("model__name", "priority", "-weight", "id")


class Aliases(Resource):
    model, permission, lookup = ModelAlias, "modelalias", "name"
    queryset_related = ("model",)
    output, create_input = AliasOutput, AliasCreateInput

    @classmethod
    def create(cls, data: dict):
        return alias_create(model=data["model"], name=data["name"])


class CatalogListApi(AdminApi):
    resource: type[Resource]

    def get(self, request: Request) -> Response:
        self.caller().require_catalog(self.resource.permission, "view")
        return self.paginated(self.resource.rows(request), self.resource.output)

    def post(self, request: Request) -> Response:
        self.caller().require_catalog(self.resource.permission, "add")
        data = read(self.resource.create_input, request)
        with transaction.atomic():
            row = self.resource.create(data)
        row = self.resource.rows(request).get(pk=row.pk)
        return Response(self.resource.output(row).data, status=status.HTTP_201_CREATED)


class CatalogDetailApi(AdminApi):
    resource: type[Resource]

    def row(self, ref: str):
        ref = str(ref)
        if len(ref) > aliases.MAX_NAME_LENGTH:
            raise exceptions.NotFound("Not found.")
        try:
            return self.resource.rows(self.request).get(**{self.resource.lookup: ref})
        except self.resource.model.DoesNotExist:
            raise exceptions.NotFound("Not found.") from None

    def get(self, request: Request, ref: str) -> Response:
        self.caller().require_catalog(self.resource.permission, "view")
        return Response(self.resource.output(self.row(ref)).data)

    def patch(self, request: Request, ref: str) -> Response:
        """Change the fields given; the others keep their values."""
        self.caller().require_catalog(self.resource.permission, "change")
        row = self.row(ref)
        data = read(self.resource.change_input, request, partial=True)
        with transaction.atomic():
            self.resource.save(row, data)
        return Response(self.resource.output(self.resource.rows(request).get(pk=row.pk)).data)

    def delete(self, request: Request, ref: str) -> Response:
        """Delete it (a provider's or model's routes, a model's aliases go with it)."""
        self.caller().require_catalog(self.resource.permission, "delete")
        row = self.row(ref)
        no_body(request)
        catalog_delete(row=row)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _operation(method, **schema):
    """`method` as a new function described by `schema` (one per resource: extend_schema marks
    the function it decorates)."""

    def view(self, *args, **kwargs):
        return method(self, *args, **kwargs)

    view.__doc__ = method.__doc__
    return extend_schema(**schema)(view)


def catalog_views(resource: type[Resource], plural: str):
    """The list and detail views of a resource, with their OpenAPI operations."""
    output = resource.output
    lister = type(
        f"{resource.__name__}ListApi",
        (CatalogListApi,),
        {
            "resource": resource,
            "get": _operation(
                CatalogListApi.get, operation_id=f"admin_{plural}_list", responses=output(many=True)
            ),
            "post": _operation(
                CatalogListApi.post,
                operation_id=f"admin_{plural}_create",
                request=resource.create_input,
                responses={201: output},
            ),
        },
    )
    methods = {
        "resource": resource,
        "get": _operation(
            CatalogDetailApi.get, operation_id=f"admin_{plural}_retrieve", responses=output
        ),
        "delete": _operation(
            CatalogDetailApi.delete,
            operation_id=f"admin_{plural}_destroy",
            request=None,
            responses={204: None},
        ),
    }
    if resource.change_input is not None:
        methods["patch"] = _operation(
            CatalogDetailApi.patch,
            operation_id=f"admin_{plural}_update",
            request=resource.change_input,
            responses=output,
        )
    else:
        methods["http_method_names"] = ["get", "delete", "head", "options"]
    detail = type(f"{resource.__name__}DetailApi", (CatalogDetailApi,), methods)
    return lister.as_view(), detail.as_view()
