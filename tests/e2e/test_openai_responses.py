"""`POST /v1/responses` through every provider kind with the official `openai` SDK
(`responses.create`, `responses.stream`): input as a string and as items, instructions,
function tools and their outputs, reasoning replayed statelessly (`store: false` +
`include: ["reasoning.encrypted_content"]`), structured output, and the stream's events in
OpenAI's order, read by the SDK and as raw bytes.

Gateway behaviours (tenancy, limits, extras, usage records, errors, hostile input) are in
test_openai_responses_gateway.py.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

KINDS = ["anthropic", "openai", "openai_responses", "gemini", "demo"]
UPSTREAM = "gemini-3-up-resp"  # a Gemini 3 name: the Gemini fake wants thought signatures back
PUBLIC = "gpt-test"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def route(stage, kind: str, upstream: str = UPSTREAM) -> openai.OpenAI:
    """A client whose key reaches `PUBLIC`, served by one route of `kind`."""
    provider = {"name": "demo-fake", "kind": "demo"} if kind == "demo" else stage.provider(kind)
    stage.apply(
        providers=[provider],
        models=[stage.model(PUBLIC, [{"provider": f"{kind}-fake", "upstream_model": upstream}])],
        tenants=[{"name": "acme"}],
    )
    return client(stage, stage.tenant_key("acme"))


def client(stage, key: str, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=stage.gateway.url + "/v1", api_key=key, max_retries=0, **options)


def sent(stage, upstream: str = UPSTREAM) -> list[dict]:
    """The bodies the fake upstream received for `upstream`, oldest first."""
    return [r["body"] for r in stage.upstream.requests(upstream)]


def echo(kind: str, text: str) -> str:
    if kind == "demo":
        return f"Hello from the Tollgate demo provider. You said: {text}"
    return f"echo: {text}"


# --- create -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_string_input_and_instructions_are_answered_as_output_text(stage, kind):
    gpt = route(stage, kind)
    response = gpt.responses.create(model=PUBLIC, input="hello", instructions="Be brief.")
    assert response.output_text == echo(kind, "hello")
    assert response.status == "completed" and response.model == PUBLIC
    assert response.id.startswith("resp_") and response.instructions == "Be brief."
    [message] = response.output
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )
    assert response._request_id  # the SDK's `x-request-id`
    if kind != "demo":
        [body] = sent(stage)
        assert "Be brief." in json.dumps(body)  # the system prompt in the provider's words


@pytest.mark.parametrize("kind", KINDS)
def test_item_input_keeps_the_conversation_and_system_messages(stage, kind):
    gpt = route(stage, kind)
    response = gpt.responses.create(
        model=PUBLIC,
        input=[
            {"type": "message", "id": "msg_1", "role": "developer", "content": "Dev rules."},
            {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "answer one", "annotations": []}],
            },
            {"role": "user", "content": "second"},
        ],
    )
    assert response.output_text == echo(kind, "second")
    if kind != "demo":
        body = json.dumps(sent(stage)[0])
        assert all(word in body for word in ("Dev rules.", "first", "answer one", "second"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_function_call_and_its_output_make_a_second_turn(stage, kind):
    gpt = route(stage, kind)
    stage.upstream.script(
        UPSTREAM,
        {"blocks": [{"type": "tool_use", "name": "get_weather", "input": {"city": "Lima"}}]},
        {"blocks": [{"type": "text", "text": "It is 14C in Lima."}]},
    )
    ask = [{"role": "user", "content": "Weather in Lima?"}]
    first = gpt.responses.create(
        model=PUBLIC,
        input=ask,
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.status == "completed"
    assert json.loads(call.arguments).keys() == {"city"}
    assert call.id.startswith("fc_") and call.call_id
    assert first.tools[0].name == "get_weather"  # the request's tools, echoed
    history = ask + [item.model_dump(exclude_none=True) for item in first.output]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "14C, dry"}
    second = gpt.responses.create(model=PUBLIC, input=[*history, output], tools=[WEATHER])
    if kind == "demo":
        assert "14C, dry" in second.output_text  # the demo reports what the tool returned
        return
    assert second.output_text == "It is 14C in Lima."
    assert "14C, dry" in json.dumps(sent(stage)[1])


# --- reasoning, replayed without stored state ---------------------------------------------------
REASONING_KINDS = ["anthropic", "openai_responses", "gemini"]


@pytest.mark.parametrize("kind", REASONING_KINDS)
def test_reasoning_comes_back_encrypted_and_is_replayed_to_the_provider(stage, kind):
    upstream = "gemini-3-up-resp-reasoning"  # the fake thinks first for a `-reasoning` model
    gpt = route(stage, kind, upstream)
    stage.upstream.script(
        upstream,
        {
            "blocks": [
                {"type": "thinking", "thinking": "Lima is coastal."},
                {"type": "tool_use", "name": "get_weather", "input": {"city": "Lima"}},
            ]
        },
        {"blocks": [{"type": "text", "text": "Mild."}]},
    )
    ask = [{"type": "message", "id": "msg_u1", "role": "user", "content": "Weather in Lima?"}]
    first = gpt.responses.create(
        model=PUBLIC,
        input=ask,
        tools=[WEATHER],
        reasoning={"effort": "low", "summary": "auto"},
        store=False,
        include=["reasoning.encrypted_content"],
    )
    reasoning, call = first.output[0], first.output[-1]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert [s.text for s in reasoning.summary] == ["Lima is coastal."]
    assert first.reasoning.effort == "low" and first.reasoning.summary == "auto"
    history = ask + [item.model_dump(exclude_none=True) for item in first.output]
    output = {"type": "function_call_output", "id": "fco_1", "call_id": call.call_id,
              "output": "18C"}  # fmt: skip
    second = gpt.responses.create(
        model=PUBLIC,
        input=[*history, output],
        tools=[WEATHER],
        reasoning={"effort": "low", "summary": "auto"},
        store=False,
        include=["reasoning.encrypted_content"],
    )
    assert second.output_text == "Mild."
    replayed = json.dumps(sent(stage, upstream)[1])
    # The provider gets its own signed reasoning back (a Gemini 3 fake refuses a call without).
    assert "Lima is coastal." in replayed or kind == "gemini"
    assert first.usage.output_tokens_details.reasoning_tokens >= 0


@pytest.mark.parametrize("kind", REASONING_KINDS)
def test_reasoning_without_include_has_no_encrypted_content(stage, kind):
    upstream = "up-plain-reasoning"
    gpt = route(stage, kind, upstream)
    response = gpt.responses.create(
        model=PUBLIC, input="think", reasoning={"effort": "low", "summary": "auto"}, store=False
    )
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content is None
    assert response.output_text == "echo: think"


# --- structured output ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_text_format_json_schema_gets_json_that_follows_it(stage, kind):
    gpt = route(stage, kind)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
        "required": ["city", "temp"],
        "additionalProperties": False,
    }
    response = gpt.responses.create(
        model=PUBLIC,
        input="Weather as JSON",
        text={"format": {"type": "json_schema", "name": "weather", "schema": schema}},
    )
    answer = json.loads(response.output_text)
    assert set(answer) == {"city", "temp"} and isinstance(answer["temp"], int)
    assert response.text.format.type == "json_schema" and response.text.format.name == "weather"


# --- streaming --------------------------------------------------------------------------------
def text_stream_types(deltas: int) -> list[str]:
    return [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_stream_events_come_in_openai_order_and_the_sdk_assembles_them(stage, kind):
    gpt = route(stage, kind)
    with gpt.responses.stream(model=PUBLIC, input="stream this please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    deltas = types.count("response.output_text.delta")
    assert deltas >= 1 and types == text_stream_types(deltas)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text == echo(kind, "stream this please")
    assert events[0].response.status == "in_progress" and final.status == "completed"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert item_ids == {final.output[0].id}


@pytest.mark.parametrize("kind", KINDS)
def test_a_streamed_function_call_has_argument_deltas_and_a_done_item(stage, kind):
    gpt = route(stage, kind)
    stage.upstream.script(
        UPSTREAM,
        {"blocks": [{"type": "tool_use", "name": "get_weather", "input": {"city": "Lima"}}]},
    )
    with gpt.responses.stream(
        model=PUBLIC,
        input="Weather in Lima?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    if kind == "demo":  # it says what it calls first: a message item, closed before the call
        types = types[:2] + types[types.index("response.output_item.done") + 1 :]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(types[3:-3]) == {"response.function_call_arguments.delta"}
    done = events[-2].item
    assert done.type == "function_call" and done.name == "get_weather"
    assert json.loads(done.arguments).keys() == {"city"}
    assert final.output[-1].call_id == done.call_id


def test_raw_stream_is_named_sse_events_without_a_done_sentinel(stage):
    route(stage, "openai_responses")
    key = stage.tenant_key("acme")
    with httpx.stream(
        "POST",
        stage.gateway.url + "/v1/responses",
        json={"model": PUBLIC, "input": "raw bytes", "stream": True},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(answer.iter_bytes())
    assert b"[DONE]" not in raw and raw.endswith(b"\n\n")
    frames = [f for f in raw.decode().split("\n\n") if f and not f.startswith(":")]
    for n, frame in enumerate(frames):
        event_line, data_line = frame.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}" and data["sequence_number"] == n
    completed = json.loads(frames[-1].split("\n")[1].removeprefix("data: "))
    assert completed["type"] == "response.completed"
    assert completed["response"]["output"][0]["content"][0]["text"] == "echo: raw bytes"
    assert completed["response"]["usage"]["output_tokens"] > 0
