"""The audit log of administrative changes: who is acting, what an object looks like, one entry.

Services call `record` inside their transaction, so a change rolled back leaves no entry. The
actor comes from a context variable: `ActorMiddleware` sets the request (its user is read only
when something is recorded, so DRF's key authentication, which runs inside the view, is seen
too), management commands wrap their work in `acting_as(label="cli:<command>")`, and anything
else is "system".

Snapshots never hold a secret, by the gateway's one redaction rule (core/redaction.py):
fields named like a secret and encrypted columns are left out, a provider's credential is only
"set" or "not set", its extra headers show their names only, and the provider's credential
values are redacted wherever else they appear (a URL, its options).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.management.base import BaseCommand
from django.db import models

from accounts.models import AuditEntry, Tenant
from core import redaction

CREATE, UPDATE, DELETE, REVOKE, ROTATE = "create", "update", "delete", "revoke", "rotate"
REPLACED = "<replaced>"  # a redacted value that changed: the entry says so, never what it was
OBJECT_TYPES = {
    "ApiKey": "api_key",
    "Tenant": "tenant",
    "Membership": "membership",
    "Provider": "provider",
    "Model": "model",
    "Route": "route",
    "ModelAlias": "model_alias",
    "ServiceToken": "service_token",
    "Invitation": "invitation",
    "AlertChannel": "alert_channel",
    "AlertPolicy": "alert_policy",
}


@dataclass(frozen=True)
class Actor:
    user: Any | None = None
    label: str = "system"


SYSTEM = Actor()
# Per request or command (a context variable, not shared state): an Actor or the request.
_current: ContextVar[Any] = ContextVar("audit_actor", default=None)


def actor_for(user: Any) -> Actor:
    """The actor behind a `request.user`: a person, a tenant key or a service token (REST API),
    or nobody."""
    token = getattr(user, "service_token", None)
    if token is not None:  # accounts.service_tokens principal
        return Actor(label=f"service-token:{token.prefix}")
    key = getattr(user, "key", None)
    if key is not None and hasattr(user, "tenant_id"):  # accounts.authentication principal
        return Actor(label=f"api-key:{key.prefix}")
    if user is not None and getattr(user, "is_authenticated", False):
        return Actor(user=user, label=user.get_username())
    return SYSTEM


def current_actor() -> Actor:
    value = _current.get()
    if value is None or isinstance(value, Actor):
        return value or SYSTEM
    return actor_for(getattr(value, "user", None))  # a request: its user as authenticated now


@contextmanager
def acting_as(user: Any = None, label: str | None = None) -> Iterator[Actor]:
    """Record what happens inside as done by this user or label (e.g. "cli:gateway_apply")."""
    actor = Actor(user=user, label=label or (user.get_username() if user else "system"))
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


class AuditedCommand(BaseCommand):
    """A management command whose changes are recorded as made by "cli:<command name>"."""

    def execute(self, *args, **options):
        with acting_as(label=f"cli:{type(self).__module__.rsplit('.', 1)[-1]}"):
            return super().execute(*args, **options)


class ActorMiddleware:
    """Makes the request's user the actor of whatever the request changes (sync or async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)

    async def _acall(self, request):
        token = _current.set(request)
        try:
            return await self.get_response(request)
        finally:
            _current.reset(token)


# --- Snapshots -------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _credentials(obj: models.Model) -> tuple[redaction.Secrets, dict[str, str] | None]:
    """A provider's credential values, and its extra headers (None: it has none to show)."""
    if not hasattr(obj, "credential_encrypted"):
        return redaction.Secrets(), None
    try:
        headers = obj.extra_headers
        values = [obj.credential, *headers.values()]
    except ValueError:  # encrypted with a key no longer configured: nothing to show
        return redaction.Secrets(), {}
    return redaction.Secrets(values), headers


def snapshot(obj: models.Model) -> dict:
    """The object's fields as plain JSON values, without secrets or automatic timestamps."""
    secrets, headers = _credentials(obj)
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or redaction.secret_name(field.name):
            continue
        if field.name.endswith("_encrypted"):  # summarised below, never the ciphertext
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if field.name == "last_used_at":  # usage, not administration
            continue
        if field.is_relation:
            related = getattr(obj, field.name)
            data[field.name] = None if related is None else str(related)
        else:
            data[field.name] = redaction.scrub_json(plain(getattr(obj, field.attname)), secrets)
    for field in obj._meta.many_to_many:
        data[field.name] = sorted(str(o) for o in getattr(obj, field.name).all())
    if headers is not None:
        data["extra_headers"] = redaction.headers(headers, secrets)
        data["credential"] = "set" if obj.credential_encrypted else "not set"
    return data


def stored(obj: models.Model) -> dict | None:
    """A snapshot of the object as the database holds it (None: not saved yet).

    Read from the database because an admin form sets the new values on `obj` before saving.
    """
    if obj.pk is None:
        return None
    row = type(obj)._default_manager.filter(pk=obj.pk).first()
    return None if row is None else snapshot(row)


# --- Entries ---------------------------------------------------------------------------------


def _tenant_of(obj: models.Model) -> Tenant | None:
    if isinstance(obj, Tenant):
        return obj if obj.pk is not None else None
    return getattr(obj, "tenant", None)


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def describe(entry: AuditEntry) -> str:
    """One line saying what an entry changed, field by field (values are already redacted)."""
    head = f"{entry.action} {entry.object_type} {entry.object_repr}"
    before, after = entry.before or {}, entry.after or {}
    if entry.action == CREATE:
        fields = ", ".join(
            f"{k}={_shown(v)}" for k, v in sorted(after.items()) if v not in ("", None, [], {})
        )
        return f"{head}: {fields}" if fields else head
    if entry.action == UPDATE:
        fields = "; ".join(
            f"{k}: {_shown(before.get(k))} -> {_shown(after.get(k))}"
            for k in sorted(before.keys() | after.keys())
        )
        return f"{head}: {fields}"
    return head


def record(
    action: str, obj: models.Model, before: dict | None = None, after: dict | None = None
) -> AuditEntry | None:
    """Write one entry for a change to `obj`; None when an update changed nothing.

    Create: `after` defaults to the object's snapshot; delete (call before deleting): `before`
    does. Given both, only the fields that differ are kept.
    """
    if action == CREATE and after is None:
        after = snapshot(obj)
    if action == DELETE and before is None:
        before = snapshot(obj)
    if before is not None and after is not None:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if not changed:
            return None
        before = {k: before.get(k) for k in changed}
        after = {k: after.get(k) for k in changed}
    actor = current_actor()
    user = actor.user if getattr(actor.user, "pk", None) is not None else None
    return AuditEntry.objects.create(
        actor=user,
        actor_label=actor.label[:150],
        tenant=_tenant_of(obj),
        action=action,
        object_type=OBJECT_TYPES.get(type(obj).__name__, type(obj)._meta.model_name),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
    )
