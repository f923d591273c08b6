"""OpenAI Chat Completions request JSON -> IR request and the gateway's asks (`Decoded`).

The reverse of `request.py` (IR -> Chat), with OpenAI's validation rules: errors are
`InvalidRequest` whose message starts with the JSON path of the bad field, as on the Anthropic
surface. Fields no route can honour are listed in `Decoded.dropped` for the strictness rule;
fields that can never be honoured (`n` > 1, deprecated `functions`) are refused outright.
Choices where OpenAI and the IR differ are documented where they are made. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from core import ir
from core.errors import InvalidRequest
from protocols.anthropic.decode import typed
from protocols.openai_chat import client_messages
from protocols.openai_chat.client_schema import KNOWN_FIELDS, NO_EFFECT, ChatBody, ToolIn
from protocols.surface import Ask, Decoded

SURFACE = "openai_chat"
# OpenAI makes the output limit optional (the model's maximum); the IR needs one. A value most
# models take, documented in the README; the pipeline lowers it to the model's own limit.
DEFAULT_MAX_TOKENS = 4096
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# OpenAI's `service_tier` -> the IR's (Anthropic's words, reference 5.2 read backwards): the
# other tiers (flex, scale, priority, fast) have no IR equivalent and are reported as dropped.
SERVICE_TIER = {"auto": "auto", "default": "standard_only"}
# Fields the client may address to OpenAI routes that the IR keeps as provider options
# (protocols/openai_chat/request.py OPTIONS): other routes ignore them, as they do any
# option of another family.
OPENAI_OPTIONS = ("prompt_cache_key", "prompt_cache_retention", "verbosity")
# Headers the OpenAI SDK sends to choose the organization or project of the credential: the
# credential is the operator's, so no tenant may steer it (as Anthropic's workspace header).
WITHHELD_HEADERS = {b"openai-organization": "organization", b"openai-project": "project"}


def decode(raw: bytes, wire: dict[str, Any], headers: dict[bytes, bytes]) -> Decoded:
    """The client's body (its bytes and decoded JSON object) -> `Decoded`, or InvalidRequest."""
    body = typed(wire, ChatBody)
    dropped = [name for name in wire if name not in KNOWN_FIELDS]
    request = to_ir(body, dropped)
    request.surface, request.raw, request.raw_json = SURFACE, raw, wire
    return Decoded(request=request, ask=ask(body), dropped=dropped, withheld=withheld(headers))


def ask(body: ChatBody) -> Ask:
    stream = bool(body.stream)
    return body.ask(
        model=body.model,
        stream=stream,
        # Only meaningful in a stream; OpenAI refuses it otherwise, harmless to ignore here.
        stream_usage=stream
        and body.stream_options is not None
        and body.stream_options.include_usage,
    )


def withheld(headers: dict[bytes, bytes]) -> list[str]:
    return [
        f"{name} ({header.decode()} header)"
        for header, name in WITHHELD_HEADERS.items()
        if header in headers
    ]


def to_ir(body: ChatBody, dropped: list[str]) -> ir.Request:
    """Validate what the schema cannot express and build the IR request."""
    _refuse_never_honoured(body)
    system, messages = client_messages.to_ir(body.messages, dropped)
    tools = _tools(body.tools or [])
    request = ir.Request(
        model=body.model,
        messages=messages,
        max_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS,
        system=system,
        tools=tools,
        tool_choice=_tool_choice(body, tools, dropped),
        # OpenAI's range is 0-2, the IR keeps the value as sent: OpenAI and Gemini routes take
        # it as is; a route with a narrower range (Anthropic's 0-1) clamps it.
        temperature=body.temperature,
        top_p=body.top_p,
        stop_sequences=_stops(body.stop),
        stream=bool(body.stream),
        # `safety_identifier` replaces the deprecated `user`; routes hash it before sending.
        user_id=body.safety_identifier or body.user,
        reasoning=_reasoning(body),
        output_schema=_output_schema(body),
        service_tier=_service_tier(body, dropped),
        provider_options=_provider_options(body),
    )
    dropped += _no_effect(body)
    return request


def _refuse_never_honoured(body: ChatBody) -> None:
    if body.functions is not None or body.function_call is not None:
        field = "functions" if body.functions is not None else "function_call"
        raise InvalidRequest(
            f"{field}: deprecated and not supported here; use `tools` and `tool_choice`"
        )


def _stops(stop: str | list[str] | None) -> list[str]:
    stops = [stop] if isinstance(stop, str) else stop or []
    return [s for s in stops if s]  # an empty stop sequence stops nothing


def _tools(tools: list[ToolIn]) -> list[ir.Tool]:
    result: list[ir.Tool] = []
    names: set[str] = set()
    for i, tool in enumerate(tools):
        if tool.type != "function":
            raise InvalidRequest(
                f"tools.{i}.type: only `function` tools are supported, not `{tool.type[:64]}`"
            )
        function = tool.function
        if function is None:
            raise InvalidRequest(f"tools.{i}.function: Field required")
        if not FUNCTION_NAME.fullmatch(function.name):
            raise InvalidRequest(
                f"tools.{i}.function.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        if function.name in names:
            raise InvalidRequest(
                f"tools.{i}.function.name: tool names must be unique (`{function.name}`)"
            )
        names.add(function.name)
        # No `parameters` means no parameters (reference 2.4); the IR always carries a schema.
        schema = (
            function.parameters
            if function.parameters is not None
            else {"type": "object", "properties": {}}
        )
        result.append(
            ir.Tool(name=function.name, input_schema=schema, description=function.description)
        )
    return result


def _tool_choice(body: ChatBody, tools: list[ir.Tool], dropped: list[str]) -> ir.ToolChoice | None:
    choice = body.tool_choice
    serial = body.parallel_tool_calls is False
    if not tools:
        if choice == "required" or not isinstance(choice, str | None):
            raise InvalidRequest("tool_choice: a tool must be chosen from `tools`, which is empty")
        return None  # "auto"/"none" without tools, and parallel_tool_calls, mean nothing
    if choice is None:
        return ir.ToolChoice(disable_parallel_tool_use=True) if serial else None
    if isinstance(choice, str):
        kind = {"auto": "auto", "none": "none", "required": "any"}[choice]
        return ir.ToolChoice(type=kind, disable_parallel_tool_use=serial)
    if choice.type == "allowed_tools":
        return _allowed_tools(choice.allowed_tools, serial, dropped)
    if choice.type != "function" or choice.function is None:
        raise InvalidRequest(f"tool_choice.{choice.type}: only a `function` can be chosen")
    name = choice.function.name
    if name not in {t.name for t in tools}:
        raise InvalidRequest(f"tool_choice.function.name: no tool named `{name[:64]}` in tools")
    return ir.ToolChoice(type="tool", name=name, disable_parallel_tool_use=serial)


def _allowed_tools(
    allowed: dict[str, Any] | None, serial: bool, dropped: list[str]
) -> ir.ToolChoice:
    """The mode is kept; the IR has no allow-list (every tool stays callable): reported."""
    mode = (allowed or {}).get("mode")
    if mode not in ("auto", "required"):
        raise InvalidRequest("tool_choice.allowed_tools.mode: Input should be 'auto' or 'required'")
    dropped.append("tool_choice.allowed_tools.tools")
    return ir.ToolChoice(
        type="any" if mode == "required" else "auto", disable_parallel_tool_use=serial
    )


def _reasoning(body: ChatBody) -> ir.Reasoning | None:
    """`reasoning_effort`, or the gateway's `reasoning` object (which wins: it says more).

    Effort `none` asks for no reasoning: no Reasoning at all, as on the Anthropic surface.
    Reasoning text is shown (`summary`): it comes back as `reasoning_content`, a field clients
    of OpenAI-compatible servers read and the others ignore.
    """
    given = body.reasoning
    effort = body.reasoning_effort
    if given is not None and given.enabled is not False:
        effort = given.effort or effort
        if effort == "none":
            return None
        return ir.Reasoning(
            budget_tokens=given.max_tokens,
            effort=effort,
            summary=given.summary not in ("none", "omitted"),
            asked_by="reasoning",
        )
    if given is not None or effort is None or effort == "none":
        return None  # `reasoning.enabled: false` turns off the effort too
    return ir.Reasoning(effort=effort, asked_by="reasoning")


def _output_schema(body: ChatBody) -> dict[str, Any] | None:
    """`json_schema` -> its schema; `json_object` (any JSON object) -> `{"type": "object"}`,
    which routes with structured output honour, rather than a field every route would drop."""
    response_format = body.response_format
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return {"type": "object"}
    spec = response_format.json_schema
    if spec is None:
        raise InvalidRequest("response_format.json_schema: Field required")
    return spec.schema if spec.schema is not None else {"type": "object"}


def _service_tier(body: ChatBody, dropped: list[str]) -> Any:
    tier = body.service_tier
    if tier is None:
        return None
    if tier not in SERVICE_TIER:
        dropped.append(f"service_tier `{tier}`")
    return SERVICE_TIER.get(tier)


def _provider_options(body: ChatBody) -> dict[str, Any]:
    """The client's `provider_options`, plus the OpenAI-only fields it set at the top level
    (its explicit `provider_options.openai` values win)."""
    given = {family: dict(values) for family, values in (body.provider_options or {}).items()}
    top = {name: getattr(body, name) for name in OPENAI_OPTIONS if getattr(body, name) is not None}
    if top:
        given["openai"] = {**top, **given.get("openai", {})}
    return given


def _no_effect(body: ChatBody) -> list[str]:
    """Fields set to a value that asks for something no route does yet."""
    dropped = [
        name
        for name, idle in NO_EFFECT.items()
        if (value := getattr(body, name)) is not None and value != idle and value not in ({}, [])
    ]
    if body.modalities is not None and set(body.modalities) - {"text"}:
        dropped.append("modalities")
    return dropped
