"""Who may see and manage which tenant: the one place the dashboards and the REST API ask.

Members see their tenants; owners and admins also create, change and revoke its keys.
Platform staff (`is_staff`) reach the tenants they are not members of only as far as the
admin lets them, by the same Django permissions (superusers hold them all):

- `accounts.view_tenant` (or `change_tenant`): see every tenant, its dashboard, usage and requests,
  and the platform usage view across tenants;
- `accounts.view_apikey` (or `change_apikey`): list a tenant's keys;
- `accounts.add_apikey`: create keys; `accounts.change_apikey`: revoke them, change their limits.

A tenant someone may not see does not exist for them: callers turn `Tenant.DoesNotExist` into
a 404, never a 403. A visible tenant whose keys someone may not touch is a 403.
"""

from __future__ import annotations

from django.core.validators import slug_re
from django.db.models import QuerySet

from accounts.models import Membership, Tenant

KEY_MANAGER_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN})
SEE_TENANTS = ("accounts.view_tenant", "accounts.change_tenant")
LIST_KEYS = ("accounts.view_apikey", "accounts.change_apikey")
CREATE_KEYS = ("accounts.add_apikey",)
CHANGE_KEYS = ("accounts.change_apikey",)


def staff_may(user, permissions: tuple[str, ...]) -> bool:
    """A platform admin holding one of these permissions, as the admin would check it."""
    return bool(getattr(user, "is_staff", False)) and any(user.has_perm(p) for p in permissions)


def tenants_visible(*, user) -> QuerySet[Tenant]:
    """The tenants this person may look at: their own, or every one for staff who may."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        return Tenant.objects.none()
    if staff_may(user, SEE_TENANTS):
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user)


def tenant_visible_get(*, user, name: str) -> Tenant:
    """The tenant named, or Tenant.DoesNotExist when it is missing or not theirs to see."""
    if len(name) > 64 or not slug_re.match(name):  # no tenant has such a name: skip the query
        raise Tenant.DoesNotExist(f"no tenant named {name!r}")
    try:
        return tenants_visible(user=user).get(name=name)
    except Tenant.DoesNotExist:
        raise Tenant.DoesNotExist(f"no tenant named {name!r}") from None


def tenant_default(*, user) -> Tenant | None:
    """The tenant to show when none is named: the only one the person is a member of."""
    tenants = list(Tenant.objects.filter(memberships__user=user)[:2]) if user.pk else []
    return tenants[0] if len(tenants) == 1 else None


def role_in(*, user, tenant: Tenant) -> str | None:
    """The person's role in the tenant ("owner", "admin", "viewer"), or None."""
    if not getattr(user, "pk", None):
        return None
    return (
        Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True).first()
    )


def can_view_keys(*, user, tenant: Tenant) -> bool:
    """Every member lists the tenant's keys; staff need the admin's right to see keys."""
    return role_in(user=user, tenant=tenant) is not None or staff_may(user, LIST_KEYS)


def can_create_keys(*, user, tenant: Tenant) -> bool:
    """Owners and admins create keys; staff need `accounts.add_apikey`."""
    return role_in(user=user, tenant=tenant) in KEY_MANAGER_ROLES or staff_may(user, CREATE_KEYS)


def can_change_keys(*, user, tenant: Tenant) -> bool:
    """Owners and admins revoke keys and set their limits; staff need `accounts.change_apikey`."""
    return role_in(user=user, tenant=tenant) in KEY_MANAGER_ROLES or staff_may(user, CHANGE_KEYS)


def can_view_platform_usage(*, user) -> bool:
    """The usage of every tenant at once: staff who may see every tenant."""
    return staff_may(user, SEE_TENANTS)
