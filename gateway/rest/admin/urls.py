"""Admin REST API URLs, mounted at `/api/v1/admin/` (see gateway/rest/admin/access.py for who
may call what)."""

from django.urls import path

from gateway.rest.admin import catalog, keys, tenants

providers_list, provider_detail = catalog.catalog_views(catalog.Providers, "providers")
models_list, model_detail = catalog.catalog_views(catalog.Models, "models")
routes_list, route_detail = catalog.catalog_views(catalog.Routes, "routes")
aliases_list, alias_detail = catalog.catalog_views(catalog.Aliases, "aliases")

TENANT = "tenants/<slug:tenant>"

urlpatterns = [
    path("tenants", tenants.TenantsApi.as_view(), name="admin-tenants"),
    path(TENANT, tenants.TenantDetailApi.as_view(), name="admin-tenant"),
    path(f"{TENANT}/members", tenants.MembersApi.as_view(), name="admin-members"),
    path(
        f"{TENANT}/members/<int:member_id>",
        tenants.MemberDetailApi.as_view(),
        name="admin-member",
    ),
    path(f"{TENANT}/invitations", tenants.InvitationsApi.as_view(), name="admin-invitations"),
    path(
        f"{TENANT}/invitations/<int:invitation_id>",
        tenants.InvitationDetailApi.as_view(),
        name="admin-invitation",
    ),
    path(f"{TENANT}/keys", keys.KeysApi.as_view(), name="admin-keys"),
    path(f"{TENANT}/keys/<int:key_id>", keys.KeyDetailApi.as_view(), name="admin-key"),
    path(
        f"{TENANT}/keys/<int:key_id>/rotate", keys.KeyRotateApi.as_view(), name="admin-key-rotate"
    ),
    path(
        f"{TENANT}/keys/<int:key_id>/revoke", keys.KeyRevokeApi.as_view(), name="admin-key-revoke"
    ),
    path(f"{TENANT}/usage", keys.TenantUsageApi.as_view(), name="admin-usage"),
    path("providers", providers_list, name="admin-providers"),
    path("providers/<slug:ref>", provider_detail, name="admin-provider"),
    path("models", models_list, name="admin-models"),
    path("models/<path:ref>", model_detail, name="admin-model"),
    path("routes", routes_list, name="admin-routes"),
    path("routes/<int:ref>", route_detail, name="admin-route"),
    path("aliases", aliases_list, name="admin-aliases"),
    path("aliases/<path:ref>", alias_detail, name="admin-alias"),
]
