"""One attempt at one delivery, logged; the task decides when to try again.

An attempt first claims its number (a conditional UPDATE on `attempt_count`), so a Celery
message delivered twice, or a retry the sweep queued again, sends once. Outcomes: delivered;
retrying after RETRY_SECONDS x 2^(attempt - 1), capped at RETRY_MAX_SECONDS; failed, when the
answer says retrying cannot help (a refused address, a 4xx other than 408 and 429) or after
MAX_ATTEMPTS attempts.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from core.redaction import Secrets
from gateway.alerts import webhooks
from gateway.alerts.models import Alert, AlertAttempt, AlertChannel, AlertDelivery

log = logging.getLogger("tollgate.alerts")
OPEN = (AlertDelivery.Status.PENDING, AlertDelivery.Status.RETRYING)


def backoff_seconds(attempt: int) -> float:
    conf = settings.TOLLGATE_ALERTS
    return min(conf["RETRY_MAX_SECONDS"], conf["RETRY_SECONDS"] * 2 ** (attempt - 1))


def payload(alert: Alert) -> dict:
    """What a webhook receives (and what an email says)."""
    return {
        "id": str(alert.uid),
        "kind": alert.kind,
        "title": alert.title,
        "tenant": alert.tenant.name if alert.tenant_id else None,
        "subject": alert.subject,
        "threshold": alert.threshold,
        "period": alert.period,
        "created_at": alert.created_at.isoformat().replace("+00:00", "Z"),
        "details": alert.details,
    }


def delivery_attempt(*, delivery_id: int, number: int) -> float | None:
    """Make attempt `number`; returns the delay before the next one, or None when done."""
    # The claim is a lease: an attempt whose worker died is found by the sweep once it ends.
    lease = timezone.now() + timedelta(seconds=deliver_stalled_after())
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, attempt_count=number - 1, status__in=OPEN
    ).update(attempt_count=number, next_retry_at=lease)
    if not claimed:
        return None  # made already (a duplicate message), or the delivery is finished
    delivery = AlertDelivery.objects.select_related("alert__tenant", "channel").get(pk=delivery_id)
    channel = delivery.channel
    if channel is None or not channel.enabled:
        outcome = webhooks.Outcome(None, 0.0, "channel deleted or disabled", permanent=True)
    elif channel.kind == AlertChannel.Kind.WEBHOOK:
        outcome = _webhook(delivery, channel)
    else:
        outcome = _email(delivery.alert, channel)
    return _log(delivery, number, outcome)


def _webhook(delivery: AlertDelivery, channel: AlertChannel) -> webhooks.Outcome:
    conf = settings.TOLLGATE_ALERTS
    body = json.dumps(payload(delivery.alert), separators=(",", ":"), sort_keys=True).encode()
    return webhooks.post(
        channel.url,
        body,
        secret=channel.secret,
        headers={
            "Tollgate-Event": delivery.alert.kind,
            "Tollgate-Alert": str(delivery.alert.uid),
            "Tollgate-Delivery": str(delivery.pk),
        },
        timeout=conf["WEBHOOK_TIMEOUT_SECONDS"],
        allow_private=conf["ALLOW_PRIVATE_URLS"],
    )


def _email(alert: Alert, channel: AlertChannel) -> webhooks.Outcome:
    recipients = channel.email_list()
    if not recipients:
        return webhooks.Outcome(None, 0.0, "no email address", permanent=True)
    lines = [alert.title, ""] + [
        f"{k}: {v}" for k, v in payload(alert).items() if k not in ("title", "details")
    ]
    lines += [f"{k}: {v}" for k, v in sorted(alert.details.items())]
    started = time.perf_counter()
    try:
        send_mail(
            # One line: a title carries tenant-chosen names (a key's), never extra headers.
            " ".join(f"[Tollgate] {alert.title}".split()),
            "\n".join(lines) + "\n",
            settings.DEFAULT_FROM_EMAIL,
            recipients,
            fail_silently=False,
        )
    except Exception as exc:  # any SMTP or socket error: try again later
        error = Secrets([settings.EMAIL_HOST_PASSWORD]).scrub(f"{type(exc).__name__}: {exc}")
        return webhooks.Outcome(None, _ms(started), error[:500])
    return webhooks.Outcome(250, _ms(started))


def _log(delivery: AlertDelivery, number: int, outcome: webhooks.Outcome) -> float | None:
    now = timezone.now()
    last = number >= settings.TOLLGATE_ALERTS["MAX_ATTEMPTS"]
    delay = None if outcome.ok or outcome.permanent or last else backoff_seconds(number)
    retry_at = now + timedelta(seconds=delay) if delay is not None else None
    AlertAttempt.objects.create(
        delivery=delivery,
        number=number,
        at=now,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        error=outcome.error[:500],
        next_retry_at=retry_at,
    )
    if outcome.ok:
        status = AlertDelivery.Status.DELIVERED
    elif delay is None:
        status = AlertDelivery.Status.FAILED
        log.warning(
            "alert delivery %s to channel %s given up after %d attempt(s): %s",
            delivery.pk,
            delivery.channel_name,
            number,
            outcome.error,
        )
    else:
        status = AlertDelivery.Status.RETRYING
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        next_retry_at=retry_at,
        finished_at=None if delay is not None else now,
    )
    return delay


def deliver_stalled_after() -> float:
    """A delivery still open this long after it was due lost its message."""
    return max(120.0, 2 * settings.TOLLGATE_ALERTS["WEBHOOK_TIMEOUT_SECONDS"])


def deliveries_stalled(*, older_than: timedelta) -> list[tuple[int, int]]:
    """(delivery id, next attempt number) of open deliveries whose message seems lost: never
    tried, a retry long overdue, or an attempt whose lease ran out (its worker died)."""
    cutoff = timezone.now() - older_than
    stalled = AlertDelivery.objects.filter(status__in=OPEN).filter(
        Q(next_retry_at__isnull=True, created_at__lt=cutoff) | Q(next_retry_at__lt=cutoff)
    )
    return [(d.pk, d.attempt_count + 1) for d in stalled]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
