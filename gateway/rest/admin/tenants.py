"""Admin API: tenants and their members. Writes go through accounts.services, which audit
them and clear every cache they affect (key policy, routing table) once committed."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch, Q
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.models import Membership, Tenant
from gateway import invitations
from gateway.rest.admin.base import AdminApi, read, secret_response
from gateway.rest.apis import LimitsInput
from gateway.rest.input import StrictInput, no_body
from providers.models import Model

LIMITS = ("rpm", "tpm", "budget_usd", "budget_period")


@extend_schema_serializer(component_name="AdminTenant")
class TenantOutput(serializers.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField()
    is_active = serializers.BooleanField()
    allowed_models = serializers.SerializerMethodField(
        help_text="Models the tenant may use (empty: every enabled model)"
    )
    default_model = serializers.CharField(source="default_model.name", allow_null=True)
    provider_defaults = serializers.DictField()
    rpm = serializers.IntegerField(allow_null=True)
    tpm = serializers.IntegerField(allow_null=True)
    budget_usd = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    budget_period = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_allowed_models(self, tenant: Tenant) -> list[str]:
        return [m.name for m in tenant.allowed_models.all()]


class TenantChangeInput(StrictInput, LimitsInput):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    models = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        allow_null=True,
        max_length=1000,
        help_text="The only models the tenant may use (null or []: every enabled model)",
    )
    default_model = serializers.CharField(max_length=128, required=False, allow_null=True)
    provider_defaults = serializers.DictField(required=False, allow_null=True)


class TenantCreateInput(TenantChangeInput):
    name = serializers.SlugField(max_length=64)


def tenants_queryset(caller):
    return (
        caller.tenants()
        .select_related("default_model")
        .prefetch_related(Prefetch("allowed_models", queryset=Model.objects.only("name")))
        .order_by("name")
    )


def tenant_change(*, tenant: Tenant, data: dict) -> None:
    """Apply the fields given (and only those) through the services, all or nothing."""
    with transaction.atomic():
        if {"display_name", "is_active", "models"} & data.keys():
            models = (
                data["models"]
                if "models" in data
                else list(tenant.allowed_models.values_list("name", flat=True))
            )
            services.tenant_update(
                tenant=tenant,
                display_name=data.get("display_name", tenant.display_name),
                is_active=data.get("is_active", tenant.is_active),
                models=models,
            )
        if set(LIMITS) & data.keys():
            limits = {f: data[f] if f in data else getattr(tenant, f) for f in LIMITS}
            services.tenant_set_limits(tenant=tenant, **limits)
        if "provider_defaults" in data:
            services.tenant_set_provider_defaults(tenant=tenant, defaults=data["provider_defaults"])
        if "default_model" in data:
            name = data["default_model"]
            model = services.models_by_name([name])[0] if name else None
            services.tenant_set_default_model(tenant=tenant, model=model)


class TenantsApi(AdminApi):
    @extend_schema(operation_id="admin_tenants_list", responses=TenantOutput(many=True))
    def get(self, request: Request) -> Response:
        """The tenants the caller may see (a tenant token: its own)."""
        return self.paginated(tenants_queryset(self.caller()), TenantOutput)

    @extend_schema(
        operation_id="admin_tenants_create",
        request=TenantCreateInput,
        responses={201: TenantOutput},
    )
    def post(self, request: Request) -> Response:
        """Create a tenant (platform tokens, staff with `accounts.add_tenant`)."""
        self.caller().require_platform("accounts.add_tenant")
        data = read(TenantCreateInput, request)
        with transaction.atomic():
            tenant = services.tenant_create(
                name=data.pop("name"),
                display_name=data.pop("display_name", ""),
                models=data.pop("models", None),
            )
            tenant_change(tenant=tenant, data=data)
        tenant = tenants_queryset(self.caller()).get(pk=tenant.pk)
        return Response(TenantOutput(tenant).data, status=status.HTTP_201_CREATED)


class TenantDetailApi(AdminApi):
    @extend_schema(operation_id="admin_tenants_retrieve", responses=TenantOutput)
    def get(self, request: Request, tenant: str) -> Response:
        row = self.caller().tenant(tenant)
        return Response(TenantOutput(tenants_queryset(self.caller()).get(pk=row.pk)).data)

    @extend_schema(
        operation_id="admin_tenants_update", request=TenantChangeInput, responses=TenantOutput
    )
    def patch(self, request: Request, tenant: str) -> Response:
        """Change the fields given; the others keep their values."""
        caller = self.caller()
        row = caller.tenant(tenant)
        # Who may change what is decided before the values are checked (a 403 before a 400).
        asked = set(request.data) if isinstance(request.data, Mapping) else set()
        caller.require_tenant_change(asked & set(TenantChangeInput().fields))
        data = read(TenantChangeInput, request, partial=True)
        tenant_change(tenant=row, data=data)
        return Response(TenantOutput(tenants_queryset(caller).get(pk=row.pk)).data)

    @extend_schema(operation_id="admin_tenants_destroy", request=None, responses={204: None})
    def delete(self, request: Request, tenant: str) -> Response:
        """Delete a tenant with its members and keys (platform tokens, staff with
        `accounts.delete_tenant`); its keys stop working at once."""
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_platform("accounts.delete_tenant")
        no_body(request)
        services.tenant_delete(tenant=row)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Members -----------------------------------------------------------------------------------


@extend_schema_serializer(component_name="AdminMember")
class MemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    role = serializers.CharField()
    created_at = serializers.DateTimeField()


class MemberAddInput(StrictInput, serializers.Serializer):
    user = serializers.CharField(
        max_length=254, help_text="The username or email address of an existing account"
    )
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class MemberChangeInput(StrictInput, serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


def _user_by(ref: str):
    users = list(
        get_user_model().objects.filter(Q(username=ref) | Q(email__iexact=ref), is_active=True)[:2]
    )
    if len(users) != 1:
        raise exceptions.ValidationError(
            {
                "user": [
                    "No single active account has this username or email address; "
                    "to add someone without an account, invite their email (POST …/invitations)."
                ]
            }
        )
    return users[0]


def _keep_an_owner(membership: Membership, new_role: str | None) -> None:
    """A tenant keeps at least one owner: the last one is neither demoted nor removed."""
    if membership.role != Membership.Role.OWNER or new_role == Membership.Role.OWNER:
        return
    owners = Membership.objects.filter(tenant=membership.tenant_id, role=Membership.Role.OWNER)
    if not owners.exclude(pk=membership.pk).exists():
        raise exceptions.ValidationError(
            {"role": ["This is the tenant's last owner; make someone else owner first."]}
        )


class MembersApi(AdminApi):
    @extend_schema(operation_id="admin_members_list", responses=MemberOutput(many=True))
    def get(self, request: Request, tenant: str) -> Response:
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_members_view(row)
        members = row.memberships.select_related("user").order_by("created_at", "id")
        return self.paginated(members, MemberOutput)

    @extend_schema(
        operation_id="admin_members_create", request=MemberAddInput, responses={201: MemberOutput}
    )
    def post(self, request: Request, tenant: str) -> Response:
        """Add an existing account to the tenant with a role (someone without an account: invite
        them, `POST .../invitations`)."""
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_members_change(row)
        data = read(MemberAddInput, request)
        user = _user_by(data["user"])
        if Membership.objects.filter(tenant=row, user=user).exists():
            raise exceptions.ValidationError({"user": ["Already a member; change their role."]})
        membership = services.membership_save(
            membership=Membership(tenant=row, user=user, role=data["role"])
        )
        return Response(MemberOutput(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(AdminApi):
    def member(self, tenant: str, member_id: int, *, write: bool) -> Membership:
        caller = self.caller()
        row = caller.tenant(tenant)
        if write:
            caller.require_members_change(row)
        else:
            caller.require_members_view(row)
        try:
            return row.memberships.select_related("user", "tenant").get(pk=member_id)
        except Membership.DoesNotExist:
            raise exceptions.NotFound("No such member.") from None

    @extend_schema(operation_id="admin_members_retrieve", responses=MemberOutput)
    def get(self, request: Request, tenant: str, member_id: int) -> Response:
        return Response(MemberOutput(self.member(tenant, member_id, write=False)).data)

    @extend_schema(
        operation_id="admin_members_update", request=MemberChangeInput, responses=MemberOutput
    )
    def patch(self, request: Request, tenant: str, member_id: int) -> Response:
        membership = self.member(tenant, member_id, write=True)
        data = read(MemberChangeInput, request)
        _keep_an_owner(membership, data["role"])
        membership.role = data["role"]
        return Response(MemberOutput(services.membership_save(membership=membership)).data)

    @extend_schema(operation_id="admin_members_destroy", request=None, responses={204: None})
    def delete(self, request: Request, tenant: str, member_id: int) -> Response:
        membership = self.member(tenant, member_id, write=True)
        no_body(request)
        _keep_an_owner(membership, None)
        services.membership_delete(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Invitations -------------------------------------------------------------------------------


@extend_schema_serializer(component_name="AdminInvitation")
class InvitationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    role = serializers.CharField()
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="AdminInvitationCreated")
class InvitationCreatedOutput(InvitationOutput):
    accept_url = serializers.CharField(
        help_text="The link the invitee opens (signed in with the invited email); shown only here"
    )


class InvitationInput(StrictInput, serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InvitationsApi(AdminApi):
    @extend_schema(operation_id="admin_invitations_list", responses=InvitationOutput(many=True))
    def get(self, request: Request, tenant: str) -> Response:
        """The tenant's pending invitations (never their links)."""
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_members_view(row)
        pending = services.invitations_pending(tenant=row).select_related("invited_by")
        return self.paginated(pending, InvitationOutput)

    @extend_schema(
        operation_id="admin_invitations_create",
        request=InvitationInput,
        responses={201: InvitationCreatedOutput},
    )
    def post(self, request: Request, tenant: str) -> Response:
        """Invite an email address with a role; the link is emailed and returned once. A pending
        invitation for the same address is replaced."""
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_members_change(row)
        data = read(InvitationInput, request)
        user = request.user if getattr(request.user, "pk", None) and caller.token is None else None
        with transaction.atomic():
            invitation, token = services.invitation_create(
                tenant=row, email=data["email"], role=data["role"], invited_by=user
            )
            url = invitations.send_invitation(request=request, invitation=invitation, token=token)
        answer = {**InvitationOutput(invitation).data, "accept_url": url}
        return secret_response(answer, status=status.HTTP_201_CREATED)


class InvitationDetailApi(AdminApi):
    @extend_schema(operation_id="admin_invitations_destroy", request=None, responses={204: None})
    def delete(self, request: Request, tenant: str, invitation_id: int) -> Response:
        """Withdraw a pending invitation: its link stops working."""
        caller = self.caller()
        row = caller.tenant(tenant)
        caller.require_members_change(row)
        no_body(request)
        invitation = services.invitations_pending(tenant=row).filter(pk=invitation_id).first()
        if invitation is None:
            raise exceptions.NotFound("No such pending invitation.")
        services.invitation_revoke(invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)
