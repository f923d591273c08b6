"""The members page: who is in a tenant with which role; its owners add people, change roles
and remove people (`accounts/access.py`), through `accounts.services`.

As on every page, another tenant and its memberships are 404; a member who may not manage
members gets 403 on every write. Removal needs the confirmation page's explicit confirm; a GET
never changes anything.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import access
from accounts.models import Membership, Tenant
from accounts.services import (
    ServiceError,
    membership_add,
    membership_remove,
    membership_set_role,
)
from gateway.dashboard import selectors
from gateway.dashboard.forms import MemberAddForm, MemberRoleForm
from gateway.dashboard.views import _context, _tenant_or_404

CONFIRM = "remove"


def _members_tenant(request: HttpRequest, name: str) -> Tenant:
    tenant = _tenant_or_404(request, name)
    if not access.can_view_members(user=request.user, tenant=tenant):
        raise PermissionDenied("You may not see this tenant's members.")
    return tenant


def _check_may(request: HttpRequest, tenant: Tenant, action: str) -> None:
    if not access.can_manage_members(user=request.user, tenant=tenant, action=action):
        raise PermissionDenied("Only the tenant's owners manage its members.")


def _membership_or_404(tenant: Tenant, membership_id: int) -> Membership:
    try:
        return selectors.membership_get(tenant=tenant, membership_id=membership_id)
    except Membership.DoesNotExist:
        raise Http404("No such member") from None


def _members_page(
    request: HttpRequest, tenant: Tenant, add_form: MemberAddForm | None = None, status=200
) -> HttpResponse:
    may = {
        a: access.can_manage_members(user=request.user, tenant=tenant, action=a)
        for a in access.MEMBER_ACTIONS
    }
    if add_form is None and may["add"]:
        add_form = MemberAddForm()
    members = [
        (m, MemberRoleForm(initial={"role": m.role}, prefix=f"m{m.pk}") if may["change"] else None)
        for m in selectors.tenant_members(tenant=tenant)
    ]
    context = _context(
        request, tenant, members=members, add_form=add_form, may_remove=may["delete"]
    )
    return render(request, "dashboard/members.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def members(request: HttpRequest, tenant: str) -> HttpResponse:
    """The tenant's members; its owners add an existing account here (POST)."""
    tenant_obj = _members_tenant(request, tenant)
    if request.method == "GET":
        return _members_page(request, tenant_obj)
    _check_may(request, tenant_obj, "add")
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _members_page(request, tenant_obj, form, status=400)
    try:
        added = membership_add(
            tenant=tenant_obj, identifier=form.cleaned_data["user"], role=form.cleaned_data["role"]
        )
    except ServiceError as err:
        form.add_error("user", str(err))
        return _members_page(request, tenant_obj, form, status=400)
    messages.success(request, f"{added.user.get_username()} added as {added.role}.")
    return redirect("dashboard:members", tenant=tenant_obj.name)


@require_POST
@login_required
def member_role(request: HttpRequest, tenant: str, membership_id: int) -> HttpResponse:
    tenant_obj = _members_tenant(request, tenant)
    membership = _membership_or_404(tenant_obj, membership_id)
    _check_may(request, tenant_obj, "change")
    form = MemberRoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, "Choose one of the roles: owner, admin or viewer.")
        return redirect("dashboard:members", tenant=tenant_obj.name)
    name = membership.user.get_username()
    try:
        changed = membership_set_role(membership=membership, role=form.cleaned_data["role"])
    except ServiceError as err:
        messages.error(request, f"{name}: {err}.")
        return redirect("dashboard:members", tenant=tenant_obj.name)
    if changed:
        messages.success(request, f"{name} is now {membership.role}.")
    return redirect("dashboard:members", tenant=tenant_obj.name)


@require_http_methods(["GET", "POST"])
@login_required
def member_remove(request: HttpRequest, tenant: str, membership_id: int) -> HttpResponse:
    """GET (or a POST without the confirm) shows what removing means; the confirmed POST does it."""
    tenant_obj = _members_tenant(request, tenant)
    membership = _membership_or_404(tenant_obj, membership_id)
    _check_may(request, tenant_obj, "delete")
    if request.method == "POST" and request.POST.get("confirm") == CONFIRM:
        name = membership.user.get_username()
        try:
            membership_remove(membership=membership)
        except ServiceError as err:
            messages.error(request, f"{name}: {err}.")
            return redirect("dashboard:members", tenant=tenant_obj.name)
        messages.success(request, f"{name} removed from {tenant_obj.name}.")
        if not access.tenants_visible(user=request.user).filter(pk=tenant_obj.pk).exists():
            return redirect("dashboard:home")  # removed themselves
        return redirect("dashboard:members", tenant=tenant_obj.name)
    context = _context(request, tenant_obj, membership=membership, confirm=CONFIRM)
    return render(request, "dashboard/member_remove.html", context)
