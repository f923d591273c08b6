"""Standing people for the dashboard and REST API tests: the tenant's owner, admin and viewer,
an outsider who owns another tenant, a platform admin (staff with the admin's permissions on
tenants and keys) who belongs to none, and a staff member without any permission."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission

from accounts.models import ApiKey, Membership, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory, make_key


@dataclass
class People:
    tenant: Tenant  # acme
    other: Tenant  # globex, the outsider's
    owner: object
    admin: object
    viewer: object
    outsider: object
    staff: object
    bare_staff: object  # is_staff, no permission: the admin refuses it every page
    key: ApiKey  # acme's, `.secret` set
    other_key: ApiKey  # globex's, `.secret` set


PLATFORM_ADMIN_PERMISSIONS = ("view_tenant", "view_apikey", "add_apikey", "change_apikey")


def platform_admin(username: str, permissions=PLATFORM_ADMIN_PERMISSIONS):
    """Staff granted these accounts.* permissions, as an operator grants them in the admin."""
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="accounts", codename__in=permissions)
    )
    return user


@pytest.fixture
def people(db, settings) -> People:
    # Six users a test: the real hasher's deliberate slowness would dominate the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    acme = TenantFactory(name="acme", display_name="Acme Corp")
    globex = TenantFactory(name="globex", display_name="Globex")

    def member(username: str, tenant: Tenant, role: str):
        user = UserFactory(username=username)
        MembershipFactory(user=user, tenant=tenant, role=role)
        return user

    return People(
        tenant=acme,
        other=globex,
        owner=member("olivia", acme, Membership.Role.OWNER),
        admin=member("adam", acme, Membership.Role.ADMIN),
        viewer=member("victor", acme, Membership.Role.VIEWER),
        outsider=member("oscar", globex, Membership.Role.OWNER),
        staff=platform_admin("stella"),
        bare_staff=UserFactory(username="barry", is_staff=True),
        key=make_key(acme, name="ci")[0],
        other_key=make_key(globex, name="prod")[0],
    )
