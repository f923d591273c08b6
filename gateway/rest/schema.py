"""OpenAPI details drf-spectacular cannot guess: how tenant keys authenticate, and the title."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

SCHEMA_SETTINGS = {
    "TITLE": "Tollgate REST API",
    "DESCRIPTION": (
        "A tenant's usage, requests and API keys. Authenticate with a tenant key "
        "(`x-api-key` or `Authorization: Bearer`, read-only) or a dashboard session."
    ),
    "VERSION": "1",
}


class TenantKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TenantKeyAuthentication"
    name = "tenantKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "x-api-key"}
