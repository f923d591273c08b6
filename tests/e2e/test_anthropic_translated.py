"""An OpenAI-surface client's request on an Anthropic route: the adapter builds the Anthropic
body from the IR, and reads the fake Anthropic upstream's answer and stream back into the IR,
over real loopback HTTP (no gateway process: the client surfaces are built elsewhere)."""

from __future__ import annotations

import httpx2
import msgspec

from core import ir
from core.target import Target
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Exchange

MODEL = "claude-upstream-translated"
REPLY = {
    "blocks": [
        {"type": "thinking", "thinking": "The user wants the weather."},
        {"type": "text", "text": "Let me check the weather in Lima."},
        {"type": "tool_use", "name": "get_weather", "input": {"city": "Lima"}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 50, "output_tokens": 20, "cache_read_input_tokens": 8},
}


def target(url: str) -> Target:
    return Target(
        route_id=1,
        provider_id=1,
        provider_name="anthropic-fake",
        kind="anthropic",
        base_url=url,
        api_key="sk-upstream-secret",
        upstream_model=MODEL,
    )


def chat_request(stream: bool) -> ir.Request:
    """What an OpenAI Chat client's second turn decodes to (its raw body is not Anthropic's)."""
    raw = b'{"model":"claude-test","messages":[],"n":1}'
    weather = {"type": "object", "properties": {"city": {"type": "string"}}}
    return ir.Request(
        model="claude-test",
        max_tokens=4096,
        system=[ir.Text("Answer briefly.")],
        messages=[
            ir.Message("user", [ir.Text("Weather in Quito?")]),
            ir.Message(
                "assistant",
                [
                    ir.Thinking("from gpt", signature="tg1.e30.mac"),
                    ir.ToolUse(id="call_1", name="get_weather", input={"city": "Quito"}),
                ],
            ),
            ir.Message("user", [ir.ToolResult("call_1", [ir.Text("14C")]), ir.Text("And Lima?")]),
        ],
        tools=[ir.Tool("get_weather", weather, "Current weather.")],
        tool_choice=ir.ToolChoice("auto"),
        reasoning=ir.Reasoning(effort="low", asked_by="reasoning"),
        stream=stream,
        surface="openai_chat",
        raw=raw,
        raw_json=msgspec.json.decode(raw),
        forward_headers={"x-request-id": "req_e2e"},
    )


def sent_body(fake_upstream) -> dict:
    (record,) = fake_upstream.requests(MODEL)
    return record["body"]


async def test_a_translated_request_is_answered_by_anthropic_in_ir(fake_upstream):
    fake_upstream.reset()
    fake_upstream.script(MODEL, REPLY)
    async with httpx2.AsyncClient() as client:
        response = await AnthropicAdapter().complete(
            chat_request(stream=False), target(fake_upstream.url), client, Exchange()
        )
    body = sent_body(fake_upstream)
    assert body["model"] == MODEL and "n" not in body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Quito"}}
    ]  # another provider's thinking stays behind
    assert response.passthrough is None
    assert [type(p) for p in response.content] == [ir.Thinking, ir.Text, ir.ToolUse]
    assert response.content[0].signature  # Anthropic's own, fit to send back next turn
    assert response.content[2].input == {"city": "Lima"}
    assert response.stop_reason == "tool_use"
    assert (response.usage.input_tokens, response.usage.cache_read_input_tokens) == (50, 8)


async def test_a_translated_stream_is_read_into_ir_events(fake_upstream):
    fake_upstream.reset()
    fake_upstream.script(MODEL, REPLY)
    async with httpx2.AsyncClient() as client:
        stream = AnthropicAdapter().stream(
            chat_request(stream=True), target(fake_upstream.url), client, Exchange()
        )
        events = [e async for e in stream]
    assert sent_body(fake_upstream)["stream"] is True
    assert not any(isinstance(e, ir.Passthrough) for e in events)
    starts = [e.part for e in events if isinstance(e, ir.BlockStart)]
    assert [type(p) for p in starts] == [ir.Thinking, ir.Text, ir.ToolUse]
    text = "".join(e.text for e in events if isinstance(e, ir.TextDelta))
    assert text == "Let me check the weather in Lima."
    arguments = "".join(e.partial_json for e in events if isinstance(e, ir.ToolInputDelta))
    assert msgspec.json.decode(arguments) == {"city": "Lima"}
    assert any(isinstance(e, ir.SignatureDelta) and e.signature for e in events)
    end = events[-1]
    assert isinstance(end, ir.StreamEnd)
    assert (end.stop_reason, end.usage.input_tokens, end.usage.output_tokens) == (
        "tool_use",
        50,
        20,
    )
