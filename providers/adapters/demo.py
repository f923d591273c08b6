"""The built-in demo provider: deterministic replies with no network, for the quick start.

It answers like a small polite model: it echoes what it was asked, calls a tool when the client
forces one or names one in the last message, and reports what a tool returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from core import ids, ir
from core.tokens import count_text, estimate_input_tokens
from protocols.openai_chat.request import refuse
from providers.adapters.base import Adapter

_PLACEHOLDER = {
    "string": "demo",
    "number": 1,
    "integer": 1,
    "boolean": True,
    "array": [],
    "object": {},
}


REMINDER = "<system-reminder>"


def _last_user_text(request: ir.Request) -> str:
    """What the person last typed: agents such as Claude Code add context in text blocks of
    their own (`<system-reminder>…`), which are not echoed and name no tool."""
    for message in reversed(request.messages):
        if message.role == "user":
            texts = [
                p.text
                for p in message.content
                if isinstance(p, ir.Text) and not p.text.lstrip().startswith(REMINDER)
            ]
            if texts:
                return " ".join(texts)
    return ""


def _tool_results(request: ir.Request) -> list[ir.ToolResult]:
    last = request.messages[-1]
    return [p for p in last.content if isinstance(p, ir.ToolResult)] if last.role == "user" else []


def _chosen_tool(request: ir.Request) -> ir.Tool | None:
    if not request.tools or _tool_results(request):
        return None
    choice = request.tool_choice
    if choice is not None and choice.type == "none":
        return None
    if choice is not None and choice.type == "tool":
        return next(t for t in request.tools if t.name == choice.name)
    if choice is not None and choice.type == "any":
        return request.tools[0]
    text = _last_user_text(request).lower()
    return next((t for t in request.tools if t.name.lower() in text), None)


def _tool_input(tool: ir.Tool) -> dict[str, Any]:
    return _placeholders(tool.input_schema)


def _placeholders(schema: dict[str, Any]) -> dict[str, Any]:
    """An object with a placeholder for each required property, typed by the schema."""
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
    values = {}
    for name in names:
        prop = properties.get(name)
        kind = prop.get("type", "string") if isinstance(prop, dict) else "string"
        values[name] = _PLACEHOLDER.get(kind, "demo") if isinstance(kind, str) else "demo"
    return values


def reply(request: ir.Request) -> ir.Response:
    """The deterministic answer to a request."""
    tool = _chosen_tool(request)
    if tool is not None:
        content: list[ir.Part] = [
            ir.Text(f"Calling {tool.name}."),
            ir.ToolUse(id=ids.tool_use_id(), name=tool.name, input=_tool_input(tool)),
        ]
        stop = "tool_use"
    else:
        results = _tool_results(request)
        if results:
            texts = [p.text for r in results for p in r.content if isinstance(p, ir.Text)]
            text = "The tool returned: " + (" ".join(texts) or "(nothing)")
        elif request.output_schema is not None:  # structured output: JSON the schema accepts
            text = msgspec.json.encode(_placeholders(request.output_schema)).decode()
        else:
            asked = _last_user_text(request)
            text = f"Hello from the Tollgate demo provider. You said: {asked[:500]}"
        words = text.split(" ")
        if len(words) > request.max_tokens:
            text, stop = " ".join(words[: request.max_tokens]), "max_tokens"
        else:
            stop = "end_turn"
        content = [ir.Text(text)] if request.max_tokens else []
    output = sum(count_text(p.text) for p in content if isinstance(p, ir.Text))
    usage = ir.Usage(input_tokens=estimate_input_tokens(request), output_tokens=max(1, output))
    return ir.Response(content=content, stop_reason=stop, usage=usage)


class DemoAdapter(Adapter):
    kind = "demo"
    # A little pacing makes the demo stream look like one.
    word_delay = 0.01

    async def complete(self, request, target, client, exchange) -> ir.Response:
        if request.unportable:  # server tools and unknown blocks: the demo cannot fake them
            raise refuse(request.unportable[0], target)
        return reply(request)

    async def stream(self, request, target, client, exchange) -> AsyncIterator[ir.StreamEvent]:
        if request.unportable:
            raise refuse(request.unportable[0], target)
        response = reply(request)
        yield ir.StreamStart(usage=ir.Usage(input_tokens=response.usage.input_tokens))
        for part in response.content:
            if isinstance(part, ir.Text):
                for i, word in enumerate(part.text.split(" ")):
                    yield ir.TextDelta(word if i == 0 else " " + word)
                    await asyncio.sleep(self.word_delay)
            elif isinstance(part, ir.ToolUse):
                yield ir.BlockStart(ir.ToolUse(id=part.id, name=part.name, input={}))
                yield ir.ToolInputDelta(msgspec.json.encode(part.input).decode())
        yield ir.StreamEnd(stop_reason=response.stop_reason, usage=response.usage)
