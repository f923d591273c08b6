"""IR request -> OpenAI Responses API request body (reference 3.2-3.4 and 5.2-5.7).

Pure: the target and the IR request are all it reads. Stateless by design (`store: false`, no
`previous_response_id`): the whole conversation is rebuilt from the client's history, and
reasoning is replayed from the signed envelopes our thinking blocks carry (5.12.3).
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import ids, ir
from core.target import Target
from protocols import options
from protocols.envelope import provider_data
from protocols.openai_chat.request import (
    PROMPT_CACHE_KEY,
    PROMPT_CACHE_RETENTION,
    SERVICE_TIER,
    VERBOSITY,
    chat_tool_id,
    is_reasoning_model,
    json_schema_format,
    reasoning_effort,
    refuse,
)
from protocols.web_search import refuse_server_tools, runs_code, searched

PROVIDER = "openai-responses"  # the envelope's provider name
# Anthropic server tools this API has its own of (code execution: the Python version).
SERVER_TOOLS = frozenset({"web_search", "code_execution"})
CODE_INTERPRETER = {"type": "code_interpreter", "container": {"type": "auto"}}
_json = msgspec.json.Encoder()
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
# What a client may set under `provider_options.openai` on Responses (see options.py).
OPTIONS = options.OptionTable(
    "openai",
    {
        "prompt_cache_key": options.Option(("prompt_cache_key",), PROMPT_CACHE_KEY),
        "prompt_cache_retention": options.Option(
            ("prompt_cache_retention",), PROMPT_CACHE_RETENTION
        ),
        "verbosity": options.Option(("text", "verbosity"), VERBOSITY),
        "context_management": options.Option(("context_management",), options.COMPACTION),
    },
)


# --- User content -----------------------------------------------------------------------------
def _input_part(part: ir.Part) -> list[dict[str, Any]]:
    if isinstance(part, ir.Text):
        return [{"type": "input_text", "text": part.text}] if part.text else []
    if isinstance(part, ir.Image):
        url = part.url if part.data is None else f"data:{part.media_type};base64,{part.data}"
        return [{"type": "input_image", "image_url": url, "detail": "auto"}]
    if isinstance(part, ir.Document):
        return _document_parts(part)
    return []  # thinking and stray tool_use blocks have no place in a user turn


def _document_parts(doc: ir.Document) -> list[dict[str, Any]]:
    if doc.parts is not None:
        return [r for p in doc.parts for r in _input_part(p)]
    if doc.text is not None:
        return [
            {"type": "input_text", "text": f"{doc.title}\n\n{doc.text}" if doc.title else doc.text}
        ]
    if doc.data is not None:
        media_type = doc.media_type or "application/pdf"
        return [
            {
                "type": "input_file",
                "filename": doc.title or "document.pdf",
                "file_data": f"data:{media_type};base64,{doc.data}",
            }
        ]
    return [{"type": "input_file", "file_url": doc.url}]


def _tool_output(result: ir.ToolResult) -> dict[str, Any]:
    """A `function_call_output`: a string, or parts when the result holds images or files."""
    parts = [r for p in result.content for r in _input_part(p)]
    output: str | list[dict[str, Any]]
    if all(p["type"] == "input_text" for p in parts):
        output = "\n".join(p["text"] for p in parts)
        if result.is_error:
            output = "Error: " + output  # Convention (5.4.1): no error flag upstream
    else:
        output = parts
        if result.is_error:
            if parts[0]["type"] == "input_text":
                parts[0] = {**parts[0], "text": "Error: " + parts[0]["text"]}
            else:
                parts.insert(0, {"type": "input_text", "text": "Error:"})
    return {
        "type": "function_call_output",
        "call_id": chat_tool_id(result.tool_use_id),
        "output": output,
    }


def _user_items(message: ir.Message) -> list[dict[str, Any]]:
    """Tool outputs first, then one user message with the rest of the turn."""
    outputs = [_tool_output(p) for p in message.content if isinstance(p, ir.ToolResult)]
    content = [
        r for p in message.content if not isinstance(p, ir.ToolResult) for r in _input_part(p)
    ]
    if content:
        return [*outputs, {"role": "user", "content": content}]
    return outputs


# --- Assistant content ------------------------------------------------------------------------
def _reasoning_item(part: ir.Thinking, target: Target) -> dict[str, Any] | None:
    """A reasoning item replayed from our envelope; None when it is not ours for this model."""
    data = provider_data(part.signature, target.signing_key, PROVIDER, target.upstream_model)
    if data is None or not data.get("id") or not data.get("enc"):
        return None  # without encrypted_content a stateless replay is impossible
    summary = [{"type": "summary_text", "text": part.thinking}] if part.thinking else []
    return {
        "type": "reasoning",
        "id": data["id"],
        "summary": summary,
        "encrypted_content": data["enc"],
    }


def _stored_reasoning(state: dict[str, Any] | None, target: Target) -> dict[str, Any] | None:
    """The reasoning item the gateway kept for a call (gateway/tool_state.py), for this model."""
    if not state or state.get("p") != PROVIDER or state.get("m") != target.upstream_model:
        return None
    item_id, enc = state.get("id"), state.get("enc")
    if not isinstance(item_id, str) or not isinstance(enc, str) or not item_id or not enc:
        return None
    return {"type": "reasoning", "id": item_id, "summary": [], "encrypted_content": enc}


def _assistant_items(
    message: ir.Message, request: ir.Request, target: Target
) -> list[dict[str, Any]]:
    """Block order kept: reasoning, text runs and function calls as separate items. A call
    that no replayed reasoning item precedes gets the one the gateway kept for it."""
    items: list[dict[str, Any]] = []
    text = ""
    replayed: set[str] = set()  # reasoning item ids already in this turn

    def flush() -> None:
        nonlocal text
        if text:
            items.append({"role": "assistant", "content": text})
        text = ""

    for part in message.content:
        if isinstance(part, ir.Text):
            text += part.text
        elif isinstance(part, ir.ToolUse):
            flush()
            stored = _stored_reasoning(request.tool_state.get(part.id), target)
            if stored is not None and stored["id"] not in replayed:
                replayed.add(stored["id"])
                items.append(stored)
            items.append(
                {
                    "type": "function_call",
                    "call_id": chat_tool_id(part.id),
                    "name": part.name,
                    "arguments": _json.encode(part.input).decode(),
                }
            )
        elif isinstance(part, ir.Thinking) and (item := _reasoning_item(part, target)):
            flush()
            replayed.add(item["id"])
            items.append(item)
    flush()
    return items  # redacted thinking and foreign thinking are dropped


def responses_input(request: ir.Request, target: Target) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "user":
            items += _user_items(message)
        else:
            items += _assistant_items(message, request, target)
    return items


# --- Top-level fields -------------------------------------------------------------------------
def _tools(request: ir.Request) -> dict[str, Any]:
    if not request.tools:
        return {}  # tool_choice and parallel_tool_calls mean nothing without tools
    tools = []
    for tool in request.tools:
        function: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        # An omitted `strict` is not false here: OpenAI would force strict mode (3.4).
        function["parameters"] = tool.input_schema
        function["strict"] = False
        tools.append(function)
    fields: dict[str, Any] = {"tools": tools}
    choice = request.tool_choice
    if choice is not None:
        if choice.type == "tool":
            fields["tool_choice"] = {"type": "function", "name": choice.name}
        else:
            fields["tool_choice"] = _TOOL_CHOICE[choice.type]
        if choice.disable_parallel_tool_use:
            fields["parallel_tool_calls"] = False
    return fields


def web_search_tool(request: ir.Request) -> dict[str, Any]:
    """Anthropic's web_search as the built-in `web_search` tool (blocked_domains: see
    `unsupported_search`), with the pages it read asked for (`include`)."""
    tool = searched(request)
    if tool is None:
        return {}
    search: dict[str, Any] = {"type": "web_search"}
    if tool.allowed_domains:
        search["filters"] = {"allowed_domains": tool.allowed_domains}
    if tool.user_location:
        search["user_location"] = tool.user_location
    fields: dict[str, Any] = {"tool": search, "include": "web_search_call.action.sources"}
    if tool.max_uses is not None:
        fields["max_tool_calls"] = tool.max_uses  # the only built-in tool: its calls are searches
    return fields


def unsupported_search(request: ir.Request) -> list[str]:
    tool = searched(request)
    dropped = [f"{tool.where}.blocked_domains"] if tool and tool.blocked_domains else []
    if tool and tool.max_uses is not None and runs_code(request):
        dropped.append(f"{tool.where}.max_uses")  # max_tool_calls would cap code runs too
    return dropped


def _sampling(request: ir.Request, reasoning_model: bool) -> dict[str, Any]:
    """No `top_k` and no stop sequences exist in this API: both are dropped (5.2)."""
    fields: dict[str, Any] = {"max_output_tokens": request.max_tokens}
    if reasoning_model:
        # Reasoning models reject sampling parameters; they get the reasoning settings instead.
        reasoning = request.reasoning
        if reasoning is not None and reasoning.enabled:
            settings: dict[str, Any] = {}
            if (effort := reasoning_effort(reasoning)) is not None:
                settings["effort"] = effort
            if reasoning.summary:
                settings["summary"] = "auto"
            fields["reasoning"] = settings
            fields["include"] = ["reasoning.encrypted_content"]
        return fields
    if request.temperature is not None:
        fields["temperature"] = request.temperature
    if request.top_p is not None:
        fields["top_p"] = request.top_p
    return fields


def responses_body(request: ir.Request, target: Target) -> dict[str, Any]:
    """The Responses API body for `request` on `target`."""
    if request.unportable:
        raise refuse(request.unportable[0], target)
    body: dict[str, Any] = {"model": target.upstream_model}
    if request.system:
        body["instructions"] = "\n\n".join(t.text for t in request.system)
    body["input"] = responses_input(request, target)
    body.update(_sampling(request, is_reasoning_model(target.upstream_model)))
    body.update(_tools(request))
    if request.output_schema is not None:
        body["text"] = {
            "format": {"type": "json_schema", **json_schema_format(request.output_schema)}
        }
    if request.service_tier is not None:
        body["service_tier"] = SERVICE_TIER[request.service_tier]
    refuse_server_tools(request, SERVER_TOOLS, target.provider_name)
    if search := web_search_tool(request):
        body["tools"] = [*body.get("tools", []), search["tool"]]
        body["include"] = [*body.get("include", []), search["include"]]
        if "max_tool_calls" in search and not runs_code(request):
            body["max_tool_calls"] = search["max_tool_calls"]
    if runs_code(request):
        body["tools"] = [*body.get("tools", []), CODE_INTERPRETER]
        body["include"] = [*body.get("include", []), "code_interpreter_call.outputs"]
    body["store"] = False
    if request.stream:
        body["stream"] = True
    if request.user_id:
        # Never forward a tenant's raw user id; a stable hash serves abuse tracking as well.
        body["safety_identifier"] = ids.hashed_user_id(request.user_id)
    if request.cache_key:
        # Per tenant (gateway/prompt_cache.py); a key the client chose is folded into it.
        body["prompt_cache_key"] = request.cache_key
    # Options the client addressed to OpenAI, from the table only; they never replace ours.
    options.apply(OPTIONS, request.provider_options, body)
    return body
