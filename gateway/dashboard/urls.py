"""Dashboard URLs, mounted at `/`: sign-in, the tenant picker, each tenant's pages, and the
platform usage view for staff."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from gateway.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:home"), name="root"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="dashboard/login.html",
            next_page="dashboard:home",
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("dashboard/", views.home, name="home"),
    # Outside /dashboard/<tenant>/ so that no tenant's name can shadow it.
    path("platform/usage/", views.platform_usage, name="platform-usage"),
    path("platform/usage.csv", views.platform_export_csv, name="platform-export"),
    path("dashboard/<slug:tenant>/", views.overview, name="overview"),
    path("dashboard/<slug:tenant>/requests/", views.requests_list, name="requests"),
    path(
        "dashboard/<slug:tenant>/requests/export.<str:fmt>",
        views.requests_export,
        name="requests-export",
    ),
    path(
        "dashboard/<slug:tenant>/requests/<str:request_id>/",
        views.request_detail,
        name="request",
    ),
    path("dashboard/<slug:tenant>/keys/", views.keys, name="keys"),
    path("dashboard/<slug:tenant>/keys/<int:key_id>/", views.key_detail, name="key"),
    path("dashboard/<slug:tenant>/keys/<int:key_id>/revoke/", views.key_revoke, name="key-revoke"),
    path("dashboard/<slug:tenant>/keys/<int:key_id>/limits/", views.key_limits, name="key-limits"),
    path("dashboard/<slug:tenant>/export.csv", views.export_csv, name="export"),
]
