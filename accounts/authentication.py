"""DRF authentication for tenant API keys, backed by the same key service as `/v1`."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from rest_framework import authentication, exceptions

from accounts.keys import KeyInfo, authenticate
from core.errors import AuthenticationFailed, RateLimited


class TenantKeyPrincipal:
    """The `request.user` of a key-authenticated API call: a tenant, not a person."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: KeyInfo):
        self.key = key
        self.tenant_id = key.tenant_id

    def __str__(self) -> str:
        return f"key {self.key.prefix}"


class TenantKeyAuthentication(authentication.BaseAuthentication):
    """`x-api-key: KEY` or `Authorization: Bearer KEY`."""

    def authenticate(self, request):
        secret = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if not secret and auth.lower().startswith("bearer "):
            secret = auth[7:].strip()
        if not secret:
            return None
        origin = (request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
        try:
            key = async_to_sync(authenticate)(secret, origin)
        except AuthenticationFailed as err:
            raise exceptions.AuthenticationFailed(err.message) from None
        except RateLimited as err:
            wait = int(err.headers["retry-after"])
            raise exceptions.Throttled(wait, detail=err.message) from None
        return TenantKeyPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return "Bearer"


class ServiceTokenPrincipal:
    """The `request.user` of a service-token call: automation, platform-wide or for one tenant."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, token):
        self.service_token = token
        self.tenant_id = token.tenant_id  # None: platform-wide

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None

    def __str__(self) -> str:
        return f"service token {self.service_token.prefix}"


class ServiceTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer tgs_...` (accounts.service_tokens); tenant keys are refused."""

    def authenticate(self, request):
        from accounts.service_tokens import service_token_authenticate

        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            if request.headers.get("x-api-key"):
                raise exceptions.AuthenticationFailed(
                    "the admin API takes a service token: `Authorization: Bearer tgs_...`"
                )
            return None
        origin = (request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))
        try:
            token = service_token_authenticate(auth[7:].strip(), origin)
        except AuthenticationFailed as err:
            raise exceptions.AuthenticationFailed(err.message) from None
        except RateLimited as err:
            wait = int(err.headers["retry-after"])
            raise exceptions.Throttled(wait, detail=err.message) from None
        return ServiceTokenPrincipal(token), token

    def authenticate_header(self, request) -> str:
        return "Bearer"
