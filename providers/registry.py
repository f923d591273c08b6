"""Provider kind -> adapter instance, from the kinds table (providers/kinds.py).

Adapters are imported lazily by dotted path (as healthchecks does for its transports) and
instantiated once: they hold no per-request state.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from providers.adapters.base import Adapter
from providers.kinds import KINDS


@cache
def adapter_for(kind: str) -> Adapter:
    module, _, name = KINDS[kind].adapter.rpartition(".")
    return getattr(import_module(module), name)()
