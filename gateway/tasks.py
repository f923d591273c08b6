"""Celery looks for `<app>.tasks`: the gateway's tasks live in their own packages."""

from gateway.alerts.tasks import (
    check_expiring_keys,
    check_usage_backlog,
    deliver_alert,
    drain_breaker_events,
    sweep_deliveries,
)
from gateway.usage.tasks import expire_captured_bodies, prune_usage, record_usage_batch

__all__ = [
    "check_expiring_keys",
    "check_usage_backlog",
    "deliver_alert",
    "drain_breaker_events",
    "expire_captured_bodies",
    "prune_usage",
    "record_usage_batch",
    "sweep_deliveries",
]
