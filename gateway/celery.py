"""The Celery app: usage records and roll-ups run here, off the request path; `celery beat`
(compose's `beat` service) queues the periodic tasks of `beat_schedule` for the worker."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Periodic tasks, in seconds. Each is idempotent: a run missed or doubled changes nothing.
app.conf.beat_schedule = {
    "expire-captured-bodies": {
        "task": "tollgate.usage.captured_bodies_expire",
        "schedule": 3600.0,
    },
    # Breaker openings the gateways pushed to Redis become alerts within this delay.
    "alerts-breaker-openings": {"task": "tollgate.alerts.breaker_events", "schedule": 10.0},
    "alerts-usage-backlog": {"task": "tollgate.alerts.usage_backlog", "schedule": 60.0},
    "alerts-expiring-keys": {"task": "tollgate.alerts.expiring_keys", "schedule": 3600.0},
    # Deliveries whose Celery message was lost (a broker restart) are queued again.
    "alerts-delivery-sweep": {"task": "tollgate.alerts.sweep", "schedule": 120.0},
}


@app.on_after_configure.connect
def schedule_usage_retention(sender: Celery, **_) -> None:
    """Usage retention (gateway/usage/retention.py), hourly so each run's bounded batches keep
    up. Named, not imported: the task's module needs Django ready."""
    sender.add_periodic_task(
        crontab(minute=17), sender.signature("tollgate.usage.prune"), name="usage-retention"
    )
