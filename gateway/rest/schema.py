"""OpenAPI details drf-spectacular cannot guess: how tenant keys and service tokens
authenticate, and the title."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

SCHEMA_SETTINGS = {
    "TITLE": "Tollgate REST API",
    "DESCRIPTION": (
        "A tenant's usage, requests and API keys: authenticate with a tenant key "
        "(`x-api-key` or `Authorization: Bearer`, read-only) or a dashboard session. "
        "The admin API under `/api/v1/admin/` (tenants, members, keys, usage, providers, "
        "models and prices, routes, aliases) takes a service token "
        "(`Authorization: Bearer tgs_...`, platform-wide or scoped to one tenant) or a "
        "dashboard session. Unknown fields in a request body are a 400."
    ),
    "VERSION": "1",
}


class TenantKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TenantKeyAuthentication"
    name = "tenantKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "x-api-key"}


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service token (`tgs_...`): `manage.py service_token create`.",
        }
