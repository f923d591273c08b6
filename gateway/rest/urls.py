"""REST API URLs, mounted at `/api/v1/` (no trailing slashes, like `/v1/messages`)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from gateway.rest import apis, platform_apis
from gateway.rest.schema import SCHEMA_SETTINGS

app_name = "rest"

urlpatterns = [
    path("usage", apis.UsageApi.as_view(), name="usage"),
    path("requests", apis.RequestsApi.as_view(), name="requests"),
    path("keys", apis.KeysApi.as_view(), name="keys"),
    path("keys/<int:key_id>", apis.KeyDetailApi.as_view(), name="key"),
    path("keys/<int:key_id>/revoke", apis.KeyRevokeApi.as_view(), name="key-revoke"),
    path("platform/usage", platform_apis.PlatformUsageApi.as_view(), name="platform-usage"),
    # The schema describes the API, not anyone's data, so it is public (AllowAny by default).
    path("schema", SpectacularAPIView.as_view(custom_settings=SCHEMA_SETTINGS), name="schema"),
]
