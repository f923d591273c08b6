"""The configuration's version: moved by every change, read by every replica.

Redis carries the change notice (`core.state.CONFIG_VERSION_KEY`); the database's
`ConfigVersion` stamp carries it to processes that run without Redis.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError
from django.db.models import F

from core.state import CONFIG_VERSION_KEY, SHARED_ERRORS, local_store, sync_redis

log = logging.getLogger("tollgate.state")


def config_changed() -> None:
    """Tell every replica that providers, models, routes or tenants changed.

    Called once the change is committed, so neither a Redis nor a database failure may fail the
    change: replicas that cannot reach Redis reread the database on their own
    (providers.routing), and the others see the change when the next notice gets through. The
    database's stamp moves too, for processes that run without Redis (see `config_stamp`).
    """
    _bump_stamp()
    client = sync_redis()
    if client is None:
        store = local_store()
        store._data[CONFIG_VERSION_KEY] = (str(time.time_ns()).encode(), None)
        return
    try:
        client.incr(CONFIG_VERSION_KEY)
    except SHARED_ERRORS as exc:
        log.error(
            "config change not announced, Redis unreachable (%s: %s)", type(exc).__name__, exc
        )


def _bump_stamp() -> None:
    from accounts.models import ConfigVersion

    try:
        if not ConfigVersion.objects.filter(pk=1).update(version=F("version") + 1):
            ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    except DatabaseError as exc:
        log.error("config version stamp not moved (%s: %s)", type(exc).__name__, exc)


def config_stamp() -> bytes | None:
    """The database's config version (synchronous: callers hop to a thread for it)."""
    from accounts.models import ConfigVersion

    version = ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return None if version is None else b"db:%d" % version
