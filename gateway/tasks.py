"""Celery looks for `<app>.tasks`: the gateway's tasks live in their own packages."""

from gateway.usage.tasks import expire_captured_bodies, prune_usage, record_usage_batch

__all__ = ["expire_captured_bodies", "prune_usage", "record_usage_batch"]
