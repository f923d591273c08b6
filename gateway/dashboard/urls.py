"""Dashboard URLs, mounted at `/`: sign-in, the tenant picker, each tenant's pages, and the
platform usage view for staff."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from gateway.dashboard import members, views

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
    path("dashboard/<slug:tenant>/keys/<int:key_id>/models/", views.key_models, name="key-models"),
    path("dashboard/<slug:tenant>/keys/<int:key_id>/rotate/", views.key_rotate, name="key-rotate"),
    path("dashboard/<slug:tenant>/members/", members.members, name="members"),
    path(
        "dashboard/<slug:tenant>/members/<int:membership_id>/role/",
        members.member_role,
        name="member-role",
    ),
    path(
        "dashboard/<slug:tenant>/members/<int:membership_id>/remove/",
        members.member_remove,
        name="member-remove",
    ),
    path(
        "dashboard/<slug:tenant>/members/invite/", members.invitation_create, name="member-invite"
    ),
    path(
        "dashboard/<slug:tenant>/invitations/<int:invitation_id>/revoke/",
        members.invitation_revoke,
        name="invitation-revoke",
    ),
    # Outside /dashboard/<tenant>/: the link names no tenant, only its token.
    path("invite/<str:token>/", members.invitation_accept, name="invite"),
    path("dashboard/<slug:tenant>/export.csv", views.export_csv, name="export"),
]
