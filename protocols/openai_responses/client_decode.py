"""OpenAI Responses request JSON -> `Decoded` (IR request, gateway asks, dropped fields).

Pure: no ORM, no settings, no network. Errors are `InvalidRequest` whose message starts with
the JSON path of the bad field (`input.3.arguments: not valid JSON`), which
protocols/openai_errors.py turns into OpenAI's `param`.

The gateway is stateless: what needs OpenAI's stored state (`previous_response_id`,
`conversation`, stored `prompt`s, `background` runs) is refused, and an explicit `store: true`
is listed as dropped (strictness refuses or warns). Fields a translated route cannot honour
are listed in `Decoded.dropped` as JSON paths.
"""

from __future__ import annotations

from typing import Any, Literal

from core import ir
from core.errors import InvalidRequest
from protocols.anthropic.decode import TOOL_ID, typed
from protocols.openai_responses.client_items import NAMESPACE_SEP, conversation, flat_name
from protocols.openai_responses.client_schema import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    KNOWN_FIELDS,
    ReasoningIn,
    ResponsesBody,
    TextFormatJsonObject,
    TextFormatJsonSchema,
)
from protocols.surface import Ask, Decoded

SURFACE_NAME = "openai_responses"
WEB_SEARCH_TYPES = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
# include values the gateway honours; others are reported.
INCLUDES = frozenset({"reasoning.encrypted_content", "web_search_call.action.sources"})
# OpenAI's service tiers -> the IR's (Anthropic's words); `priority` is what `auto` asks for.
SERVICE_TIERS: dict[str, Literal["auto", "standard_only"]] = {
    "auto": "auto",
    "priority": "auto",
    "default": "standard_only",
}
_TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}
_REFUSED = {
    "previous_response_id": "this gateway keeps no responses; send the whole conversation "
    "(store: false)",
    "conversation": "this gateway keeps no conversations; send the whole conversation",
    "prompt": "stored prompts are not available through this gateway; send the prompt",
}


def decode(wire: dict[str, Any], raw: bytes = b"") -> Decoded:
    body = typed(wire, ResponsesBody)
    _refuse_stateful(body)
    dropped = [k for k in wire if k not in KNOWN_FIELDS]
    items = conversation(body.input)
    dropped += items.dropped
    tools, server_tools = _tools(body.tools or [], dropped)
    system = [ir.Text(body.instructions)] if body.instructions else []
    request = ir.Request(
        model=body.model,
        messages=items.messages,
        max_tokens=body.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS,
        system=system + items.system,
        tools=tools,
        server_tools=server_tools,
        tool_choice=_tool_choice(body, tools),
        temperature=body.temperature,
        top_p=body.top_p,
        stream=body.stream,
        user_id=body.safety_identifier or body.user,
        reasoning=_reasoning(body.reasoning),
        output_schema=_output_schema(body),
        service_tier=SERVICE_TIERS.get(body.service_tier or ""),
        provider_options=_provider_options(body),
        surface=SURFACE_NAME,
        raw=raw,
        raw_json=wire,
    )
    dropped += _dropped(body)
    return Decoded(request=request, ask=_ask(body), dropped=dropped)


def _refuse_stateful(body: ResponsesBody) -> None:
    for field, why in _REFUSED.items():
        if getattr(body, field) is not None:
            raise InvalidRequest(f"{field}: {why}")
    if body.background:
        raise InvalidRequest("background: background responses need stored state; stream instead")


def _dropped(body: ResponsesBody) -> list[str]:
    """Fields read but not honoured: reported, or refused under strict strictness."""
    dropped = []
    if body.store is True:  # absent means nothing: only an explicit ask is reported
        dropped.append("store (this gateway keeps no responses)")
    if body.metadata:
        dropped.append("metadata")
    if body.truncation == "auto":
        dropped.append("truncation")
    if body.top_logprobs is not None:
        dropped.append("top_logprobs")
    if body.max_tool_calls is not None:
        dropped.append("max_tool_calls")
    if body.service_tier in ("flex", "scale"):
        dropped.append("service_tier")
    fmt = body.text.format if body.text else None
    if isinstance(fmt, TextFormatJsonSchema) and fmt.strict:
        dropped.append("text.format.strict")  # upstreams get the schema as a plain one
    dropped += [f"include.{i}" for i, v in enumerate(body.include or []) if v not in INCLUDES]
    return dropped


def _tools(tools: list[dict[str, Any]], dropped: list[str]):
    functions: list[ir.Tool] = []
    server: list[ir.ServerTool] = []
    for i, tool in enumerate(tools):
        where = f"tools.{i}"
        kind = tool.get("type")
        if kind == "function":
            functions.append(_function(tool, where, dropped))
        elif kind == "namespace":
            functions += _namespace(tool, where, dropped)
        elif kind in WEB_SEARCH_TYPES:
            server.append(_web_search(tool, where, dropped))
        elif not isinstance(kind, str):
            raise InvalidRequest(f"{where}.type: Field required")
        else:
            raise InvalidRequest(f"{where}.type: `{kind}` tools are not supported by this gateway")
    names = [t.name for t in functions]
    if len(set(names)) != len(names):
        raise InvalidRequest("tools: function names must be unique")
    return functions, server


def _namespace(tool: dict[str, Any], where: str, dropped: list[str]) -> list[ir.Tool]:
    """A `namespace` tool's functions, each flattened to one function named `<ns>__<name>`
    (no upstream groups tools); answers and replayed calls split it back (`split_name`)."""
    name = tool.get("name")
    if not isinstance(name, str) or not TOOL_ID.match(name) or len(name) > 64:
        raise InvalidRequest(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
    inner = tool.get("tools")
    if not isinstance(inner, list):
        raise InvalidRequest(f"{where}.tools: Input should be a valid list")
    functions = []
    for j, function in enumerate(inner):
        at = f"{where}.tools.{j}"
        if not isinstance(function, dict) or function.get("type") != "function":
            raise InvalidRequest(f"{at}.type: only `function` tools are supported in a namespace")
        short = function.get("name")
        if isinstance(short, str) and len(name) + len(NAMESPACE_SEP) + len(short) > 64:
            raise InvalidRequest(f"{at}.name: `{name}` + `{short}` is longer than 64 characters")
        flat = {**function, "name": flat_name(name, short) if isinstance(short, str) else short}
        functions.append(_function(flat, at, dropped))
    return functions


def namespaced(request: ir.Request | None) -> dict[str, tuple[str, str]]:
    """Flattened name -> (namespace, name) for the request's namespace tools."""
    tools = ((request.raw_json if request is not None else None) or {}).get("tools")
    result = {}
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and tool.get("type") == "namespace":
            for function in tool.get("tools") or []:
                ns, name = tool.get("name"), function.get("name")
                result[flat_name(ns, name)] = (ns, name)
    return result


def _function(tool: dict[str, Any], where: str, dropped: list[str]) -> ir.Tool:
    name = tool.get("name")
    if not isinstance(name, str) or not TOOL_ID.match(name) or len(name) > 64:
        raise InvalidRequest(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
    parameters = tool.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise InvalidRequest(f"{where}.parameters: Input should be a valid dictionary")
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"{where}.description: Input should be a valid string")
    if tool.get("strict") is True:
        # Every upstream gets the schema as a plain one (strict: false on OpenAI): reported.
        dropped.append(f"{where}.strict")
    return ir.Tool(name=name, input_schema=parameters, description=description)


def _web_search(tool: dict[str, Any], where: str, dropped: list[str]) -> ir.ServerTool:
    filters = tool.get("filters")
    domains = filters.get("allowed_domains") if isinstance(filters, dict) else None
    if domains is not None and not (
        isinstance(domains, list) and all(isinstance(d, str) for d in domains)
    ):
        raise InvalidRequest(f"{where}.filters.allowed_domains: Input should be a list of strings")
    location = tool.get("user_location")
    if location is not None and not isinstance(location, dict):
        raise InvalidRequest(f"{where}.user_location: Input should be a valid dictionary")
    if tool.get("search_context_size") is not None:
        dropped.append(f"{where}.search_context_size")
    return ir.ServerTool(
        kind="web_search",
        type=str(tool["type"]),
        where=where,
        allowed_domains=domains or None,
        user_location=location,
    )


def _tool_choice(body: ResponsesBody, tools: list[ir.Tool]) -> ir.ToolChoice | None:
    choice = body.tool_choice
    serial = body.parallel_tool_calls is False
    if choice is None:
        return ir.ToolChoice(disable_parallel_tool_use=True) if serial else None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise InvalidRequest("tool_choice: Input should be 'none', 'auto' or 'required'")
        return ir.ToolChoice(type=_TOOL_CHOICES[choice], disable_parallel_tool_use=serial)
    kind = choice.get("type")
    if kind != "function":
        raise InvalidRequest(f"tool_choice.type: `{kind}` is not supported (use `function`)")
    name = choice.get("name")
    if not isinstance(name, str) or name not in {t.name for t in tools}:
        raise InvalidRequest(f"tool_choice.name: no function named `{name}` in tools")
    return ir.ToolChoice(type="tool", name=name, disable_parallel_tool_use=serial)


def _reasoning(reasoning: ReasoningIn | None) -> ir.Reasoning | None:
    if reasoning is None or reasoning.effort == "none":
        return None
    summary = reasoning.summary or reasoning.generate_summary
    # Responses shows reasoning text only when a summary is asked for: so does the gateway.
    return ir.Reasoning(effort=reasoning.effort, summary=summary is not None, asked_by="reasoning")


def _output_schema(body: ResponsesBody) -> dict[str, Any] | None:
    fmt = body.text.format if body.text else None
    if isinstance(fmt, TextFormatJsonSchema):
        return fmt.schema
    if isinstance(fmt, TextFormatJsonObject):
        return {"type": "object"}
    return None


def _provider_options(body: ResponsesBody) -> dict[str, Any]:
    """The client's options, plus Responses fields only OpenAI routes can honour, given as
    OpenAI options (options.py: other routes ignore them); an option set explicitly wins."""
    given = dict(body.provider_options or {})
    native = {}
    if body.prompt_cache_key is not None:
        native["prompt_cache_key"] = body.prompt_cache_key
    if body.text is not None and body.text.verbosity is not None:
        native["verbosity"] = body.text.verbosity
    if native:
        given["openai"] = {**native, **given.get("openai", {})}
    return given


def _ask(body: ResponsesBody) -> Ask:
    return body.ask(model=body.model, stream=body.stream)


def wants_encrypted_reasoning(request: ir.Request) -> bool:
    """`include: ["reasoning.encrypted_content"]`: the client replays reasoning itself."""
    include = (request.raw_json or {}).get("include")
    return isinstance(include, list) and "reasoning.encrypted_content" in include
