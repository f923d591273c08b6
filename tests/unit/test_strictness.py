"""Strictness review of provider options: what each route cannot honour, decided per route."""

import pytest

from core import ir
from core.errors import InvalidRequest
from core.target import Target
from gateway import strictness


def target(kind: str, route_id: int) -> Target:
    return Target(
        route_id=route_id,
        provider_id=route_id,
        provider_name=f"{kind}-main",
        kind=kind,
        base_url="http://upstream.test/v1",
        api_key="k",
        upstream_model="gpt-4.1",
    )


def request(provider_options: dict) -> ir.Request:
    return ir.Request(
        model="m",
        max_tokens=10,
        messages=[ir.Message("user", [ir.Text("hi")])],
        provider_options=provider_options,
        surface="anthropic",
    )


HOSTILE = {"openai": {"model": "gpt-expensive", "n": 8, "verbosity": "low"}}


def test_warn_keeps_the_route_and_names_each_option_it_drops():
    chat = target("openai", 1)
    review = strictness.review([chat], request(HOSTILE), [], "warn")
    assert review.targets == [chat]
    assert review.warnings(chat) == [
        "provider_options.openai.model dropped: not supported by provider openai-main",
        "provider_options.openai.n dropped: not supported by provider openai-main",
    ]


def test_error_refuses_the_request_naming_the_first_option_when_no_route_is_left():
    with pytest.raises(InvalidRequest) as refused:
        strictness.review([target("openai", 1)], request(HOSTILE), [], "error")
    assert refused.value.message == (
        "provider_options.openai.model: not supported by provider openai-main (strictness: error)"
    )


def test_error_steers_to_the_route_whose_table_has_the_option():
    chat, responses = target("openai", 1), target("openai_responses", 2)
    compaction = {"openai": {"context_management": {"type": "compaction"}}}
    review = strictness.review([chat, responses], request(compaction), [], "error")
    assert review.targets == [responses]
    assert review.skipped == [
        {"provider": "openai-main", "unsupported": ["provider_options.openai.context_management"]}
    ]


def test_thousands_of_unknown_names_are_reported_as_twenty_and_a_count():
    chat = target("openai", 1)
    unknown = [f"junk_{i}\n" for i in range(5000)]
    options = {"openai": {f"o{i}": i for i in range(30)}}
    review = strictness.review([chat], request(options), unknown, "warn")
    dropped = review.dropped[chat.route_id]
    assert dropped[:2] == ["junk_0?", "junk_1?"]
    assert len(dropped) == 21 and dropped[-1] == "5010 more fields"


def test_withheld_fields_are_dropped_on_every_route_even_one_speaking_the_clients_surface():
    routes = [target("anthropic", 1), target("openai", 2)]
    review = strictness.review(routes, request({}), [], "warn", ["workspace_id"])
    for route in routes:
        assert review.warnings(route) == [
            f"workspace_id dropped: not supported by provider {route.provider_name}"
        ]
    with pytest.raises(InvalidRequest) as caught:
        strictness.review(routes, request({}), [], "error", ["workspace_id"])
    assert caught.value.message.startswith("workspace_id: not supported by provider")
