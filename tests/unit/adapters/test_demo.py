"""The built-in demo provider: deterministic, tool-aware, no network."""

import json

import pytest

from core import ir
from providers.adapters.demo import DemoAdapter, reply

WEATHER = ir.Tool(
    name="get_weather",
    input_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
)


def request(text: str, **extra) -> ir.Request:
    return ir.Request(
        model="claude-demo", max_tokens=100, messages=[ir.Message("user", [ir.Text(text)])], **extra
    )


def test_reply_echoes_the_last_user_message_deterministically():
    first, second = reply(request("hello")), reply(request("hello"))
    assert (
        first.content
        == second.content
        == [ir.Text("Hello from the Tollgate demo provider. You said: hello")]
    )
    assert first.stop_reason == "end_turn"
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0


def test_forced_tool_choice_calls_the_tool_with_placeholder_arguments():
    response = reply(request("go", tools=[WEATHER], tool_choice=ir.ToolChoice(type="any")))
    assert response.stop_reason == "tool_use"
    call = response.content[-1]
    assert isinstance(call, ir.ToolUse) and call.name == "get_weather"
    assert call.input == {"city": "demo", "days": 1}
    assert call.id.startswith("toolu_")


def test_tool_named_in_the_prompt_is_called_and_its_result_reported():
    assert reply(request("use get_weather please", tools=[WEATHER])).stop_reason == "tool_use"
    follow_up = request("x", tools=[WEATHER])
    follow_up.messages = [
        ir.Message("user", [ir.Text("use get_weather")]),
        ir.Message("assistant", [ir.ToolUse("toolu_1", "get_weather", {})]),
        ir.Message("user", [ir.ToolResult("toolu_1", [ir.Text("sunny")])]),
    ]
    answer = reply(follow_up)
    assert answer.content == [ir.Text("The tool returned: sunny")]
    assert answer.stop_reason == "end_turn"


def test_max_tokens_cuts_the_reply():
    short = request("one two three four five six seven")
    short.max_tokens = 3
    response = reply(short)
    assert response.stop_reason == "max_tokens"
    assert response.content == [ir.Text("Hello from the")]


async def test_stream_yields_the_same_text_as_the_reply():
    adapter = DemoAdapter()
    adapter.word_delay = 0
    events = [e async for e in adapter.stream(request("hi"), None, None, None)]
    assert isinstance(events[0], ir.StreamStart)
    text = "".join(e.text for e in events if isinstance(e, ir.TextDelta))
    assert text == reply(request("hi")).content[0].text
    assert isinstance(events[-1], ir.StreamEnd) and events[-1].stop_reason == "end_turn"


def test_an_agents_reminder_blocks_are_neither_echoed_nor_read_as_tool_names():
    reminder = ir.Text("<system-reminder>\nYou may use get_weather.\n</system-reminder>")
    asked = request("hi", tools=[WEATHER])
    asked.messages = [ir.Message("user", [reminder, ir.Text("Hello there")])]

    response = reply(asked)

    assert response.stop_reason == "end_turn"
    assert response.content == [
        ir.Text("Hello from the Tollgate demo provider. You said: Hello there")
    ]


def test_a_schema_asked_is_answered_with_json_it_accepts():
    response = reply(request("weather?", output_schema=WEATHER.input_schema))
    assert response.content == [ir.Text('{"city":"demo","days":1}')]


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": [], "required": ["a"]},
        {"properties": {"a": "string"}, "required": ["a", 3, None]},
        {"properties": {"a": {"type": ["string", "null"]}}, "required": ["a"]},
        {"required": "a"},
        {},
    ],
)
def test_a_malformed_schema_still_gets_a_json_object(schema):
    text = reply(request("x", output_schema=schema)).content[0].text
    assert isinstance(json.loads(text), dict)
