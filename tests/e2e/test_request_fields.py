"""The Messages API's newer request fields through every provider kind, with the official SDK
(2.17 types them): each is mapped, passed to Anthropic, or reported under the strictness rules,
and never dropped silently (issue 13 points 3 to 6)."""

import json
from typing import Any

import anthropic
import httpx
import pytest

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}},
    "required": ["city", "temperature_c"],
    "additionalProperties": False,
}
FORMAT = {"format": {"type": "json_schema", "schema": SCHEMA}}
HELLO = [{"role": "user", "content": "Weather in Lima?"}]
# Each kind with an upstream model of the family the test needs (OpenAI reasoning models by name).
UPSTREAM = {
    "anthropic": "claude-up",
    "openai": "gpt-5-mini",
    "openai_responses": "gpt-5",
    "gemini": "gemini-2.5-flash",
    "demo": "demo-1",
}
TRANSLATED = ["openai", "openai_responses", "gemini", "demo"]


def route(stage, kind: str, upstream_model: str | None = None) -> anthropic.Anthropic:
    provider = {"name": "demo-fake", "kind": "demo"} if kind == "demo" else stage.provider(kind)
    upstream = upstream_model or UPSTREAM[kind]
    stage.apply(
        providers=[provider],
        models=[
            stage.model("claude-test", [{"provider": f"{kind}-fake", "upstream_model": upstream}])
        ],
        tenants=[{"name": "acme"}],
    )
    return stage.client(stage.tenant_key("acme"))


def sent(stage, kind: str, upstream_model: str | None = None) -> dict[str, Any]:
    return stage.upstream.requests(upstream_model or UPSTREAM[kind])[-1]


def create(client: anthropic.Anthropic, **fields: Any):
    """The SDK call and its raw response (for `tollgate-warnings`)."""
    fields = {"model": "claude-test", "max_tokens": 2048, "messages": HELLO, **fields}
    raw = client.messages.with_raw_response.create(**fields)
    return raw.parse(), raw.headers


# --- Point 3: output_config.format ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["openai", "openai_responses", "gemini"])
def test_output_format_reaches_each_provider_in_its_shape_and_the_answer_is_json(stage, kind):
    message, headers = create(route(stage, kind), output_config=FORMAT)
    assert "tollgate-warnings" not in headers
    assert json.loads(message.content[0].text) == {"city": "x", "temperature_c": 1}
    body = sent(stage, kind)["body"]
    named = {"name": "output", "schema": SCHEMA, "strict": False}
    if kind == "openai":
        assert body["response_format"] == {"type": "json_schema", "json_schema": named}
    elif kind == "openai_responses":
        assert body["text"]["format"] == {"type": "json_schema", **named}
    else:
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"] == SCHEMA


@pytest.mark.parametrize("kind", ["openai", "openai_responses", "gemini"])
def test_output_format_holds_in_a_stream(stage, kind):
    client = route(stage, kind)
    with client.messages.stream(
        model="claude-test", max_tokens=2048, messages=HELLO, output_config=FORMAT
    ) as stream:
        final = stream.get_final_message()
    assert json.loads(final.content[0].text) == {"city": "x", "temperature_c": 1}


def test_output_format_passes_to_anthropic_as_sent(stage):
    create(route(stage, "anthropic"), output_config=FORMAT)
    assert sent(stage, "anthropic")["body"]["output_config"] == FORMAT


def test_the_demo_provider_answers_json_for_a_schema(stage):
    message, headers = create(route(stage, "demo"), output_config=FORMAT)
    assert json.loads(message.content[0].text) == {"city": "demo", "temperature_c": 1}
    assert "tollgate-warnings" not in headers


def test_a_malformed_output_format_is_a_400_before_any_upstream_call(stage):
    client = route(stage, "openai")
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(client, output_config={"format": {"type": "json_schema"}})
    assert caught.value.body["error"]["message"] == "output_config.format.schema: Field required"
    assert stage.upstream.requests(UPSTREAM["openai"]) == []


# --- Point 4: effort without thinking, adaptive thinking ----------------------------------------
@pytest.mark.parametrize(
    ("kind", "upstream_model", "path", "value"),
    [
        ("openai", "gpt-5-mini", ("reasoning_effort",), "low"),
        ("openai_responses", "gpt-5", ("reasoning",), {"effort": "low"}),
        (
            "gemini",
            "gemini-2.5-flash",
            ("generationConfig", "thinkingConfig"),
            {"thinkingBudget": 1024, "includeThoughts": False},
        ),
        (
            "gemini",
            "gemini-3-pro-preview",
            ("generationConfig", "thinkingConfig"),
            {"thinkingLevel": "LOW", "includeThoughts": False},
        ),
        ("anthropic", "claude-up", ("output_config",), {"effort": "low"}),
    ],
)
def test_effort_alone_steers_the_provider_without_asking_for_thinking(
    stage, kind, upstream_model, path, value
):
    message, headers = create(route(stage, kind, upstream_model), output_config={"effort": "low"})
    assert "tollgate-warnings" not in headers
    assert [block.type for block in message.content] == ["text"]
    body = sent(stage, kind, upstream_model)["body"]
    for key in path:
        body = body[key]
    assert body == value


def test_effort_on_a_model_that_cannot_reason_is_reported_or_refused(stage):
    client = route(stage, "openai", "gpt-4.1")
    _, headers = create(client, output_config={"effort": "high"})
    assert headers["tollgate-warnings"] == (
        "output_config.effort dropped: not supported by provider openai-fake"
    )
    assert "reasoning_effort" not in sent(stage, "openai", "gpt-4.1")["body"]
    strict = client.with_options(default_headers={"x-tollgate-strictness": "error"})
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(strict, output_config={"effort": "high"})
    assert caught.value.body["error"]["message"] == (
        "output_config.effort: not supported by provider openai-fake (strictness: error)"
    )


@pytest.mark.parametrize("kind", ["openai", "openai_responses"])
def test_an_effort_openai_lacks_is_sent_as_the_nearest_and_reported(stage, kind):
    _, headers = create(route(stage, kind), output_config={"effort": "max"})
    assert headers["tollgate-warnings"] == (
        "output_config.effort `max` (sent as `high`) dropped: "
        f"not supported by provider {kind}-fake"
    )
    body = sent(stage, kind)["body"]
    effort = body["reasoning_effort"] if kind == "openai" else body["reasoning"]["effort"]
    assert effort == "high"


@pytest.mark.parametrize(
    ("kind", "upstream_model", "effort", "expected"),
    [
        ("openai", "gpt-5-mini", None, {}),  # the model's default effort
        ("openai", "gpt-5-mini", "medium", {"reasoning_effort": "medium"}),
        (
            "gemini",
            "gemini-2.5-flash",
            None,
            {"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}},
        ),
        ("gemini", "gemini-3-pro-preview", None, {"thinkingConfig": {"includeThoughts": True}}),
    ],
)
def test_adaptive_thinking_lets_the_provider_decide(stage, kind, upstream_model, effort, expected):
    extra = {"output_config": {"effort": effort}} if effort else {}
    _, headers = create(route(stage, kind, upstream_model), thinking={"type": "adaptive"}, **extra)
    assert "tollgate-warnings" not in headers
    body = sent(stage, kind, upstream_model)["body"]
    if kind == "gemini":
        body = body["generationConfig"]
    assert {k: body[k] for k in ("reasoning_effort", "thinkingConfig") if k in body} == expected


# --- Point 5: service_tier ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["openai", "openai_responses"])
@pytest.mark.parametrize(("tier", "openai_tier"), [("auto", "auto"), ("standard_only", "default")])
def test_service_tier_maps_to_openai_and_the_answered_tier_comes_back(
    stage, kind, tier, openai_tier
):
    message, headers = create(route(stage, kind), service_tier=tier)
    assert sent(stage, kind)["body"]["service_tier"] == openai_tier
    assert message.usage.service_tier == "standard"  # the fake answers `default`
    assert "tollgate-warnings" not in headers


@pytest.mark.parametrize("kind", ["openai", "openai_responses"])
def test_a_priority_answer_is_priority_in_json_and_in_the_stream(stage, kind):
    client = route(stage, kind)
    stage.upstream.script(
        UPSTREAM[kind], {"service_tier": "priority"}, {"service_tier": "priority"}
    )
    message, _ = create(client, service_tier="auto")
    assert message.usage.service_tier == "priority"
    with client.messages.stream(
        model="claude-test", max_tokens=100, messages=HELLO, service_tier="auto"
    ) as stream:
        final_usage = [e.usage for e in stream if e.type == "message_delta"][-1]
    assert final_usage.model_extra["service_tier"] == "priority"


def test_a_flex_answer_is_standard_capacity(stage):
    client = route(stage, "openai")
    stage.upstream.script(UPSTREAM["openai"], {"service_tier": "flex"})
    message, _ = create(client)
    assert message.usage.service_tier == "standard"


@pytest.mark.parametrize("kind", ["gemini", "demo"])
def test_service_tier_on_a_provider_with_one_tier_is_served_as_asked(stage, kind):
    _, headers = create(route(stage, kind), service_tier="standard_only")
    assert "tollgate-warnings" not in headers
    if kind == "gemini":
        assert "service_tier" not in json.dumps(sent(stage, kind)["body"])


def test_service_tier_passes_to_anthropic(stage):
    create(route(stage, "anthropic"), service_tier="standard_only")
    assert sent(stage, "anthropic")["body"]["service_tier"] == "standard_only"


# --- Point 6: fields only Anthropic has ---------------------------------------------------------
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
CACHED_TURN = [
    {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": ONE_HOUR}]}
]
# field -> (SDK arguments, what the warning names)
ANTHROPIC_ONLY: dict[str, tuple[dict[str, Any], str]] = {
    "speed": ({"speed": "fast"}, "speed"),
    "inference_geo": ({"inference_geo": "us"}, "inference_geo"),
    "diagnostics": ({"diagnostics": {"previous_message_id": None}}, "diagnostics"),
    "cache_control": ({"cache_control": ONE_HOUR}, "cache_control"),
    "container": ({"container": "container_011abc"}, "container"),
    "context_management": (
        {"extra_body": {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}},
        "context_management",
    ),
    "mcp_servers": (
        {
            "extra_body": {
                "mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "docs"}]
            }
        },
        "mcp_servers",
    ),
    "block cache_control ttl": (
        {"messages": CACHED_TURN},
        "cache_control ttl `1h` (messages.0.content.0)",
    ),
}


@pytest.mark.parametrize("field", list(ANTHROPIC_ONLY))
@pytest.mark.parametrize("kind", TRANSLATED)
def test_an_anthropic_only_field_is_reported_off_anthropic_and_refused_under_error(
    stage, kind, field
):
    arguments, named = ANTHROPIC_ONLY[field]
    client = route(stage, kind)
    with_meta = {**arguments, "extra_body": {**arguments.get("extra_body", {}), "meta": True}}
    message, headers = create(client, **with_meta)
    provider = f"{kind}-fake"
    warning = f"{named} dropped: not supported by provider {provider}"
    assert headers["tollgate-warnings"] == warning
    assert message.model_extra["meta"]["warnings"] == [warning]
    assert message.content
    strict = client.with_options(default_headers={"x-tollgate-strictness": "error"})
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(strict, **arguments)
    assert caught.value.body["error"]["message"] == (
        f"{named}: not supported by provider {provider} (strictness: error)"
    )


@pytest.mark.parametrize("field", list(ANTHROPIC_ONLY))
def test_an_anthropic_only_field_passes_to_anthropic_unchanged(stage, field):
    arguments, _ = ANTHROPIC_ONLY[field]
    _, headers = create(route(stage, "anthropic"), **arguments)
    assert "tollgate-warnings" not in headers
    body = sent(stage, "anthropic")["body"]
    wire = {**arguments.get("extra_body", {}), **arguments}
    wire.pop("extra_body", None)
    for name, value in wire.items():
        assert body[name] == value


@pytest.mark.parametrize("kind", [*TRANSLATED, "anthropic"])
def test_workspace_and_user_profile_reach_no_upstream(stage, kind):
    """They choose the workspace or profile of the operator's credential: never a tenant's."""
    client = route(stage, kind)
    _, headers = create(client, workspace_id="wrkspc_01abc", user_profile_id="up_01abc")
    provider = f"{kind}-fake"
    assert headers["tollgate-warnings"] == (
        f"workspace_id (anthropic-workspace-id header) dropped: not supported by provider "
        f"{provider}; user_profile_id (anthropic-user-profile-id header) dropped: not "
        f"supported by provider {provider}"
    )
    if kind != "demo":
        request = sent(stage, kind)
        assert not {"anthropic-workspace-id", "anthropic-user-profile-id"} & set(request["headers"])
        assert "wrkspc_01abc" not in json.dumps(request["body"])


def test_workspace_in_the_body_is_not_forwarded_to_anthropic_either(stage):
    client = route(stage, "anthropic")
    key = client.api_key
    response = httpx.post(
        stage.gateway.url + "/v1/messages",
        json={"model": "claude-test", "max_tokens": 10, "messages": HELLO, "workspace_id": "w"},
        headers={"x-api-key": key, "x-tollgate-strictness": "error"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "workspace_id: not supported by provider anthropic-fake (strictness: error)"
    )
    assert stage.upstream.requests(UPSTREAM["anthropic"]) == []


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", TRANSLATED)
def test_a_tool_only_anthropic_runs_is_refused_with_a_400_naming_it(stage, kind, stream):
    client = route(stage, kind)
    computer = {
        "type": "computer_20250124",
        "name": "computer",
        "display_width_px": 1024,
        "display_height_px": 768,
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude-test", max_tokens=100, messages=HELLO, tools=[computer], stream=stream
        )
    assert caught.value.body["error"]["message"].startswith(
        "tools.0 (server tool `computer_20250124`)"
    )
