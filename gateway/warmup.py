"""Work a server process does once at start, so neither its first requests nor the garbage
collector pay for it later.

Measured on a uvicorn worker at 500 requests/s: a full (generation 2) collection walked the
whole heap, Django's and our modules and caches included, and stopped the event loop for about
130 ms, the largest item of the p99; after `gc.freeze()` it takes about 10 ms. The loads before
the freeze are what the first requests would otherwise do on the event loop (the tokenizer's
tables, about 150 ms) or in the usage sender's thread while holding the import lock (Celery's
task module and kombu's Redis transport, about 50 ms of stalled loop).
"""

from __future__ import annotations

import gc


def warm_up() -> None:
    import kombu.transport.redis  # noqa: F401

    import gateway.usage.tasks  # noqa: F401
    from core.tokens import encoding

    encoding()
    gc.freeze()
