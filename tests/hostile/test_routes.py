"""Shared routes: what one tenant sends never closes a route for the others, never picks the
upstream model or the budget through `provider_options`, and never shows a credential.

Issue 12, points 2, 3, 6 and the first half of 15, against both servers.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from django.db import connection

from providers import breaker
from providers.models import Provider, Route
from tests.hostile.conftest import assert_error_shape, assert_healthy

KINDS = ("openai", "openai_responses", "gemini", "anthropic")
FAMILY = {"openai": "openai", "openai_responses": "openai", "gemini": "google"}
ASK = {"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
PROXY_SECRET = "cf-aig-secret-0123456789"
PORTKEY_SECRET = "pk-secret-0123456789"
BASIC_SECRET = "cHJveHk6c2VjcmV0LTAxMjM="
EXTRA_HEADERS = {
    "cf-aig-authorization": f"Bearer {PROXY_SECRET}",
    "x-portkey-api-key": PORTKEY_SECRET,
    "proxy-authorization": f"Basic {BASIC_SECRET}",
}
SECRETS = ("sk-upstream-secret", PROXY_SECRET, PORTKEY_SECRET, BASIC_SECRET)


def setup(stage, **provider_extra) -> dict[str, str]:
    """One public model per provider kind (`m-<kind>` -> `up-<kind>`); keys for a hostile
    tenant, an ordinary one and a debug-flagged one."""
    stage.apply(
        providers=[stage.provider(kind, **provider_extra) for kind in KINDS],
        models=[
            stage.model(f"m-{kind}", [{"provider": f"{kind}-fake", "upstream_model": f"up-{kind}"}])
            for kind in KINDS
        ],
        tenants=[{"name": "mallory"}, {"name": "alice"}],
    )
    return {
        "mallory": stage.tenant_key("mallory"),
        "alice": stage.tenant_key("alice"),
        "debug": stage.tenant_key("mallory", allow_debug=True),
    }


def post(stage, key: str, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(
        stage.gateway.url + "/v1/messages",
        json=body,
        headers={"x-api-key": key, **headers},
        timeout=30,
    )


def user(*blocks: dict) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "look"}, *blocks]}]


IMAGE_BY_URL = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
DOCUMENT_BY_URL = {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}
HOSTILE_OPTIONS = {
    "model": "gpt-the-dearest",
    "max_tokens": 999999,
    "max_completion_tokens": 999999,
    "max_output_tokens": 999999,
    "n": 8,
    "store": True,
    "previous_response_id": "resp_of_another_tenant",
    "stream_options": {"include_usage": False},
    "generationConfig": {"maxOutputTokens": 999999, "candidateCount": 8},
    "contents": [{"role": "user", "parts": [{"text": "something else"}]}],
}
# (public model, body, status, a script for the upstream or None): each refused before the
# network, or answered badly because of what the client sent.
HOSTILE_MIX = [
    ("m-openai", {"messages": user({"type": "mystery_block", "x": 1})}, 400, None),
    ("m-gemini", {"messages": user(IMAGE_BY_URL)}, 400, None),
    ("m-openai", {"messages": user(DOCUMENT_BY_URL)}, 400, None),
    # Gemini fetches with url_context; Responses has no fetch tool.
    (
        "m-openai_responses",
        {"tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]},
        400,
        None,
    ),
    ("m-openai", {"provider_options": {"openai": HOSTILE_OPTIONS}}, 200, None),
    ("m-openai_responses", {"provider_options": {"openai": HOSTILE_OPTIONS}}, 200, None),
    ("m-anthropic", {"mystery_field": 1}, 502, {"status": 200, "error_body": "not a message"}),
    ("m-anthropic", {}, 400, {"status": 400}),
    (
        "m-gemini",
        {"provider_options": {"google": {"cached_content": "cachedContents/not-yours"}}},
        500,
        {"status": 403},
    ),
]


def route_failures() -> dict[str, int]:
    return {
        route.model.name: breaker.health(route.pk).failures
        for route in Route.objects.select_related("model")
    }


def test_a_hundred_hostile_requests_leave_every_route_open_for_the_next_tenant(hostile):
    keys = setup(hostile)
    for i in range(100):
        model, body, status, script = HOSTILE_MIX[i % len(HOSTILE_MIX)]
        if script is not None:
            hostile.upstream.script(f"up-{model[2:]}", script)
        answer = post(hostile, keys["mallory"], {**ASK, "model": model, **body})
        assert answer.status_code == status, (model, body, answer.text)
        if status != 200:
            assert answer.json()["type"] == "error"
    # Each answer that went upstream went once: nothing was retried on the same route.
    assert len(hostile.upstream.requests("up-anthropic")) == 2 * 11
    assert len(hostile.upstream.requests("up-gemini")) == 11

    for kind in KINDS:
        began = time.monotonic()
        served = post(hostile, keys["alice"], {**ASK, "model": f"m-{kind}"})
        assert served.status_code == 200, served.text
        assert time.monotonic() - began < 2.0
    assert set(route_failures().values()) == {0}
    assert_healthy(hostile)


def test_a_real_provider_failure_still_opens_the_breaker_with_one_call_per_probe(hostile):
    keys = setup(hostile)
    hostile.upstream.script("up-openai", *[{"status": 500}] * 6)
    ask = {**ASK, "model": "m-openai"}

    for _ in range(3):
        assert_error_shape(post(hostile, keys["alice"], ask), 500, "api_error")

    # 2 + 2 + 1 calls: the fifth failure opened the breaker and was not retried behind it.
    assert len(hostile.upstream.requests("up-openai")) == 5
    refused = assert_error_shape(post(hostile, keys["alice"], ask), 529, "overloaded_error")
    assert "circuit open" in refused["message"]
    assert len(hostile.upstream.requests("up-openai")) == 5


@pytest.mark.parametrize("kind", KINDS)
def test_provider_options_never_pick_the_model_or_the_output_budget(hostile, kind):
    keys = setup(hostile)
    family = FAMILY.get(kind, "anthropic")
    body = {**ASK, "model": f"m-{kind}", "provider_options": {family: HOSTILE_OPTIONS}}

    answer = post(hostile, keys["mallory"], body)

    assert answer.status_code == 200, answer.text
    assert f"provider_options.{family}.model dropped" in answer.headers["tollgate-warnings"]
    (sent,) = hostile.upstream.requests(f"up-{kind}")
    assert sent["model"] == f"up-{kind}"
    upstream = sent["body"]
    for name in HOSTILE_OPTIONS:
        assert name not in upstream or upstream[name] != HOSTILE_OPTIONS[name], name
    budget = {
        "openai": upstream.get("max_tokens"),
        "openai_responses": upstream.get("max_output_tokens"),
        "gemini": upstream.get("generationConfig", {}).get("maxOutputTokens"),
        "anthropic": upstream.get("max_tokens"),
    }[kind]
    assert budget == 20

    strict = post(hostile, keys["mallory"], body, **{"x-tollgate-strictness": "error"})
    refused = assert_error_shape(strict, 400, "invalid_request_error")
    assert refused["message"].startswith(f"provider_options.{family}.model: not supported")
    assert len(hostile.upstream.requests(f"up-{kind}")) == 1  # nothing more went upstream


def test_option_names_cannot_inject_headers_or_flood_the_response(hostile):
    keys = setup(hostile)
    junk = {"a\r\nx-injected: yes": 1, **{f"junk_{i}": i for i in range(5000)}}
    body = {**ASK, "model": "m-openai", "provider_options": {"openai": junk}}

    answer = post(hostile, keys["mallory"], body)

    assert answer.status_code == 200, answer.text
    assert "x-injected" not in answer.headers
    warning = answer.headers["tollgate-warnings"]
    assert len(warning) < 4000 and warning.endswith(
        "4981 more fields dropped: not supported by provider openai-fake"
    )
    assert_healthy(hostile)


def stored_provider_rows() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM providers_provider")
        return json.dumps(cursor.fetchall(), default=str)


def test_a_debug_key_never_sees_a_credential_and_the_logs_hold_none(hostile):
    keys = setup(hostile, headers=EXTRA_HEADERS)
    ask = {**ASK, "model": "m-openai"}
    debug = {"enabled": True, "return_upstream_request": True, "return_upstream_response": True}

    shown = post(hostile, keys["debug"], {**ask, "debug": debug, "echo_upstream_request": True})

    assert shown.status_code == 200, shown.text
    headers = shown.json()["debug"]["upstream_request"]["headers"]
    assert {name: headers[name] for name in EXTRA_HEADERS} == dict.fromkeys(
        EXTRA_HEADERS, "<redacted>"
    )
    assert headers["authorization"] == "<redacted>"
    assert not [s for s in SECRETS if s in shown.text]

    echo = "; ".join(f"{name}: {value}" for name, value in EXTRA_HEADERS.items())
    leaky = {"error": {"message": f"bad request, you sent sk-upstream-secret and {echo}"}}
    hostile.upstream.script("up-openai", {"status": 400, "error_body": leaky})
    refused = assert_error_shape(post(hostile, keys["debug"], ask), 400, "invalid_request_error")
    assert "<redacted>" in refused["message"]
    assert not [s for s in SECRETS if s in refused["message"]]

    hostile.upstream.script("up-openai", *[{"status": 500, "error_body": leaky}] * 2)
    failed = post(hostile, keys["debug"], {**ask, "stream": True})
    assert failed.status_code == 500 and "<redacted>" in failed.text
    assert not [s for s in SECRETS if s in failed.text]

    time.sleep(0.2)  # the log line is written by another process
    log = hostile.gateway.log()
    assert "route openai-fake failed (500)" in log
    assert not [s for s in SECRETS if s in log]
    assert not [s for s in SECRETS if s in stored_provider_rows()]
    assert Provider.objects.get(name="openai-fake").extra_headers == EXTRA_HEADERS
