"""Who may do what on the admin REST API: service tokens and dashboard sessions.

- A platform token (no tenant) may do everything: every tenant, the catalog (providers,
  models, routes, aliases).
- A tenant token reaches its own tenant only: it reads it and changes its preferences
  (`TENANT_TOKEN_FIELDS`; its limits, model allow-list and state are the platform's), and
  manages its members, keys and usage. Other tenants do not exist for it (404); creating or deleting
  tenants and the catalog are refused (403).
- A session follows `accounts.access`, the dashboards' rules: members see their tenant; owners
  and admins manage keys; owners manage members. Platform staff act by the Django
  permissions the admin grants them (`accounts.add_tenant`, `providers.change_model`...).

A tenant the caller may not see is a 404, never a 403, as in the rest of the API.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.request import Request

from accounts import access
from accounts.authentication import ServiceTokenPrincipal
from accounts.models import Membership, Tenant

MEMBER_MANAGER_ROLES = frozenset({Membership.Role.OWNER})
# What a tenant token may change of its own tenant: not what the platform decides (limits,
# budget, model allow-list, whether it is active), as the dashboards leave those to the admin.
TENANT_TOKEN_FIELDS = frozenset({"display_name", "default_model", "provider_defaults"})
CATALOG_TYPES = ("provider", "model", "route", "modelalias")


class Caller:
    """The caller of one admin API request, and the checks every view asks it."""

    def __init__(self, request: Request):
        self.user = request.user
        self.token = self.user if isinstance(self.user, ServiceTokenPrincipal) else None

    @property
    def is_platform_token(self) -> bool:
        return self.token is not None and self.token.is_platform

    @property
    def is_tenant_token(self) -> bool:
        return self.token is not None and not self.token.is_platform

    def tenants(self) -> QuerySet[Tenant]:
        if self.is_platform_token:
            return Tenant.objects.all()
        if self.is_tenant_token:
            return Tenant.objects.filter(pk=self.token.tenant_id)
        return access.tenants_visible(user=self.user)

    def tenant(self, name: str) -> Tenant:
        """The tenant named, or 404 when it is missing or not the caller's to see."""
        if len(name) > 64:
            raise exceptions.NotFound("No such tenant.")
        try:
            return self.tenants().get(name=name)
        except Tenant.DoesNotExist:
            raise exceptions.NotFound("No such tenant.") from None

    def _staff(self, *permissions: str) -> bool:
        return self.token is None and access.staff_may(self.user, permissions)

    def _role(self, tenant: Tenant) -> str | None:
        return None if self.token is not None else access.role_in(user=self.user, tenant=tenant)

    # --- Tenants ---

    def require_platform(self, *permissions: str) -> None:
        """Platform-wide actions: a platform token, or staff holding one of `permissions`."""
        if not (self.is_platform_token or self._staff(*permissions)):
            raise exceptions.PermissionDenied("Only platform operators may do this.")

    def require_tenant_change(self, fields: set[str]) -> None:
        """Changing these fields of a tenant the caller sees."""
        if self.is_platform_token or self._staff("accounts.change_tenant"):
            return
        if self.is_tenant_token:
            refused = sorted(fields - TENANT_TOKEN_FIELDS)
            if not refused:
                return
            raise exceptions.PermissionDenied(
                f"Only platform operators change a tenant's {', '.join(refused)}."
            )
        raise exceptions.PermissionDenied("Only platform operators change tenants.")

    # --- Members ---

    def require_members_view(self, tenant: Tenant) -> None:
        if self.token is not None or self._role(tenant) is not None:
            return
        if not self._staff("accounts.view_membership", "accounts.change_membership"):
            raise exceptions.PermissionDenied("You may not see this tenant's members.")

    def require_members_change(self, tenant: Tenant) -> None:
        if self.token is not None or self._role(tenant) in MEMBER_MANAGER_ROLES:
            return
        if not self._staff("accounts.change_membership"):
            raise exceptions.PermissionDenied("Only the tenant's owners manage its members.")

    # --- Keys and usage ---

    def require_keys(self, tenant: Tenant, *, write: bool = False, create: bool = False) -> None:
        if self.token is not None:
            return
        if create:
            allowed = access.can_create_keys(user=self.user, tenant=tenant)
        elif write:
            allowed = access.can_change_keys(user=self.user, tenant=tenant)
        else:
            allowed = access.can_view_keys(user=self.user, tenant=tenant)
        if not allowed:
            raise exceptions.PermissionDenied("You may not manage this tenant's keys.")

    # --- Catalog ---

    def require_catalog(self, model_name: str, action: str) -> None:
        """`action` is view, add, change or delete, on providers.<model_name>."""
        permissions = [f"providers.{action}_{model_name}"]
        if action == "view":
            permissions.append(f"providers.change_{model_name}")
        if self.is_platform_token or self._staff(*permissions):
            return
        raise exceptions.PermissionDenied("Only platform operators manage the catalog.")


def caller(request: Request) -> Caller:
    return Caller(request)
