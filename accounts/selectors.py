"""Reads for tenants and API keys."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, Tenant


def tenant_get(*, name: str) -> Tenant:
    """The tenant with this name, or Tenant.DoesNotExist naming it."""
    try:
        return Tenant.objects.get(name=name)
    except Tenant.DoesNotExist:
        raise Tenant.DoesNotExist(f"no tenant named {name!r}") from None


def api_key_find(*, ref: str) -> ApiKey:
    """A key by the prefix people see (`tg_AbCd1234`) or by its whole secret.

    Raises ApiKey.DoesNotExist; the message never repeats a whole secret.
    """
    ref = ref.strip()
    is_secret = ref.startswith(keys.SECRET_PREFIX) and len(ref) > keys.SHOWN_PREFIX_LENGTH
    lookup = {"secret_hash": keys.hash_secret(ref)} if is_secret else {"prefix": ref}
    try:
        return ApiKey.objects.select_related("tenant").get(**lookup)
    except ApiKey.DoesNotExist:
        shown = "that secret" if is_secret else repr(ref)
        raise ApiKey.DoesNotExist(f"no API key matches {shown}") from None


def api_keys_active(*, tenant: Tenant) -> QuerySet[ApiKey]:
    """The tenant's keys that are neither revoked nor expired."""
    return tenant.api_keys.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
