"""Celery looks for `<app>.tasks`: the gateway's tasks live in their own packages."""

from gateway.usage.tasks import prune_usage, record_usage_batch

__all__ = ["prune_usage", "record_usage_batch"]
