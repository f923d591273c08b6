"""The Celery app: usage records and roll-ups run here, off the request path."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Periodic work, run by `celery -A gateway beat` (compose's `beat` service): one entry each.
app.conf.beat_schedule = {
    "expire-captured-bodies": {
        "task": "tollgate.usage.captured_bodies_expire",
        "schedule": 3600.0,
    },
}
