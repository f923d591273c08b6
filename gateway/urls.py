"""URLs served by Django's own request cycle (admin, dashboards, REST API).

The `/v1` gateway API does not go through here: `gateway/asgi.py` routes it to Channels
consumers so the hot path never enters Django's synchronous machinery.
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("gateway.rest.urls")),
    path("", include("gateway.dashboard.urls")),
]
