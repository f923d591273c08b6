"""`POST /v1/chat/completions` end to end: official `openai` SDK -> real gateway -> fake
upstream, through every provider kind (text, images, tools, structured output, the options)."""

import base64
import json

import openai
import pydantic
import pytest

from tests.e2e.chat import ASK, KINDS, MODEL, UPSTREAM_KINDS, WEATHER, chunks, client, post, route

pytestmark = pytest.mark.django_db(transaction=True)

# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
UPSTREAM_PATH = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "openai_responses": "/v1/responses",
    "gemini": "/v1beta/models/gemini-chat:generateContent",
}


def sent(stage, upstream_model: str) -> dict:
    return stage.upstream.requests(upstream_model)[-1]


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_text_is_answered_as_a_chat_completion(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    completion = client(stage, key).chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What is the capital of Peru?"},
        ],
    )
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    (choice,) = completion.choices
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant" and not choice.message.tool_calls
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if kind == "demo":
        assert "What is the capital of Peru?" in choice.message.content
        return
    assert choice.message.content == "echo: What is the capital of Peru?"
    upstream = sent(stage, upstream_model)
    assert upstream["path"] == UPSTREAM_PATH[kind] and upstream["auth_present"]
    assert "Be terse." in json.dumps(upstream["body"])


@pytest.mark.parametrize(("kind", "upstream_model"), UPSTREAM_KINDS)
def test_images_reach_the_upstream_inline_and_by_url(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    chat = client(stage, key).chat.completions
    inline = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    text = {"type": "text", "text": "What is this?"}
    answer = chat.create(model=MODEL, messages=[{"role": "user", "content": [text, inline]}])
    assert answer.choices[0].message.content == "echo: What is this?"
    assert PNG in json.dumps(sent(stage, upstream_model)["body"])

    by_url = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ask = {"model": MODEL, "messages": [{"role": "user", "content": [text, by_url]}]}
    if kind == "gemini":  # the Developer API cannot fetch URLs: a clear 400 before any call
        with pytest.raises(openai.BadRequestError) as refused:
            chat.create(**ask)
        assert "image given by URL" in refused.value.body["message"]
        assert len(stage.upstream.requests(upstream_model)) == 1
        return
    assert chat.create(**ask).choices[0].message.content == "echo: What is this?"
    assert "https://example.com/cat.png" in json.dumps(sent(stage, upstream_model)["body"])


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_a_forced_tool_call_and_its_result_make_a_round_trip(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    chat = client(stage, key).chat.completions
    question = {"role": "user", "content": "Weather in Lima?"}
    first = chat.create(model=MODEL, messages=[question], tools=[WEATHER], tool_choice="required")
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert set(json.loads(call.function.arguments)) == {"city"}

    answer = {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}
    history = [question, first.choices[0].message.model_dump(exclude_none=True), answer]
    second = chat.create(model=MODEL, messages=history, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content
    if kind != "demo":
        body = json.dumps(sent(stage, upstream_model)["body"])
        assert call.id in body and "18C and sunny" in body


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_a_named_tool_choice_forces_that_tool(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    other = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    completion = client(stage, key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[other, WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "get_weather"


@pytest.mark.parametrize(("kind", "upstream_model"), UPSTREAM_KINDS)
def test_parallel_tool_calls_come_back_numbered_with_their_ids(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    calls = [
        {"type": "tool_use", "name": "get_weather", "input": {"city": c}, "id": f"call_{c}"}
        for c in ("Lima", "Quito")
    ]
    stage.upstream.script(upstream_model, {"blocks": [{"type": "text", "text": "Both."}, *calls]})
    completion = client(stage, key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Lima and Quito?"}],
        tools=[WEATHER],
        tool_choice="auto",
        parallel_tool_calls=True,
    )
    message = completion.choices[0].message
    assert message.content == "Both." and completion.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather", {"city": "Lima"}),
        ("get_weather", {"city": "Quito"}),
    ]
    ids = [c.id for c in message.tool_calls]
    assert len(set(ids)) == 2 and all(ids)
    if kind != "gemini":  # Gemini's calls carry ids of the gateway's making
        assert ids == ["call_Lima", "call_Quito"]


def test_tool_options_reach_an_openai_upstream_as_sent(stage):
    key = route(stage, "openai", "gpt-chat")
    client(stage, key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    body = sent(stage, "gpt-chat")["body"]
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_parse_with_a_pydantic_model_returns_the_parsed_object(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    if kind == "anthropic":  # the fake's Anthropic surface does not read output_config.format
        text = {"type": "text", "text": '{"name": "Lima", "population": 1}'}
        stage.upstream.script(upstream_model, {"blocks": [text]})
    completion = client(stage, key).chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "A city"}], response_format=City
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City)
    if kind == "demo":
        return
    body = json.dumps(sent(stage, upstream_model)["body"])
    assert '"population"' in body  # the schema went upstream in the provider's words


@pytest.mark.parametrize(
    ("kind", "upstream_model"),
    # OpenAI's non-reasoning models take no effort: the OpenAI routes name reasoning models.
    [
        ("openai", "gpt-5-chat"),
        ("openai_responses", "gpt-5-resp"),
        ("anthropic", "claude-up-chat"),
        ("gemini", "gemini-chat"),
    ],
)
def test_reasoning_effort_reaches_the_upstream(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    client(stage, key).chat.completions.create(**ASK, reasoning_effort="high")
    body = sent(stage, upstream_model)["body"]
    expected = {
        "openai": lambda b: b["reasoning_effort"] == "high",
        "openai_responses": lambda b: b["reasoning"]["effort"] == "high",
        "anthropic": lambda b: "thinking" in b or "effort" in json.dumps(b),
        "gemini": lambda b: "thinkingConfig" in b["generationConfig"],
    }[kind]
    assert expected(body), body


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_stop_and_output_limits(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    chat = client(stage, key).chat.completions
    if kind != "demo":
        stage.upstream.script(upstream_model, {"blocks": [{"type": "text", "text": "one END two"}]})
    stopped = chat.create(**ASK, stop=["END"], max_completion_tokens=50)
    if kind != "demo":
        assert stopped.choices[0].message.content == "one "  # the gateway matches stops itself
        assert stopped.choices[0].finish_reason == "stop"
    chat.create(**ASK, max_tokens=33)
    if kind == "demo":
        cut = chat.create(
            model=MODEL, messages=[{"role": "user", "content": "a b c d e f"}], max_tokens=2
        )
        assert cut.choices[0].finish_reason == "length"
        return
    limits = [json.dumps(r["body"]) for r in stage.upstream.requests(upstream_model)[-2:]]
    assert "50" in limits[0] and "33" in limits[1]


@pytest.mark.parametrize(("kind", "upstream_model"), UPSTREAM_KINDS)
def test_user_and_safety_identifier_never_go_upstream_in_clear(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    chat = client(stage, key).chat.completions
    chat.create(**ASK, user="alice@example.com")
    chat.create(**ASK, safety_identifier="bob@example.com")
    bodies = json.dumps([r["body"] for r in stage.upstream.requests(upstream_model)])
    assert "alice@example.com" not in bodies and "bob@example.com" not in bodies


def test_n_above_one_is_reported_or_refused_per_strictness(stage):
    key = route(stage, "openai", "gpt-chat")
    warned = post(stage, key, {**ASK, "n": 2})
    assert warned.status_code == 200 and len(warned.json()["choices"]) == 1
    assert "n dropped" in warned.headers["tollgate-warnings"]

    strict = client(stage, key, default_headers={"x-tollgate-strictness": "error"})
    with pytest.raises(openai.BadRequestError) as refused:
        strict.chat.completions.create(**ASK, n=2)
    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "n"
    assert "(strictness: error)" in refused.value.body["message"]
    assert len(stage.upstream.requests("gpt-chat")) == 1  # the warned one only


@pytest.mark.parametrize(("kind", "upstream_model"), KINDS)
def test_logprobs_are_reported_per_strictness(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    warned = post(stage, key, {**ASK, "logprobs": True, "top_logprobs": 2})
    assert warned.status_code == 200
    assert "logprobs dropped" in warned.headers["tollgate-warnings"]
    assert "top_logprobs dropped" in warned.headers["tollgate-warnings"]
    assert warned.json()["choices"][0]["logprobs"] is None

    strict = client(stage, key, default_headers={"x-tollgate-strictness": "error"})
    with pytest.raises(openai.BadRequestError) as refused:
        strict.chat.completions.create(**ASK, logprobs=True)
    assert refused.value.body["param"] == "logprobs"
    assert "(strictness: error)" in refused.value.body["message"]


@pytest.mark.parametrize(
    ("kind", "upstream_model"),
    [
        ("openai", "gpt-5-reasoning"),
        ("anthropic", "claude-up-reasoning"),
        ("openai_responses", "gpt-5-resp-reasoning"),
        ("gemini", "gemini-chat-reasoning"),
    ],
)
def test_reasoning_text_comes_back_as_reasoning_content(stage, kind, upstream_model):
    key = route(stage, kind, upstream_model)
    answer = post(stage, key, {**ASK, "reasoning_effort": "medium"})
    message = answer.json()["choices"][0]["message"]
    assert message["content"] == "echo: hi"
    assert message.get("reasoning_content") == "Thinking about: hi", message
    streamed = post(stage, key, {**ASK, "reasoning_effort": "medium", "stream": True})
    deltas = [c["choices"][0]["delta"] for c in chunks(streamed)[:-1] if c["choices"]]
    thought = "".join(d.get("reasoning_content", "") for d in deltas)
    assert thought == "Thinking about: hi"
    assert "".join(d.get("content") or "" for d in deltas) == "echo: hi"


def test_tool_choice_none_and_json_object_reach_an_openai_upstream(stage):
    key = route(stage, "openai", "gpt-chat")
    chat = client(stage, key).chat.completions
    answer = chat.create(**ASK, tools=[WEATHER], tool_choice="none")
    assert answer.choices[0].message.content == "echo: hi"
    assert sent(stage, "gpt-chat")["body"]["tool_choice"] == "none"
    chat.create(**ASK, response_format={"type": "json_object"})
    assert "response_format" in sent(stage, "gpt-chat")["body"]
