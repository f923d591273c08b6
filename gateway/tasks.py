"""Celery looks for `<app>.tasks`: the gateway's tasks live in their own packages."""

from gateway.usage.tasks import record_usage_batch

__all__ = ["record_usage_batch"]
