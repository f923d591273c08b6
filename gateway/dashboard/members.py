"""The members page: who is in a tenant with which role; its owners add people, change roles,
remove people, and invite an email address (`accounts/access.py`), through `accounts.services`.
The invitee accepts at `/invite/<token>/`, signed in with the invited email's account.

As on every page, another tenant and its memberships are 404; a member who may not manage
members gets 403 on every write. Removal needs the confirmation page's explicit confirm; a GET
never changes anything.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import access
from accounts.models import Invitation, Membership, Tenant
from accounts.services import (
    MEMBER_NOT_FOUND,
    InvitationRefused,
    ServiceError,
    invitation_by_token,
    invitation_check,
    invitations_pending,
    membership_add,
    membership_remove,
    membership_set_role,
)
from accounts.services import (
    invitation_accept as accept,
)
from accounts.services import invitation_create as create_invitation
from accounts.services import invitation_revoke as revoke_invitation
from gateway import invitations
from gateway.dashboard import selectors
from gateway.dashboard.forms import InviteForm, MemberAddForm, MemberRoleForm
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
    request: HttpRequest,
    tenant: Tenant,
    add_form: MemberAddForm | None = None,
    status=200,
    invite_form: InviteForm | None = None,
) -> HttpResponse:
    may = {
        a: access.can_manage_members(user=request.user, tenant=tenant, action=a)
        for a in access.MEMBER_ACTIONS
    }
    if add_form is None and may["add"]:
        add_form = MemberAddForm()
    if invite_form is None and may["add"]:
        invite_form = InviteForm()
    members = [
        (m, MemberRoleForm(initial={"role": m.role}, prefix=f"m{m.pk}") if may["change"] else None)
        for m in selectors.tenant_members(tenant=tenant)
    ]
    context = _context(
        request,
        tenant,
        members=members,
        add_form=add_form,
        may_remove=may["delete"],
        invite_form=invite_form,
        invitations=list(invitations_pending(tenant=tenant)) if may["add"] else [],
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
    role = {"role": form.cleaned_data["role"]}
    try:
        added = membership_add(
            tenant=tenant_obj, identifier=form.cleaned_data["user"], role=form.cleaned_data["role"]
        )
    except ServiceError as err:
        invite = None
        if str(err) == MEMBER_NOT_FOUND and "@" in form.cleaned_data["user"]:
            err = (
                f"{err}. Or invite them by email below: the link waits 7 days for an account "
                "with this email address to accept it."
            )
            invite = InviteForm(initial={"email": form.cleaned_data["user"].strip(), **role})
        form.add_error("user", str(err))
        return _members_page(request, tenant_obj, form, status=400, invite_form=invite)
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


# --- Invitations -----------------------------------------------------------------------------


@require_POST
@login_required
def invitation_create(request: HttpRequest, tenant: str) -> HttpResponse:
    """An owner invites an email address with a role; the link goes by email."""
    tenant_obj = _members_tenant(request, tenant)
    _check_may(request, tenant_obj, "add")
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _members_page(request, tenant_obj, status=400, invite_form=form)
    try:
        with transaction.atomic():
            invitation, token = create_invitation(
                tenant=tenant_obj,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
            invitations.send_invitation(request=request, invitation=invitation, token=token)
    except ServiceError as err:
        form.add_error("email", str(err))
        return _members_page(request, tenant_obj, status=400, invite_form=form)
    messages.success(
        request,
        f"Invitation sent to {invitation.email} as {invitation.role}; "
        f"it expires on {invitation.expires_at:%Y-%m-%d}.",
    )
    return redirect("dashboard:members", tenant=tenant_obj.name)


@require_POST
@login_required
def invitation_revoke(request: HttpRequest, tenant: str, invitation_id: int) -> HttpResponse:
    """Withdraw a pending invitation (the button's form is the clear, explicit action)."""
    tenant_obj = _members_tenant(request, tenant)
    _check_may(request, tenant_obj, "add")
    invitation = Invitation.objects.filter(tenant=tenant_obj, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation")
    if request.POST.get("confirm") != CONFIRM_REVOKE:
        messages.error(request, "Confirm to withdraw the invitation.")
    elif revoke_invitation(invitation=invitation):
        messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("dashboard:members", tenant=tenant_obj.name)


CONFIRM_REVOKE = "revoke"


def _invite_refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    context = {"message": message, "status": status}
    response = render(request, "dashboard/invite_refused.html", context, status=status)
    # Django's `django.request` logger would write "Forbidden: /invite/<token>/" for a 4xx: the
    # path holds the token, which is never logged. The refusal is marked as logged already.
    response._has_been_logged = True
    return response


@require_http_methods(["GET", "POST"])
@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the tenant and role invited to; POST accepts. An unknown token is 404 and
    names no tenant; a known one this account cannot accept (another email, expired, withdrawn,
    used) is 403."""
    try:
        invitation = invitation_by_token(token)
    except ServiceError as err:
        return _invite_refused(request, f"{str(err).capitalize()}.", 404)
    try:
        if request.method == "POST":
            accept(token=token, user=request.user)
        else:
            invitation_check(invitation=invitation, user=request.user)
    except InvitationRefused as err:
        return _invite_refused(request, f"{str(err).capitalize()}.", 403)
    tenant_obj = invitation.tenant
    if request.method == "POST":
        name = tenant_obj.display_name or tenant_obj.name
        messages.success(request, f"Welcome to {name}: you are {invitation.role}.")
        return redirect("dashboard:overview", tenant=tenant_obj.name)
    context = {"invitation": invitation, "invited_to": tenant_obj}
    return render(request, "dashboard/invite_accept.html", context)
