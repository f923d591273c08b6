"""REST API URLs, mounted at `/api/v1/` (no trailing slashes, like `/v1/messages`)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from gateway.rest import apis, platform_apis
from gateway.rest.schema import SCHEMA_SETTINGS

app_name = "rest"

urlpatterns = [
    path("usage", apis.UsageApi.as_view(), name="usage"),
    path("requests", apis.RequestsApi.as_view(), name="requests"),
    path("requests/export.<str:fmt>", apis.RequestsExportApi.as_view(), name="requests-export"),
    path("requests/<str:request_id>", apis.RequestDetailApi.as_view(), name="request"),
    path("keys", apis.KeysApi.as_view(), name="keys"),
    path("keys/<int:key_id>", apis.KeyDetailApi.as_view(), name="key"),
    path("keys/<int:key_id>/revoke", apis.KeyRevokeApi.as_view(), name="key-revoke"),
    path("platform/usage", platform_apis.PlatformUsageApi.as_view(), name="platform-usage"),
    # The schema describes the API, not anyone's data, so it is public (AllowAny by default).
    path("schema", SpectacularAPIView.as_view(custom_settings=SCHEMA_SETTINGS), name="schema"),
    # The documentation UIs load their scripts from this server (drf-spectacular-sidecar).
    path(
        "docs",
        SpectacularSwaggerView.as_view(url_name="rest:schema", title=SCHEMA_SETTINGS["TITLE"]),
        name="docs",
    ),
    path(
        "redoc",
        SpectacularRedocView.as_view(
            url_name="rest:schema",
            title=SCHEMA_SETTINGS["TITLE"],
            template_name="rest/redoc.html",  # without drf-spectacular's Google Fonts links
        ),
        name="redoc",
    ),
    path("admin/", include("gateway.rest.admin.urls")),
]
