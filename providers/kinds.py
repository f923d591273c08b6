"""Provider kinds: the one table of what a kind is. Adding a kind is a row here and its adapter.

Read by the registry (kind -> adapter), the `Provider.kind` field (its choices are `choices`, a
callable, so a new kind needs no migration), the admin and the REST API (through that field),
gateway_apply's validation, OpenTelemetry spans and the README test. Pure data: no Django, no
adapter imported here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    label: str  # what the admin shows
    adapter: str  # dotted path of the adapter class, imported lazily (providers/registry.py)
    # The wire protocol the provider speaks natively (a folder of protocols/). A client speaking
    # the same protocol has its body forwarded as sent where the adapter does that (Anthropic's,
    # `Adapter.passthrough`); every other request is built from the IR.
    protocol: str | None
    telemetry_name: str  # OpenTelemetry's gen_ai.provider.name (its well-known values)


KINDS: dict[str, Kind] = {
    "anthropic": Kind(
        "Anthropic Messages",
        "providers.adapters.anthropic.AnthropicAdapter",
        "anthropic",
        "anthropic",
    ),
    "openai": Kind(
        "OpenAI Chat Completions (and compatible servers)",
        "providers.adapters.openai_chat.OpenAIChatAdapter",
        "openai_chat",
        "openai",
    ),
    "openai_responses": Kind(
        "OpenAI Responses API",
        "providers.adapters.openai_responses.OpenAIResponsesAdapter",
        "openai_responses",
        "openai",
    ),
    "gemini": Kind(
        "Google Gemini", "providers.adapters.gemini.GeminiAdapter", "gemini", "gcp.gemini"
    ),
    "demo": Kind(
        "Built-in demo (no network)", "providers.adapters.demo.DemoAdapter", None, "tollgate.demo"
    ),
}
DEMO = "demo"  # the kind the quick start's provider has


def choices() -> list[tuple[str, str]]:
    """`Provider.kind`'s choices. Referenced by name in migrations: keep the name."""
    return [(name, kind.label) for name, kind in KINDS.items()]


def protocol_of(kind: str) -> str | None:
    row = KINDS.get(kind)
    return row.protocol if row is not None else None
