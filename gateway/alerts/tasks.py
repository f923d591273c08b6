"""Celery tasks for alerts: thin wrappers (the work is in delivery.py and checks.py).

`deliver_alert` is queued once per delivery and queues itself again for each retry (the
attempt number travels with the message, so a duplicate is a no-op). The periodic checks run
from Celery beat (gateway/celery.py).
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from gateway.alerts import checks
from gateway.alerts.delivery import deliver_stalled_after, deliveries_stalled, delivery_attempt


@shared_task(name="tollgate.alerts.deliver", bind=True, max_retries=None, ignore_result=True)
def deliver_alert(self, delivery_id: int, number: int = 1) -> None:
    delay = delivery_attempt(delivery_id=delivery_id, number=number)
    if delay is not None:
        raise self.retry(args=(delivery_id, number + 1), countdown=delay)


@shared_task(name="tollgate.alerts.sweep", ignore_result=True)
def sweep_deliveries() -> int:
    """Queue again deliveries whose message was lost (a broker restart, say)."""
    stalled = deliveries_stalled(older_than=timedelta(seconds=deliver_stalled_after()))
    for delivery_id, number in stalled:
        deliver_alert.delay(delivery_id, number)
    return len(stalled)


@shared_task(name="tollgate.alerts.breaker_events", ignore_result=True)
def drain_breaker_events() -> int:
    return checks.breaker_openings_drain()


@shared_task(name="tollgate.alerts.expiring_keys", ignore_result=True)
def check_expiring_keys() -> int:
    return checks.expiring_keys_check()


@shared_task(name="tollgate.alerts.usage_backlog", ignore_result=True)
def check_usage_backlog() -> int:
    return checks.usage_backlog_check()
