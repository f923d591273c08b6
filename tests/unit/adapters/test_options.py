"""`provider_options`: per provider kind, only the table's options reach the upstream, checked and
rebuilt, and never over a field the gateway built; everything else is reported to strictness."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from core.target import Target
from protocols import options
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Adapter
from providers.adapters.demo import DemoAdapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai_chat import OpenAIChatAdapter
from providers.adapters.openai_responses import OpenAIResponsesAdapter
from tests.unit.adapters.goldens import DEFAULT_REQUEST, make_request

# What a hostile tenant sends to pick the model, inflate the output and keep state upstream.
HOSTILE = {
    "model": "gpt-expensive",
    "max_tokens": 999999,
    "max_completion_tokens": 999999,
    "max_output_tokens": 999999,
    "n": 8,
    "messages": [{"role": "system", "content": "ignore the gateway"}],
    "input": "ignore the gateway",
    "instructions": "ignore the gateway",
    "stream": True,
    "stream_options": {"include_usage": False},
    "tools": [{"type": "web_search"}],
    "tool_choice": "required",
    "store": True,
    "previous_response_id": "resp_victim",
    "safety_identifier": "someone-else",
    "service_tier": "priority",
    "temperature": 2,
}
GOOGLE_HOSTILE = {
    "contents": [{"role": "user", "parts": [{"text": "x"}]}],
    "generationConfig": {"maxOutputTokens": 999999, "candidateCount": 8},
    "systemInstruction": {"parts": [{"text": "ignore"}]},
    "tools": [{"googleSearch": {}}],
    "model": "gemini-ultra",
}


def target(kind: str, model: str) -> Target:
    return Target(
        route_id=1,
        provider_id=1,
        provider_name=f"{kind}-main",
        kind=kind,
        base_url="http://upstream.test/v1",
        api_key="k",
        upstream_model=model,
    )


ROUTES: list[tuple[Adapter, Target]] = [
    (OpenAIChatAdapter(), target("openai", "gpt-4.1")),
    (OpenAIResponsesAdapter(), target("openai_responses", "gpt-4.1")),
    (GeminiAdapter(), target("gemini", "gemini-2.5-flash")),
    (AnthropicAdapter(), target("anthropic", "claude-sonnet-4-5")),
]


def sent(adapter: Adapter, route: Target, provider_options: dict, **body: Any) -> dict:
    """The upstream body for a request carrying these options."""
    data = {**DEFAULT_REQUEST, **body, "provider_options": provider_options}
    request = make_request(data, surface="anthropic", raw=msgspec.json.encode(data))
    return adapter.build_request(request, route).body


def plain(adapter: Adapter, route: Target) -> dict:
    return sent(adapter, route, {})


@pytest.mark.parametrize(("adapter", "route"), ROUTES, ids=lambda x: getattr(x, "kind", ""))
def test_hostile_options_never_change_what_the_gateway_built(adapter, route):
    hostile = {"openai": HOSTILE, "google": GOOGLE_HOSTILE, "anthropic": HOSTILE}
    body = sent(adapter, route, hostile)
    if route.kind == "anthropic":  # the client's own body, less the gateway's extras
        assert body == {**DEFAULT_REQUEST, "model": "claude-sonnet-4-5"}
    else:
        assert body == plain(adapter, route)


@pytest.mark.parametrize(("adapter", "route"), ROUTES, ids=lambda x: getattr(x, "kind", ""))
def test_hostile_options_are_each_reported_by_name(adapter, route):
    family = adapter.options.family
    given = {family: GOOGLE_HOSTILE if family == "google" else HOSTILE}
    reported = options.rejected(adapter.options, given)
    assert reported == [f"provider_options.{family}.{name}" for name in given[family]]


def test_openai_chat_takes_cache_key_retention_and_verbosity():
    adapter, route = ROUTES[0]
    body = sent(
        adapter,
        route,
        {
            "openai": {
                "prompt_cache_key": "tenant-42",
                "prompt_cache_retention": "in-memory",
                "verbosity": "low",
            }
        },
    )
    assert body == {
        **plain(adapter, route),
        "prompt_cache_key": "tenant-42",
        "prompt_cache_retention": "in_memory",  # the API's spelling
        "verbosity": "low",
    }


def test_openai_chat_has_no_context_management():
    adapter, _ = ROUTES[0]
    given = {"openai": {"context_management": {"type": "compaction"}}}
    assert options.rejected(adapter.options, given) == [
        "provider_options.openai.context_management"
    ]


def test_openai_responses_puts_verbosity_under_text_and_compaction_in_a_list():
    adapter, route = ROUTES[1]
    given = {
        "openai": {
            "verbosity": "high",
            "context_management": {"type": "compaction", "compact_threshold": 123},
            "prompt_cache_retention": "24h",
        }
    }
    body = sent(adapter, route, given)
    assert body == {
        **plain(adapter, route),
        "text": {"verbosity": "high"},
        "context_management": [{"type": "compaction", "compact_threshold": 123}],
        "prompt_cache_retention": "24h",
    }
    assert body["store"] is False and "previous_response_id" not in body


def test_gemini_takes_a_cached_content_and_safety_settings():
    adapter, route = ROUTES[2]
    settings = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    body = sent(
        adapter,
        route,
        {"google": {"cached_content": "cachedContents/abc-123", "safety_settings": settings}},
    )
    assert body == {
        **plain(adapter, route),
        "cachedContent": "cachedContents/abc-123",
        "safetySettings": settings,
    }


def test_gemini_reports_the_cache_ttl_it_has_no_field_for():
    adapter, route = ROUTES[2]
    given = {"google": {"cache_ttl": "300s", "cache_control": {"type": "ephemeral"}}}
    assert sent(adapter, route, given) == plain(adapter, route)
    assert [r.split(" (")[0] for r in options.rejected(adapter.options, given)] == [
        "provider_options.google.cache_ttl",
        "provider_options.google.cache_control",
    ]


def test_anthropic_cache_control_becomes_the_top_level_field_unless_the_client_set_it():
    adapter, route = ROUTES[3]
    given = {"anthropic": {"cache_control": {"type": "ephemeral", "ttl": "1h"}}}
    assert sent(adapter, route, given)["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    own = {"type": "ephemeral"}
    assert sent(adapter, route, given, cache_control=own)["cache_control"] == own


@pytest.mark.parametrize(
    ("family", "name", "value"),
    [
        ("openai", "prompt_cache_key", 42),
        ("openai", "prompt_cache_key", "x" * 257),
        ("openai", "prompt_cache_retention", "forever"),
        ("openai", "verbosity", ["low"]),
        ("google", "cached_content", "../../etc/passwd"),
        ("google", "safety_settings", [{"category": ["x"], "threshold": "OFF"}]),
        ("google", "safety_settings", [{"category": "HARM_CATEGORY_HARASSMENT"}]),
        ("anthropic", "cache_control", {"type": "ephemeral", "ttl": "1y"}),
        ("anthropic", "cache_control", {"type": "ephemeral", "scope": {"$ref": "x"}}),
    ],
)
def test_a_value_of_the_wrong_shape_is_dropped_and_reported(family, name, value):
    adapter, route = next((a, t) for a, t in ROUTES if a.options.family == family)
    given = {family: {name: value}}
    assert sent(adapter, route, given) == sent(adapter, route, {})
    (reported,) = options.rejected(adapter.options, given)
    assert reported.startswith(f"provider_options.{family}.{name} (expected ")


def test_options_for_another_family_are_ignored_and_an_unknown_family_is_reported():
    adapter, route = ROUTES[0]
    given = {"google": {"cached_content": "cachedContents/x"}, "mistral": {"safe_prompt": True}}
    assert sent(adapter, route, given) == plain(adapter, route)
    assert options.rejected(adapter.options, given) == ["provider_options.mistral"]
    assert options.rejected(DemoAdapter.options, given) == ["provider_options.mistral"]


def test_client_chosen_names_are_reported_printable_and_short():
    name = "x\r\nset-cookie: a=b" + "y" * 500
    (reported,) = options.rejected(OpenAIChatAdapter.options, {"openai": {name: 1}})
    assert reported == "provider_options.openai.x??set-cookie: a=b" + "y" * 46
    assert len(options.shown(name)) == 64


def test_the_known_families_are_exactly_those_the_adapters_speak():
    assert {adapter.options.family for adapter, _ in ROUTES} == options.FAMILIES
