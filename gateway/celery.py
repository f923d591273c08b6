"""The Celery app: usage records and roll-ups run here, off the request path; Celery beat
(`celery -A gateway beat`, one process per deployment) runs the periodic checks below."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic tasks, in seconds. Each is idempotent: a run missed or doubled changes nothing.
app.conf.beat_schedule = {
    # Breaker openings the gateways pushed to Redis become alerts within this delay.
    "alerts-breaker-openings": {"task": "tollgate.alerts.breaker_events", "schedule": 10.0},
    "alerts-usage-backlog": {"task": "tollgate.alerts.usage_backlog", "schedule": 60.0},
    "alerts-expiring-keys": {"task": "tollgate.alerts.expiring_keys", "schedule": 3600.0},
    # Deliveries whose Celery message was lost (a broker restart) are queued again.
    "alerts-delivery-sweep": {"task": "tollgate.alerts.sweep", "schedule": 120.0},
}
