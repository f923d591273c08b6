"""State a tool call owes the next turn (Gemini 3 thought signatures, Responses reasoning),
kept by the gateway per tenant when the client (Claude Code) sends the call back without it."""

import httpx
import pytest

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALL = {"blocks": [{"type": "tool_use", "name": "get_weather", "input": {"city": "Lima"}}]}
PLACEHOLDER = "skip_thought_signature_validator"


def setup(stage, kind: str, upstream_model: str) -> tuple[str, str]:
    stage.apply(
        providers=[stage.provider(kind)],
        models=[
            stage.model(
                "claude-tools", [{"provider": f"{kind}-fake", "upstream_model": upstream_model}]
            )
        ],
        tenants=[{"name": "acme"}, {"name": "evil"}],
    )
    return stage.tenant_key("acme"), stage.tenant_key("evil")


def first_turn(client, stream: bool, **extra):
    ask = {
        "model": "claude-tools",
        "max_tokens": 4096,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": "Weather in Lima?"}],
        **extra,
    }
    if stream:
        with client.messages.stream(**ask) as events:
            return events.get_final_message()
    return client.messages.create(**ask)


def second_turn(client, call_id: str, **extra):
    """What Claude Code sends next: the call as a tool_use block (no room for a signature)."""
    return client.messages.create(
        model="claude-tools",
        max_tokens=4096,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Lima?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": "get_weather",
                        "input": {"city": "Lima"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "18 C"}],
            },
        ],
        **extra,
    )


def sent_call_signature(stage, model: str) -> str | None:
    contents = stage.upstream.requests(model)[-1]["body"]["contents"]
    calls = [p for c in contents for p in c["parts"] if "functionCall" in p]
    return calls[0].get("thoughtSignature")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_gemini_3_gets_back_the_signature_of_a_call_the_client_sent_without_it(stage, stream):
    acme, _ = setup(stage, "gemini", "gemini-3-pro-preview")
    client = stage.client(acme)
    stage.upstream.script("gemini-3-pro-preview", CALL)
    first = first_turn(client, stream)
    call = first.content[0]
    assert call.type == "tool_use" and first.stop_reason == "tool_use"
    issued = stage.upstream.requests("gemini-3-pro-preview")  # the fake's answer was signed
    assert len(issued) == 1

    answer = second_turn(client, call.id)

    assert answer.stop_reason == "end_turn"
    signature = sent_call_signature(stage, "gemini-3-pro-preview")
    assert signature is not None and signature.startswith("ZmFrZS1jYWxs")  # the one issued


def test_another_tenant_sending_the_same_tool_use_id_never_gets_the_signature(stage):
    acme, evil = setup(stage, "gemini", "gemini-3-pro-preview")
    stage.upstream.script("gemini-3-pro-preview", CALL)
    call = first_turn(stage.client(acme), False).content[0]

    second_turn(stage.client(evil), call.id)

    assert sent_call_signature(stage, "gemini-3-pro-preview") == PLACEHOLDER


def test_a_call_the_gateway_never_saw_goes_with_the_placeholder(stage):
    acme, _ = setup(stage, "gemini", "gemini-3-pro-preview")
    answer = second_turn(stage.client(acme), "toolu_01NeverIssuedByAnyone0000")
    assert answer.stop_reason == "end_turn"
    assert sent_call_signature(stage, "gemini-3-pro-preview") == PLACEHOLDER


def test_the_fake_gemini_3_refuses_a_call_without_signature_in_geminis_shape(stage):
    """The behaviour the gateway is tested against: Gemini 3 answers 400 INVALID_ARGUMENT,
    which reaches the client as the request's fault."""
    contents = [
        {"role": "user", "parts": [{"text": "Weather in Lima?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {}}}]},
    ]
    url = stage.upstream.url + "/v1beta/models/gemini-3-pro-preview:generateContent"
    response = httpx.post(url, json={"contents": contents}, headers={"x-goog-api-key": "k"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and "thought_signature" in error["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_responses_reasoning_is_replayed_before_the_call_when_the_client_dropped_thinking(
    stage, stream
):
    acme, evil = setup(stage, "openai_responses", "gpt-5-reasoning")
    client = stage.client(acme)
    think = {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    stage.upstream.script(
        "gpt-5-reasoning",
        {"blocks": [{"type": "thinking", "thinking": "Look it up."}, CALL["blocks"][0]]},
    )
    first = first_turn(client, stream, **think)
    call = next(b for b in first.content if b.type == "tool_use")

    second_turn(client, call.id, **think)  # the thinking block is not sent back
    items = stage.upstream.requests("gpt-5-reasoning")[-1]["body"]["input"]
    kinds = [i.get("type") for i in items]
    assert kinds.index("reasoning") == kinds.index("function_call") - 1
    reasoning = items[kinds.index("reasoning")]
    assert reasoning["encrypted_content"] and reasoning["id"]

    second_turn(stage.client(evil), call.id, **think)
    items = stage.upstream.requests("gpt-5-reasoning")[-1]["body"]["input"]
    assert "reasoning" not in [i.get("type") for i in items]
