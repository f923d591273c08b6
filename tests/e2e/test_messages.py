"""`POST /v1/messages` end to end: official SDK -> real gateway -> fake upstream."""

import time

import anthropic
import httpx
import pytest

from accounts.selectors import api_key_find
from accounts.services import api_key_revoke

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_openai_compatible_upstream_answers_in_anthropic_format(stage):
    key = stage.one_route("openai", "gpt-test")
    message = stage.client(key).messages.create(
        model="claude-test",
        max_tokens=100,
        system="Be terse.",
        messages=[{"role": "user", "content": "What is the capital of Peru?"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-test"
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "echo: What is the capital of Peru?"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    sent = stage.upstream.requests("gpt-test")[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be terse."}
    assert sent["auth_present"]


def test_openai_tool_calls_come_back_as_tool_use_blocks(stage):
    key = stage.one_route("openai", "gpt-tools")
    stage.upstream.script(
        "gpt-tools",
        {
            "blocks": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "name": "get_weather",
                    "input": {"city": "Lima"},
                    "id": "call_A1",
                },
                {
                    "type": "tool_use",
                    "name": "get_weather",
                    "input": {"city": "Quito"},
                    "id": "call_B2",
                },
            ],
            "stop_reason": "tool_use",
        },
    )
    message = stage.client(key).messages.create(
        model="claude-test",
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Lima and Quito?"}],
    )
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    calls = message.content[1:]
    assert [(c.id, c.name, c.input) for c in calls] == [
        ("call_A1", "get_weather", {"city": "Lima"}),
        ("call_B2", "get_weather", {"city": "Quito"}),
    ]
    assert message.stop_reason == "tool_use"
    tools_sent = stage.upstream.requests("gpt-tools")[-1]["body"]["tools"]
    assert tools_sent == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]


def test_tool_result_round_trip_reaches_openai_as_tool_messages(stage):
    key = stage.one_route("openai", "gpt-loop")
    stage.client(key).messages.create(
        model="claude-test",
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Lima?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Lima"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
            },
        ],
    )
    messages = stage.upstream.requests("gpt-loop")[-1]["body"]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "toolu_1"
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"city":"Lima"}'
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}


def test_anthropic_upstream_receives_every_client_field_and_beta_header(stage):
    key = stage.one_route("anthropic", "claude-upstream-1")
    client = stage.client(key, default_headers={"anthropic-beta": "context-1m-2025-08-07"})
    message = client.messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        metadata={"user_id": "u-1"},
        extra_body={"context_management": {"edits": []}, "meta": True},
    )
    assert message.model == "claude-test"
    assert message.content[0].text == "echo: hi"
    sent = stage.upstream.requests("claude-upstream-1")[-1]
    assert sent["body"]["model"] == "claude-upstream-1"
    assert sent["body"]["metadata"] == {"user_id": "u-1"}
    assert sent["body"]["context_management"] == {"edits": []}
    assert "meta" not in sent["body"]  # gateway extras never go upstream
    assert sent["headers"]["anthropic-beta"] == "context-1m-2025-08-07"
    assert sent["headers"]["x-api-key"] == "<redacted>"


def test_demo_provider_needs_no_network(stage):
    stage.apply(
        providers=[{"name": "demo", "kind": "demo"}],
        models=[stage.model("claude-demo", [{"provider": "demo", "upstream_model": "demo-1"}])],
        tenants=[{"name": "acme"}],
    )
    key = stage.tenant_key("acme")
    message = stage.client(key).messages.create(
        model="claude-demo", max_tokens=50, messages=[{"role": "user", "content": "hello"}]
    )
    assert "You said: hello" in message.content[0].text


def test_bearer_auth_is_accepted(stage):
    key = stage.one_route("openai", "gpt-bearer")
    client = anthropic.Anthropic(base_url=stage.gateway.url, auth_token=key, max_retries=0)
    message = client.messages.create(
        model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert message.content[0].text == "echo: x"


def test_wrong_or_missing_key_is_401_with_request_id(stage):
    stage.one_route("openai", "gpt-auth")
    with pytest.raises(anthropic.AuthenticationError) as caught:
        stage.client("tg_not-a-real-key").messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert caught.value.request_id.startswith("req_")
    response = httpx.post(stage.gateway.url + "/v1/messages", json={})
    assert response.status_code == 401
    assert response.json()["type"] == "error"


def test_model_outside_tenant_list_is_the_same_404_as_an_unknown_model(stage):
    stage.apply(
        providers=[stage.provider("openai")],
        models=[
            stage.model("claude-a", [{"provider": "openai-fake", "upstream_model": "gpt-a"}]),
            stage.model("claude-b", [{"provider": "openai-fake", "upstream_model": "gpt-b"}]),
        ],
        tenants=[{"name": "acme", "models": ["claude-a"]}],
    )
    client = stage.client(stage.tenant_key("acme"))
    ask = {"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    assert client.messages.create(model="claude-a", **ask).content[0].text == "echo: x"
    with pytest.raises(anthropic.NotFoundError) as not_allowed:
        client.messages.create(model="claude-b", **ask)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="claude-nope", **ask)
    assert unknown.value.body["error"] == {
        "type": "not_found_error",
        "message": "model: unknown model `claude-nope`",
    }
    assert not_allowed.value.body["error"] == {
        "type": "not_found_error",
        "message": "model: unknown model `claude-b`",
    }


def test_key_limited_to_models_gets_404_for_the_others(stage):
    stage.one_route("openai", "gpt-k")
    key = stage.tenant_key("acme", models=["claude-test"])
    ask = {"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    assert stage.client(key).messages.create(model="claude-test", **ask)
    stage.apply(
        providers=[stage.provider("openai")],
        models=[
            stage.model("claude-other", [{"provider": "openai-fake", "upstream_model": "gpt-o"}])
        ],
        tenants=[],
    )
    with pytest.raises(anthropic.NotFoundError) as caught:
        stage.client(key).messages.create(model="claude-other", **ask)
    assert caught.value.body["error"]["message"] == "model: unknown model `claude-other`"


def test_bad_field_is_400_naming_the_field(stage):
    key = stage.one_route("openai", "gpt-400")
    response = httpx.post(
        stage.gateway.url + "/v1/messages",
        headers={"x-api-key": key},
        json={
            "model": "claude-test",
            "max_tokens": "ten",
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("max_tokens:")
    assert response.headers["request-id"] == body["request_id"]
    assert float(response.headers["tollgate-overhead-ms"]) >= 0  # errors carry it too
    malformed = httpx.post(
        stage.gateway.url + "/v1/messages",
        headers={"x-api-key": key},
        content=b'{"model": "claude-test",',
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"


def test_oversized_body_is_413(stage):
    key = stage.one_route("openai", "gpt-413")
    huge = "x" * (5 * 1024 * 1024)  # the e2e gateway runs with a 4 MiB limit
    with pytest.raises(anthropic.APIStatusError) as caught:
        stage.client(key).messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": huge}]
        )
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"


def test_revoked_key_is_refused_within_5_seconds(stage):
    key = stage.one_route("openai", "gpt-revoke")
    client = stage.client(key)
    ask = {"model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    client.messages.create(**ask)  # warm every cache
    api_key_revoke(key=api_key_find(ref=key))
    revoked_at = time.monotonic()
    while True:
        try:
            client.messages.create(**ask)
        except anthropic.AuthenticationError:
            break
        assert time.monotonic() - revoked_at < 5, "revoked key still accepted after 5 s"
        time.sleep(0.1)


def test_upstream_errors_are_mapped_and_fall_back(stage):
    stage.apply(
        providers=[stage.provider("openai", "first"), stage.provider("openai", "second")],
        models=[
            stage.model(
                "claude-test",
                [
                    {"provider": "first", "upstream_model": "gpt-flaky", "priority": 1},
                    {"provider": "second", "upstream_model": "gpt-steady", "priority": 2},
                ],
            )
        ],
        tenants=[{"name": "acme"}],
    )
    client = stage.client(stage.tenant_key("acme"))
    ask = {"model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    stage.upstream.script("gpt-flaky", {"status": 500}, {"status": 500})  # a retry, then next
    assert client.messages.create(**ask).content[0].text == "echo: x"
    assert len(stage.upstream.requests("gpt-flaky")) == 2
    assert len(stage.upstream.requests("gpt-steady")) == 1
    # A success ends the flaky route's failure streak: a third failure in a row would open its
    # breaker (e2e settings), and a retry is never made behind a breaker that just opened.
    client.messages.create(**ask)

    stage.upstream.script("gpt-flaky", *[{"status": 429, "headers": {"retry-after": "1"}}] * 2)
    stage.upstream.script("gpt-steady", {"status": 503}, {"status": 503})
    began = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**ask)
    assert time.monotonic() - began >= 1  # retry-after was honoured before the retry
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_upstream_client_error_is_returned_at_once_without_fallback(stage):
    stage.apply(
        providers=[stage.provider("openai", "first"), stage.provider("openai", "second")],
        models=[
            stage.model(
                "claude-test",
                [
                    {"provider": "first", "upstream_model": "gpt-strict", "priority": 1},
                    {"provider": "second", "upstream_model": "gpt-other", "priority": 2},
                ],
            )
        ],
        tenants=[{"name": "acme"}],
    )
    client = stage.client(stage.tenant_key("acme"))
    too_long = {"message": "context_length_exceeded: too long", "type": "invalid_request_error"}
    stage.upstream.script("gpt-strict", {"status": 400, "error_body": {"error": too_long}})
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert "too long" in caught.value.body["error"]["message"]
    assert len(stage.upstream.requests("gpt-strict")) == 1  # not retried
    assert stage.upstream.requests("gpt-other") == []  # and not sent elsewhere


def test_unknown_v1_path_is_anthropic_shaped_404(stage):
    response = httpx.get(stage.gateway.url + "/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_stop_sequence_reports_which_one_matched_on_translated_routes(stage, stream):
    key = stage.one_route("openai", "gpt-stops")
    stage.upstream.script(
        "gpt-stops",
        {
            "blocks": [{"type": "text", "text": "The answer is 42.\nEND of answer, and more text"}],
            "text_chunk_size": 3,
        },
    )
    ask = {
        "model": "claude-test",
        "max_tokens": 100,
        "stop_sequences": ["STOP", "END"],
        "messages": [{"role": "user", "content": "x"}],
    }
    client = stage.client(key)
    if stream:
        with client.messages.stream(**ask) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**ask)
    assert message.content[0].text == "The answer is 42.\n"
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert "stop" not in stage.upstream.requests("gpt-stops")[-1]["body"]  # matched by us


REFUSAL = {"category": "general_harms", "explanation": "I can't help with that."}
# What each provider's refusal shape lets the gateway say: OpenAI gives only the model's words.
REFUSAL_SEEN = {
    "anthropic": ("general_harms", "I can't help with that."),
    "gemini": ("general_harms", "I can't help with that."),
    "openai": (None, "I can't help with that."),
    "openai_responses": (None, "I can't help with that."),
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", list(REFUSAL_SEEN))
def test_a_refusal_carries_stop_details_through_every_provider(stage, kind, stream):
    key = stage.one_route(kind, "up-refusing")
    refusal = {"blocks": [], "stop_reason": "refusal", "stop_details": REFUSAL}
    stage.upstream.script("up-refusing", refusal)
    ask = {"model": "claude-test", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}
    client = stage.client(key)
    if stream:
        with client.messages.stream(**ask) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**ask)

    assert message.stop_reason == "refusal"
    assert message.stop_details is not None and message.stop_details.type == "refusal"
    category, explanation = REFUSAL_SEEN[kind]
    assert (message.stop_details.category, message.stop_details.explanation) == (
        category,
        explanation,
    )


def test_an_ordinary_answer_has_no_stop_details(stage):
    key = stage.one_route("gemini", "up-plain")
    ask = {"model": "claude-test", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}
    raw = stage.client(key).messages.with_raw_response.create(**ask)
    assert "stop_details" not in raw.http_response.json()
