"""OpenAI Chat completion (JSON) -> IR response, for an OpenAI Chat upstream. Pure.

Reference 5.8-5.10: a completion's first choice becomes the response's content, its usage ours
(cached tokens apart), its finish reason a stop reason. The helpers above `response_from` are
shared with the stream decoder (upstream_stream.py) and the Responses API's decoders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from core import ids, ir
from core.target import Target
from core.tokens import estimate_input_tokens, estimate_output_tokens
from protocols import web_search
from protocols.envelope import seal
from protocols.openai_chat.request import CHAT_TOOL_ID

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def thinking_signature(target: Target) -> str:
    """The signature carried by thinking blocks from this upstream (reference 5.12.3).

    Chat has no reasoning state to replay: the envelope only gives clients a non-empty,
    gateway-signed signature.
    """
    return seal("openai-chat", target.upstream_model, {}, target.signing_key)


def wants_thinking(request: ir.Request) -> bool:
    """Reasoning text is shown only to clients that asked for it (reference 5.7)."""
    reasoning = request.reasoning
    return reasoning is not None and reasoning.enabled and reasoning.summary


# --- Shared by responses and streams ----------------------------------------------------------
def response_tool_id(upstream_id: Any) -> str:
    """Reference 5.12.1: keep the upstream's id when every surface accepts it, else mint one."""
    if isinstance(upstream_id, str) and CHAT_TOOL_ID.fullmatch(upstream_id):
        return upstream_id
    return ids.tool_use_id()


def tool_input(arguments: Any) -> dict[str, Any]:
    """Decoded `function.arguments`; a broken string (often cut by `length`) is kept raw."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = _decode.decode(arguments)
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return _encode.encode(arguments).decode() if isinstance(arguments, dict) else ""


def stop_reason(finish: Any, saw_tool: bool, saw_refusal: bool) -> ir.StopReason:
    """Reference 5.9.1; some servers say `stop` although the message calls tools."""
    if finish == "length":
        return "max_tokens"
    if finish == "content_filter" or saw_refusal:
        return "refusal"
    if finish in ("tool_calls", "function_call") or saw_tool:
        return "tool_use"
    return "end_turn"


# A refusal's explanation keeps at most this much of the refusal text the model wrote.
EXPLANATION_CHARS = 1000
# Azure OpenAI names the filters that fired (`content_filter_results`): harms map to Anthropic's
# `general_harms`; protected material or a jailbreak to no named category.
HARM_FILTERS = frozenset({"hate", "self_harm", "sexual", "violence", "profanity"})
_FILTER_NAME = re.compile(r"[a-z_]{1,40}")


def refusal_details(text: str, filters: Any = None) -> ir.StopDetails:
    """A refusal's `stop_details`: OpenAI says why only in the refusal text the model wrote
    (`message.refusal`, a Responses `refusal` part); Azure adds the filters that fired."""
    fired = [
        name
        for name, result in (filters.items() if isinstance(filters, dict) else ())
        if _FILTER_NAME.fullmatch(str(name)) and isinstance(result, dict) and result.get("filtered")
    ][:8]
    explanation = text[:EXPLANATION_CHARS] or (
        "content filter: " + ", ".join(fired) if fired else None
    )
    category = "general_harms" if HARM_FILTERS.intersection(fired) else None
    return ir.StopDetails(category=category, explanation=explanation)


def _count(data: Any, key: str) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) else 0


@dataclass(frozen=True, slots=True)
class UsageNames:
    """Where an OpenAI surface puts its usage figures (Chat and Responses name them apart)."""

    prompt: str
    completion: str
    prompt_details: str
    completion_details: str


CHAT_USAGE = UsageNames(
    "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"
)
RESPONSES_USAGE = UsageNames(
    "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"
)


def usage_from(data: Any, names: UsageNames = CHAT_USAGE) -> ir.Usage | None:
    """Reference 5.10: OpenAI's prompt count includes cached and cache-write tokens; ours not."""
    if not isinstance(data, dict):
        return None
    details = data.get(names.prompt_details)
    cached = _count(details, "cached_tokens")
    written = _count(details, "cache_write_tokens")
    return ir.Usage(
        input_tokens=max(0, _count(data, names.prompt) - cached - written),
        output_tokens=_count(data, names.completion),
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=written,
        reasoning_tokens=_count(data.get(names.completion_details), "reasoning_tokens"),
    )


def _text_of(content: Any) -> str:
    """`content` is a string, or on some servers an array of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def reasoning_of(source: dict[str, Any]) -> str:
    """Reasoning text, a non-standard extension (DeepSeek, vLLM, Ollama, OpenRouter)."""
    value = source.get("reasoning_content") or source.get("reasoning")
    return value if isinstance(value, str) else ""


def first_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    for choice in body.get("choices") or []:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


# --- Non-streaming ----------------------------------------------------------------------------
def _tool_use(call: dict[str, Any]) -> ir.ToolUse:
    function = call.get("function") or {}
    return ir.ToolUse(
        id=response_tool_id(call.get("id")),
        name=str(function.get("name") or ""),
        input=tool_input(function.get("arguments")),
    )


def service_tier(value: Any) -> ir.ServiceTier | None:
    """OpenAI's answered tier in Anthropic's words (reference 5.10): `priority` is priority;
    `default`, `auto`, `flex` and `scale` are standard capacity, Anthropic's only other tier
    for a synchronous call (its `batch` is the Message Batches API)."""
    if not isinstance(value, str) or not value:
        return None
    return "priority" if value == "priority" else "standard"


def response_from(body: dict[str, Any], request: ir.Request, target: Target) -> ir.Response:
    choice = first_choice(body) or {}
    message = choice.get("message") or {}
    content: list[ir.Part] = []
    reasoning = reasoning_of(message)
    if reasoning and wants_thinking(request):
        content.append(ir.Thinking(reasoning, signature=thinking_signature(target)))
    text = _text_of(message.get("content"))
    cited = web_search.chat_citations(message.get("annotations"), text)
    searched = web_search.searched(request) is not None
    if searched:
        content += web_search.chat_search_parts(request, cited, body.get("id"))
    if text:
        content.append(ir.Text(text, citations=cited or None))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(ir.Text(refusal))
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    content += [_tool_use(c) for c in calls]
    usage = usage_from(body.get("usage"))
    if usage is None:
        arguments = "".join(
            arguments_text((c.get("function") or {}).get("arguments")) for c in calls
        )
        chars = len(reasoning) + len(text) + len(refusal or "") + len(arguments)
        usage = ir.Usage(
            input_tokens=estimate_input_tokens(request),
            output_tokens=estimate_output_tokens(chars),
            estimated=True,
        )
    if searched:
        usage.web_search_requests = 1  # a search model searches once per request
    stop = stop_reason(choice.get("finish_reason"), bool(calls), bool(refusal))
    details = None
    if stop == "refusal":
        details = refusal_details(refusal or "", choice.get("content_filter_results"))
    return ir.Response(
        content=content,
        stop_reason=stop,
        usage=usage,
        upstream_id=body.get("id"),
        stop_details=details,
        service_tier=service_tier(body.get("service_tier")),
    )
