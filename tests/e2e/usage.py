"""Usage records in end-to-end tests: run the queued Celery messages as the worker would."""

from __future__ import annotations

import base64
import json
import time

import redis

from gateway.models import UsageRecord as UsageRow
from gateway.usage.tasks import record_usage_batch

QUEUE = "celery"  # Celery's default queue: a Redis list the gateway LPUSHes onto


def drain(client: redis.Redis) -> int:
    """Run every queued usage batch through the task, oldest first; returns how many ran."""
    ran = 0
    while (raw := client.rpop(QUEUE)) is not None:
        message = json.loads(raw)
        if message["headers"]["task"] != record_usage_batch.name:
            continue
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        record_usage_batch.apply(args=args, kwargs=kwargs).get()
        ran += 1
    return ran


def records_for(client: redis.Redis, request_ids: list[str], within: float = 15.0) -> dict:
    """request id -> its stored row, once all have landed (draining the queue meanwhile)."""
    deadline = time.monotonic() + within
    while True:
        drain(client)
        rows = {r.request_id: r for r in UsageRow.objects.filter(request_id__in=request_ids)}
        if len(rows) == len(set(request_ids)) or time.monotonic() > deadline:
            missing = set(request_ids) - set(rows)
            assert not missing, f"no usage record for {sorted(missing)}"
            return rows
        time.sleep(0.05)
