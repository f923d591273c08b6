"""Provider kind -> adapter. The one place that maps a kind name to its module.

Adapters are imported lazily by dotted path (as healthchecks does for its transports) and
instantiated once: they hold no per-request state.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from providers.adapters.base import Adapter

ADAPTERS = {
    "anthropic": "providers.adapters.anthropic.AnthropicAdapter",
    "openai": "providers.adapters.openai_chat.OpenAIChatAdapter",
    "openai_responses": "providers.adapters.openai_responses.OpenAIResponsesAdapter",
    "gemini": "providers.adapters.gemini.GeminiAdapter",
    "demo": "providers.adapters.demo.DemoAdapter",
}


@cache
def adapter_for(kind: str) -> Adapter:
    module, _, name = ADAPTERS[kind].rpartition(".")
    return getattr(import_module(module), name)()


def passes_through(kind: str, surface: str) -> bool:
    """Whether routes of `kind` take a body of the client surface `surface` as sent (the same
    wire protocol, forwarded instead of rebuilt from the IR): nothing is then translated."""
    return adapter_for(kind).surface == surface
