"""Who may see and manage which tenant: the one place the dashboards and the REST API ask.

Members see their tenants; owners and admins also create and revoke its keys; platform
admins (`is_staff`) see and manage every tenant. A tenant someone may not see does not
exist for them: callers turn `Tenant.DoesNotExist` into a 404, never a 403.
"""

from __future__ import annotations

from django.core.validators import slug_re
from django.db.models import QuerySet

from accounts.models import Membership, Tenant

KEY_MANAGER_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN})


def tenants_visible(*, user) -> QuerySet[Tenant]:
    """The tenants this person may look at (every tenant for platform admins)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        return Tenant.objects.none()
    if user.is_staff:
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
    if not user.pk:
        return None
    return (
        Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True).first()
    )


def can_manage_keys(*, user, tenant: Tenant) -> bool:
    """Owners, admins and platform admins create and revoke a tenant's keys; viewers don't."""
    if not getattr(user, "pk", None):
        return False
    return bool(user.is_staff) or role_in(user=user, tenant=tenant) in KEY_MANAGER_ROLES
