"""IR request -> OpenAI Chat Completions request body (reference sections 5.2-5.7).

Pure: the target and the IR request are all it reads. The response and stream side lives in
`upstream_response.py` and `upstream_stream.py`; they share the tool-id rule and the
reasoning-model test defined here.
"""

from __future__ import annotations

import hashlib
import re
import string
from typing import Any
from urllib.parse import urlsplit

import msgspec

from core import ids, ir
from core.errors import RouteRefusal
from core.target import Target
from protocols import options, web_search

# OpenAI accepts at most 40 characters; Anthropic only these characters (reference 5.12.1).
CHAT_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]{1,40}")
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
SERVER_TOOLS = frozenset({"web_search"})  # with a search model (web_search_options)
MAX_STOP_SEQUENCES = 4
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_json = msgspec.json.Encoder()

# What a client may set under `provider_options.openai` on Chat Completions (see options.py).
PROMPT_CACHE_KEY = options.text(256)
PROMPT_CACHE_RETENTION = options.one_of("in_memory", "24h", aliases={"in-memory": "in_memory"})
VERBOSITY = options.one_of("low", "medium", "high")
OPTIONS = options.OptionTable(
    "openai",
    {
        "prompt_cache_key": options.Option(("prompt_cache_key",), PROMPT_CACHE_KEY),
        "prompt_cache_retention": options.Option(
            ("prompt_cache_retention",), PROMPT_CACHE_RETENTION
        ),
        "verbosity": options.Option(("verbosity",), VERBOSITY),
    },
)


def is_reasoning_model(upstream_model: str) -> bool:
    """OpenAI's reasoning models want `max_completion_tokens` and reject sampling parameters."""
    return upstream_model.rsplit("/", 1)[-1].lower().startswith(REASONING_PREFIXES)


def chat_tool_id(tool_id: str) -> str:
    """The id sent upstream: unchanged when OpenAI accepts it, else a stable rewrite.

    Deterministic, so the call and its result (both rebuilt from the client's history) stay
    paired without a mapping table.
    """
    if CHAT_TOOL_ID.fullmatch(tool_id):
        return tool_id
    n = int.from_bytes(hashlib.sha256(tool_id.encode()).digest(), "big")
    digits = []
    while n:
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    return "t_" + "".join(reversed(digits))[:24]


def refuse(feature: str, target: Target) -> RouteRefusal:
    """A 400 naming what cannot be sent; another route (e.g. Anthropic) may still serve it.

    Decided before any network call, so it never counts against the route (core/errors.py).
    """
    return RouteRefusal(feature, target.provider_name)


# --- Content parts ----------------------------------------------------------------------------
def _image_part(image: ir.Image) -> dict[str, Any]:
    url = image.url if image.data is None else f"data:{image.media_type};base64,{image.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(doc: ir.Document, target: Target) -> list[dict[str, Any]]:
    if doc.parts is not None:
        return [chat for p in doc.parts for chat in _user_part(p, target)]
    if doc.text is not None:
        text = f"{doc.title}\n\n{doc.text}" if doc.title else doc.text
        return [{"type": "text", "text": text}]
    if doc.data is not None:
        media_type = doc.media_type or "application/pdf"
        file = {
            "filename": doc.title or "document.pdf",
            "file_data": f"data:{media_type};base64,{doc.data}",
        }
        return [{"type": "file", "file": file}]
    # Chat has no file URL and codecs do not download: refuse rather than drop the document.
    raise refuse("a document given by URL", target)


def _user_part(part: ir.Part, target: Target) -> list[dict[str, Any]]:
    if isinstance(part, ir.Text):
        return [{"type": "text", "text": part.text}]
    if isinstance(part, ir.Image):
        return [_image_part(part)]
    if isinstance(part, ir.Document):
        return _document_parts(part, target)
    return []  # thinking and stray tool_use blocks have no place in a user turn


def _tool_messages(
    result: ir.ToolResult, target: Target
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One `tool` message (text only) and the media parts that must follow in a user message."""
    call_id = chat_tool_id(result.tool_use_id)
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    for part in result.content:
        for chat_part in _user_part(part, target):
            if chat_part["type"] == "text":
                texts.append(chat_part["text"])
            else:
                media.append(chat_part)
    if media:
        texts.append("[image attached below]")
        media.insert(0, {"type": "text", "text": f"Images returned by tool {call_id}:"})
    text = "\n".join(texts)
    if result.is_error:
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": call_id, "content": text}, media


# --- Messages ---------------------------------------------------------------------------------
def _user_messages(message: ir.Message, target: Target) -> list[dict[str, Any]]:
    """Tool results first (as `tool` messages), then one user message with the rest."""
    out: list[dict[str, Any]] = []
    deferred: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ir.ToolResult):
            tool_message, media = _tool_messages(part, target)
            out.append(tool_message)
            deferred += media
        else:
            rest += _user_part(part, target)
    content = deferred + rest
    if len(content) == 1 and content[0]["type"] == "text":
        out.append({"role": "user", "content": content[0]["text"]})
    elif content:
        out.append({"role": "user", "content": content})
    return out


def _assistant_message(message: ir.Message) -> dict[str, Any] | None:
    text = "".join(p.text for p in message.content if isinstance(p, ir.Text))
    calls = [
        {
            "id": chat_tool_id(p.id),
            "type": "function",
            "function": {"name": p.name, "arguments": _json.encode(p.input).decode()},
        }
        for p in message.content
        if isinstance(p, ir.ToolUse)
    ]
    if not text and not calls:
        return None  # a turn with only thinking becomes nothing
    chat: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        chat["tool_calls"] = calls
    return chat


def chat_messages(request: ir.Request, target: Target) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        system = "\n\n".join(t.text for t in request.system)
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role == "user":
            messages += _user_messages(message, target)
        elif (chat := _assistant_message(message)) is not None:
            messages.append(chat)
    return messages


# --- Top-level fields -------------------------------------------------------------------------
def _tools(request: ir.Request) -> dict[str, Any]:
    if not request.tools:
        return {}  # OpenAI rejects tool_choice and parallel_tool_calls without tools
    tools = []
    for tool in request.tools:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        function["parameters"] = tool.input_schema
        tools.append({"type": "function", "function": function})
    fields: dict[str, Any] = {"tools": tools}
    choice = request.tool_choice
    if choice is not None:
        fields["tool_choice"] = {
            "auto": "auto",
            "any": "required",
            "none": "none",
            "tool": {"type": "function", "function": {"name": choice.name}},
        }[choice.type]
        if choice.disable_parallel_tool_use:
            fields["parallel_tool_calls"] = False
    return fields


# Efforts OpenAI has no name for on most models, sent as the nearest (reference 5.7).
NEAREST_EFFORT = {"xhigh": "high", "max": "high"}
# Anthropic's `service_tier` -> OpenAI's: `auto` uses priority capacity where the project has it.
SERVICE_TIER = {"auto": "auto", "standard_only": "default"}


def reasoning_effort(reasoning: ir.Reasoning | None) -> str | None:
    """Reference 5.7: the client's effort, or one derived from its thinking budget."""
    if reasoning is None or not reasoning.enabled:
        return None
    if reasoning.effort is not None:
        return NEAREST_EFFORT.get(reasoning.effort, reasoning.effort)
    budget = reasoning.budget_tokens
    if budget is None:
        return None  # adaptive: the model's default
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _sampling(request: ir.Request, reasoning_model: bool, options: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if reasoning_model:
        # Reasoning models reject sampling parameters and (o3, o4-mini, gpt-5) `stop`.
        fields["max_completion_tokens"] = request.max_tokens
        if (effort := reasoning_effort(request.reasoning)) is not None:
            fields["reasoning_effort"] = effort
        return fields
    fields[options.get("max_tokens_field", "max_tokens")] = request.max_tokens
    if request.top_k is not None and options.get("top_k"):
        fields["top_k"] = request.top_k  # an extra field servers like vLLM accept
    if request.temperature is not None:
        fields["temperature"] = request.temperature
    if request.top_p is not None:
        fields["top_p"] = request.top_p
    if request.stop_sequences:
        fields["stop"] = request.stop_sequences[:MAX_STOP_SEQUENCES]
    return fields  # top_k has no Chat equivalent: dropped


def sends_cache_key(target: Target) -> bool:
    """OpenAI takes `prompt_cache_key`; a compatible server may reject a field it does not
    know, so elsewhere the provider option `prompt_cache_key: true` turns it on."""
    chosen = target.options.get("prompt_cache_key")
    if isinstance(chosen, bool):
        return chosen
    return urlsplit(target.base_url).hostname == "api.openai.com" if target.base_url else False


def json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    """`output_config.format` as OpenAI names it; not `strict`, whose schema subset Anthropic's
    structured outputs do not require (reference 5.2)."""
    return {"name": "output", "schema": schema, "strict": False}


def _web_search(request: ir.Request, target: Target) -> dict[str, Any]:
    """Anthropic's web_search as a search model's `web_search_options`; any other server tool,
    or a model that cannot search, refuses the route (a tool is never silently removed)."""
    web_search.refuse_server_tools(request, SERVER_TOOLS, target.provider_name)
    tool = web_search.searched(request)
    if tool is None:
        return {}
    if not web_search.is_search_model(target.upstream_model, target.options):
        raise refuse(f"{tool.where} (server tool `{tool.type}`, needs a search model)", target)
    return {"web_search_options": web_search.chat_search_options(tool)}


def unsupported_search(request: ir.Request) -> list[str]:
    tool = web_search.searched(request)
    if tool is None:
        return []
    named = ("max_uses", "allowed_domains", "blocked_domains")
    return [f"{tool.where}.{name}" for name in named if getattr(tool, name) is not None]


def chat_body(request: ir.Request, target: Target) -> dict[str, Any]:
    """The Chat Completions body for `request` on `target`."""
    if request.unportable:
        raise refuse(request.unportable[0], target)
    body: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": chat_messages(request, target),
    }
    body.update(_sampling(request, is_reasoning_model(target.upstream_model), target.options))
    if request.stream:
        body["stream"] = True
        if target.options.get("stream_usage", True):
            body["stream_options"] = {"include_usage": True}
    body.update(_tools(request))
    if request.output_schema is not None:
        schema = json_schema_format(request.output_schema)
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    if request.service_tier is not None and target.options.get("service_tier", True):
        # Servers with one tier (preset option `service_tier: false`) honour both values as is.
        body["service_tier"] = SERVICE_TIER[request.service_tier]
    body.update(_web_search(request, target))
    if request.user_id:
        # Never forward a tenant's raw user id; a stable hash serves abuse tracking as well.
        body["safety_identifier"] = ids.hashed_user_id(request.user_id)
    if request.cache_key and sends_cache_key(target):
        # Per tenant (gateway/prompt_cache.py); a key the client chose is folded into it.
        body["prompt_cache_key"] = request.cache_key
    # Options the client addressed to OpenAI, from the table only; they never replace ours.
    options.apply(OPTIONS, request.provider_options, body)
    return body
