"""IR request -> Gemini `generateContent` request body (reference 5.2-5.7, 5.12.3-5.12.4).

Pure: the target and the IR request are all it reads. Tool schemas are sanitised by
`schema.py`; the response and stream side lives in `upstream_response.py` and
`upstream_stream.py`.
"""

from __future__ import annotations

from typing import Any

from core import ir
from core.errors import InvalidRequest
from core.target import Target
from protocols import options
from protocols.envelope import provider_data
from protocols.gemini.schema import gemini_parameters
from protocols.openai_chat.request import refuse
from protocols.web_search import fetched, refuse_server_tools, runs_code, searched

PROVIDER = "gemini"  # the envelope's provider name
# Documented placeholder for function calls whose signature Gemini never gave us (4.3).
SKIP_SIGNATURE = "skip_thought_signature_validator"
MAX_STOP_SEQUENCES = 5
# Gemini 2.5 takes a budget, not an effort: these fit every 2.5 model's range (reference 5.7).
BUDGET_BY_EFFORT = {
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}
# Anthropic server tools Gemini has its own of (code execution: the Python version; web fetch:
# url_context).
SERVER_TOOLS = frozenset({"web_search", "web_fetch", "code_execution"})
_MODES = {"auto": "AUTO", "any": "ANY", "tool": "ANY", "none": "NONE"}
# What a client may set under `provider_options.google` (see options.py). A cache's TTL is
# chosen when the cache is created: generateContent has no field for the last two.
_NO_TTL_FIELD = options.unmapped("generateContent has no such field: set the TTL on the cache")
OPTIONS = options.OptionTable(
    "google",
    {
        "cached_content": options.Option(
            ("cachedContent",),
            options.text(200, r"cachedContents/[A-Za-z0-9_.-]+", "cachedContents/<id>"),
        ),
        "safety_settings": options.Option(("safetySettings",), options.SAFETY_SETTINGS),
        "safetySettings": options.Option(("safetySettings",), options.SAFETY_SETTINGS),
        "cache_ttl": options.Option(None, _NO_TTL_FIELD),
        "cache_control": options.Option(None, _NO_TTL_FIELD),
    },
)


# --- Tool names -------------------------------------------------------------------------------
def gemini_name(name: str) -> str:
    """Gemini function names must not start with a digit (reference 5.5)."""
    return "_" + name if name[:1].isdigit() else name


def renamed_tools(request: ir.Request) -> dict[str, str]:
    """Gemini name -> client name, for the tools renamed on the way out."""
    return {gemini_name(t.name): t.name for t in request.tools if t.name[:1].isdigit()}


# --- User content -----------------------------------------------------------------------------
def _inline(media_type: str, data: str) -> dict[str, Any]:
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _user_part(part: ir.Part, target: Target) -> list[dict[str, Any]]:
    if isinstance(part, ir.Text):
        return [{"text": part.text}] if part.text else []
    if isinstance(part, ir.Image):
        if part.data is None:
            # The Developer API cannot fetch URLs and codecs do not download: another route may.
            raise refuse("an image given by URL", target)
        return [_inline(part.media_type or "image/png", part.data)]
    if isinstance(part, ir.Document):
        if part.parts is not None:
            return [g for p in part.parts for g in _user_part(p, target)]
        if part.text is not None:
            return [{"text": f"{part.title}\n\n{part.text}" if part.title else part.text}]
        if part.data is not None:
            return [_inline(part.media_type or "application/pdf", part.data)]
        raise refuse("a document given by URL", target)
    return []  # thinking and stray tool_use blocks have no place in a user turn


def _function_response(
    result: ir.ToolResult, names: dict[str, str], target: Target
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `functionResponse` part, and the media parts that must follow the responses."""
    name = names.get(result.tool_use_id)
    if name is None:
        raise InvalidRequest(
            f"tool_result `{result.tool_use_id}` does not answer any tool_use in the history"
        )
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    for part in result.content:
        for g in _user_part(part, target):
            if "text" in g:
                texts.append(g["text"])
            else:
                media.append(g)
    text = "\n".join(texts)
    response = {"error": text} if result.is_error else {"output": text}
    call = {"name": gemini_name(name), "id": result.tool_use_id, "response": response}
    return {"functionResponse": call}, media


def _user_parts(message: ir.Message, names: dict[str, str], target: Target) -> list[dict[str, Any]]:
    """Function responses first, then the images they returned, then the rest of the turn."""
    responses: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ir.ToolResult):
            response, returned = _function_response(part, names, target)
            responses.append(response)
            media += returned
        else:
            rest += _user_part(part, target)
    return responses + media + rest


# --- Model content ----------------------------------------------------------------------------
def _stored_signature(state: dict[str, Any] | None, target: Target) -> str | None:
    """A call's thought signature kept by the gateway (gateway/tool_state.py), for this model."""
    if not state or state.get("p") != PROVIDER or state.get("m") != target.upstream_model:
        return None
    signature = state.get("ts")
    return signature if isinstance(signature, str) and signature else None


def _model_parts(message: ir.Message, request: ir.Request, target: Target) -> list[dict[str, Any]]:
    """Text, restored thoughts and function calls, in the turn's order.

    A thinking block survives only as a Gemini envelope for this model (5.12.3); its thought
    signature also goes on the next function call, as Gemini 3 requires (5.12.4). A call
    without one gets the signature the gateway kept for it, else the documented placeholder
    (on the turn's first call only).
    """
    parts: list[dict[str, Any]] = []
    pending: str | None = None  # signature of a restored thought, owed to the next call
    first_call = True
    for part in message.content:
        if isinstance(part, ir.Text) and part.text:
            parts.append({"text": part.text})
        elif isinstance(part, ir.Thinking):
            data = provider_data(
                part.signature, target.signing_key, PROVIDER, target.upstream_model
            )
            if data is None:
                continue  # another provider's thinking, or none of ours: never transferred
            thought: dict[str, Any] = {"text": part.thinking, "thought": True}
            if isinstance(data.get("ts"), str):
                thought["thoughtSignature"] = pending = data["ts"]
            parts.append(thought)
        elif isinstance(part, ir.ToolUse):
            call = {"name": gemini_name(part.name), "args": part.input, "id": part.id}
            signed: dict[str, Any] = {"functionCall": call}
            stored = _stored_signature(request.tool_state.get(part.id), target)
            signature = pending or stored or (SKIP_SIGNATURE if first_call else None)
            if signature:
                signed["thoughtSignature"] = signature
            parts.append(signed)
            pending, first_call = None, False
    return parts  # redacted thinking is Anthropic's alone: dropped


def gemini_contents(request: ir.Request, target: Target) -> list[dict[str, Any]]:
    names = {p.id: p.name for m in request.messages for p in m.content if isinstance(p, ir.ToolUse)}
    contents: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "user":
            role, parts = "user", _user_parts(message, names, target)
        else:
            role, parts = "model", _model_parts(message, request, target)
        if not parts:
            continue  # Gemini rejects a content without parts
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"] += parts
        else:
            contents.append({"role": role, "parts": parts})
    return contents


# --- Top-level fields -------------------------------------------------------------------------
def _tools(request: ir.Request) -> dict[str, Any]:
    if not request.tools:
        return {}
    declarations = []
    for tool in request.tools:
        declaration: dict[str, Any] = {"name": gemini_name(tool.name)}
        if tool.description is not None:
            declaration["description"] = tool.description
        declaration["parameters"] = gemini_parameters(tool.input_schema)
        declarations.append(declaration)
    fields: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    choice = request.tool_choice
    if choice is not None:
        config: dict[str, Any] = {"mode": _MODES[choice.type]}
        if choice.type == "tool" and choice.name:
            config["allowedFunctionNames"] = [gemini_name(choice.name)]
        # disable_parallel_tool_use has no equivalent: the response keeps only the first call.
        fields["toolConfig"] = {"functionCallingConfig": config}
    return fields


def _thinking_level(reasoning: ir.Reasoning) -> str | None:
    if reasoning.budget_tokens is not None:
        return "LOW" if reasoning.budget_tokens < 4096 else "HIGH"
    if reasoning.effort is None:
        return None  # adaptive: the model's default level
    return "LOW" if reasoning.effort in ("minimal", "low") else "HIGH"


def thinking_config(reasoning: ir.Reasoning | None, upstream_model: str) -> dict[str, Any] | None:
    """Reference 5.7. Not asked -> nothing (a thinkingConfig on a non-thinking model is a 400)."""
    if reasoning is None or not reasoning.enabled:
        return None
    config: dict[str, Any] = {}
    if "gemini-3" in upstream_model:
        if (level := _thinking_level(reasoning)) is not None:
            config["thinkingLevel"] = level
    else:
        # A budget as asked, or one for the effort asked; adaptive gets Gemini's dynamic budget.
        budget = reasoning.budget_tokens
        if budget is None and reasoning.effort is not None and not reasoning.adaptive:
            budget = BUDGET_BY_EFFORT[reasoning.effort]
        config["thinkingBudget"] = budget if budget is not None else -1
    config["includeThoughts"] = reasoning.summary
    return config


def _generation_config(request: ir.Request, target: Target) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": request.max_tokens}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.top_k is not None:
        config["topK"] = request.top_k
    if request.stop_sequences:
        config["stopSequences"] = request.stop_sequences[:MAX_STOP_SEQUENCES]
    thinking = thinking_config(request.reasoning, target.upstream_model)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    if request.output_schema is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = request.output_schema
    return config


def unsupported_search(request: ir.Request) -> list[str]:
    """What Google Search grounding has no setting for: reported by the strictness rule."""
    tool = searched(request)
    if tool is None:
        return []
    named = ("max_uses", "allowed_domains", "blocked_domains", "user_location")
    return [f"{tool.where}.{name}" for name in named if getattr(tool, name) is not None]


def unsupported_fetch(request: ir.Request) -> list[str]:
    """What url_context has no setting for (citations only when asked for)."""
    tool = fetched(request)
    if tool is None:
        return []
    named = ("max_uses", "allowed_domains", "blocked_domains", "max_content_tokens")
    dropped = [f"{tool.where}.{name}" for name in named if getattr(tool, name) is not None]
    return dropped + ([f"{tool.where}.citations"] if tool.citations else [])


def gemini_body(request: ir.Request, target: Target) -> dict[str, Any]:
    """The generateContent body for `request` on `target` (the model is in the URL)."""
    if request.unportable:
        raise refuse(request.unportable[0], target)
    body: dict[str, Any] = {"contents": gemini_contents(request, target)}
    system = [{"text": t.text} for t in request.system if t.text]
    if system:
        body["systemInstruction"] = {"parts": system}
    body.update(_tools(request))
    refuse_server_tools(request, SERVER_TOOLS, target.provider_name)
    if searched(request) is not None:
        body["tools"] = [*body.get("tools", []), {"google_search": {}}]  # grounding
    if fetched(request) is not None:
        body["tools"] = [*body.get("tools", []), {"url_context": {}}]
    if runs_code(request):
        body["tools"] = [*body.get("tools", []), {"code_execution": {}}]
    body["generationConfig"] = _generation_config(request, target)
    # metadata.user_id has no Gemini field: dropped (reference 5.2).
    # Options the client addressed to Google, from the table only; they never replace ours.
    options.apply(OPTIONS, request.provider_options, body)
    return body
