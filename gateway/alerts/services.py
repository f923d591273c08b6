"""The one way an alert is raised: deduplicated, stored, and queued to every matching channel.

`alert_raise` inserts the alert under its `dedupe_key` (kind, subject, threshold, period),
unique in the database: the second caller, in this process or any other, finds it there and
sends nothing. Deliveries are queued with `transaction.on_commit`, so a rolled-back alert is
never sent.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import audit
from gateway.alerts.models import (
    TENANT_KINDS,
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    AlertPolicy,
)

log = logging.getLogger("tollgate.alerts")


def dedupe_key(kind: str, subject: str, threshold: int, period: str) -> str:
    return f"{kind}|{subject}|{threshold}|{period}"[:200]


def alert_raise(
    *,
    kind: str,
    subject: str,
    title: str,
    tenant_id: int | None = None,
    threshold: int = 0,
    period: str = "",
    details: dict | None = None,
    deliver: bool = True,
    channels: list[AlertChannel] | None = None,
) -> Alert | None:
    """Store and queue an alert; None if this (kind, subject, threshold, period) was raised.

    `deliver=False` stores it as raised without sending it (superseded by a higher one);
    `channels` sends it only there (a test alert) instead of to every matching channel."""
    key = dedupe_key(kind, subject, threshold, period)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=kind,
                tenant_id=tenant_id,
                subject=subject,
                threshold=threshold,
                period=period,
                dedupe_key=key,
                title=title[:300],
                details=details or {},
            )
            if channels is None:
                channels = channels_for(kind=kind, tenant_id=tenant_id) if deliver else []
            deliveries = AlertDelivery.objects.bulk_create(
                [AlertDelivery(alert=alert, channel=c, channel_name=c.name) for c in channels]
            )
    except IntegrityError:
        if Alert.objects.filter(dedupe_key=key).exists():
            return None  # raised before, or by a concurrent caller
        raise
    log.info("alert %s raised: %s (%d deliveries)", alert.uid, title, len(deliveries))
    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: _queue(pk))
    return alert


def alerts_raised(keys: list[str]) -> set[str]:
    """The dedupe keys among these already raised (to skip work before `alert_raise`)."""
    return set(Alert.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))


def channels_for(*, kind: str, tenant_id: int | None) -> list[AlertChannel]:
    """A tenant's alerts go to its channels and to platform channels taking all tenants'; a
    platform alert goes to platform channels."""
    if tenant_id is not None and kind in TENANT_KINDS:
        scope = Q(tenant_id=tenant_id) | Q(tenant__isnull=True, all_tenants=True)
    else:
        scope = Q(tenant__isnull=True)
    rows = AlertChannel.objects.filter(scope, enabled=True)
    return [c for c in rows if c.wants(kind)]


def _channel_snapshot(channel: AlertChannel | None, secret: str) -> dict | None:
    if channel is None:
        return None
    return {**audit.snapshot(channel), "secret": secret}


def alert_channel_save(*, channel: AlertChannel, secret: str = "") -> AlertChannel:
    """Create or change a channel, audited; a non-empty `secret` replaces the stored one (the
    audit entry says "replaced", never the value)."""
    with transaction.atomic():
        old = AlertChannel.objects.filter(pk=channel.pk).first() if channel.pk else None
        before = _channel_snapshot(old, "set" if old and old.has_secret else "not set")
        if secret:
            channel.set_secret(secret)
        channel.save()
        shown = (
            "replaced"
            if secret and old and old.has_secret
            else "set"
            if channel.has_secret
            else "not set"
        )
        audit.record(
            audit.UPDATE if old else audit.CREATE,
            channel,
            before,
            _channel_snapshot(channel, shown),
        )
    return channel


def alert_channel_delete(*, channel: AlertChannel) -> None:
    with transaction.atomic():
        audit.record(audit.DELETE, channel)
        channel.delete()


def alert_policy_save(*, policy: AlertPolicy) -> AlertPolicy:
    with transaction.atomic():
        before = audit.stored(policy)
        policy.save()
        audit.record(
            audit.UPDATE if before else audit.CREATE, policy, before, audit.snapshot(policy)
        )
    return policy


def alert_policy_delete(*, policy: AlertPolicy) -> None:
    with transaction.atomic():
        audit.record(audit.DELETE, policy)
        policy.delete()


def alert_test_send(*, channel: AlertChannel) -> Alert | None:
    """A test alert to this one channel (the admin's "send a test alert" action)."""
    now = timezone.now()
    return alert_raise(
        kind=AlertKind.TEST,
        subject=f"channel:{channel.pk}",
        tenant_id=channel.tenant_id,
        period=now.isoformat(),
        title=f"Test alert to {channel.name}",
        details={"note": "Sent from the Tollgate admin to check this channel."},
        channels=[channel],
    )


def _queue(delivery_id: int) -> None:
    from gateway.alerts.tasks import deliver_alert

    try:
        deliver_alert.delay(delivery_id, 1)
    except Exception as exc:  # the broker is away: the sweep sends it later
        log.warning("alert delivery %s not queued (%r); the sweep will retry", delivery_id, exc)
