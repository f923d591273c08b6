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


@cache  # kinds and adapters never change in a process: asked a few times per request
def passes_through(kind: str, surface: str) -> bool:
    """Whether routes of `kind` take a body of the client surface `surface` as sent (the same
    wire protocol, forwarded instead of rebuilt from the IR): nothing is then translated."""
    adapter = adapter_for(kind)
    return adapter.passthrough and adapter.protocol == surface
