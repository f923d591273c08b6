"""Anthropic Messages JSON -> IR, with Anthropic's validation rules and error wording.

Pure: no ORM, no settings, no network. Errors are `InvalidRequest` whose message starts with
the JSON path of the bad field (`messages.1.content.0.text: ...`), as Anthropic's API does.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from core import client_json, ir
from core.errors import InvalidRequest
from protocols.anthropic.schema import (
    KNOWN_FIELDS,
    WITHHELD_FIELDS,
    CountTokensBody,
    MessagesBody,
    SystemBlockIn,
    ToolIn,
)
from protocols.anthropic.server_tools import context_edits, server_block, server_tool

T = TypeVar("T")

TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")
_BOUND = re.compile(r"^Expected `(?:int|float)` (>=|<=|>|<) (\S+)$")
_BOUND_WORDS = {
    ">=": "greater than or equal to",
    ">": "greater than",
    "<=": "less than or equal to",
    "<": "less than",
}
_EFFORT_BY_BUDGET = ((16384, "high"), (4096, "medium"), (0, "low"))


def _path(msgspec_path: str) -> str:
    """`$.messages[1].content[0]` -> `messages.1.content.0`."""
    return re.sub(r"\[(\d+)\]", r".\1", msgspec_path).lstrip(".")


def _invalid(err: msgspec.ValidationError) -> InvalidRequest:
    """A schema violation in Anthropic's words: `<json.path>: <problem>`."""
    text = str(err)
    where = ""
    if m := _MSGSPEC_PATH.search(text):
        where = _path(m.group(1))
        text = text[: m.start()]
    if m := _MISSING.match(text):
        field = f"{where}.{m.group(1)}" if where else m.group(1)
        return InvalidRequest(f"{field}: Field required")
    if m := _BOUND.match(text):
        bound = m.group(2).removesuffix(".0")
        text = f"Input should be {_BOUND_WORDS[m.group(1)]} {bound}"
    return InvalidRequest(f"{where}: {text}" if where else text)


def typed(wire: dict[str, Any], kind: type[T]) -> T:
    """`wire` as the schema `kind`, or InvalidRequest naming the JSON path (every surface)."""
    try:
        return msgspec.convert(wire, kind)
    except msgspec.ValidationError as err:
        raise _invalid(err) from None


def messages_body(wire: dict[str, Any]) -> MessagesBody:
    """The typed view of a `/v1/messages` body already decoded by `client_json`."""
    return typed(wire, MessagesBody)


def count_tokens_body(wire: dict[str, Any]) -> CountTokensBody:
    return typed(wire, CountTokensBody)


def decode_messages(body: bytes) -> MessagesBody:
    return messages_body(client_json.decode_object(body))


def decode_count_tokens(body: bytes) -> CountTokensBody:
    return count_tokens_body(client_json.decode_object(body))


def unknown_fields(wire: dict[str, Any] | bytes) -> list[str]:
    """Top-level fields outside the schema, of the decoded body (raw bytes are decoded first)."""
    if isinstance(wire, bytes):
        wire = client_json.decode_object(wire)
    return [k for k in wire if k not in KNOWN_FIELDS and k not in WITHHELD_FIELDS]


def withheld_fields(wire: dict[str, Any], headers: dict[bytes, bytes]) -> list[str]:
    """The fields no route gets (schema.WITHHELD_FIELDS), named as the client sent them."""
    return [
        name if name in wire else f"{name} ({header.decode()} header)"
        for name, header in WITHHELD_FIELDS.items()
        if name in wire or header in headers
    ]


def long_cache_ttls(wire: dict[str, Any]) -> list[str]:
    """Block-level `cache_control` asking a 1-hour TTL, which a translated route cannot keep:
    its provider caches prefixes for minutes on its own terms. One entry naming the first."""
    found = [where for where, block in _cacheable_blocks(wire) if _one_hour(block)]
    if not found:
        return []
    more = f", and {len(found) - 1} more" if len(found) > 1 else ""
    return [f"cache_control ttl `1h` ({found[0]}{more})"]


def _one_hour(block: Any) -> bool:
    control = block.get("cache_control") if isinstance(block, dict) else None
    return isinstance(control, dict) and control.get("ttl") == "1h"


def _cacheable_blocks(wire: dict[str, Any]):
    for key in ("system", "tools"):
        if isinstance(wire.get(key), list):
            yield from ((f"{key}.{i}", b) for i, b in enumerate(wire[key]))
    messages = wire.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            yield f"messages.{i}.content.{j}", block
            inner = block.get("content") if isinstance(block, dict) else None
            for k, sub in enumerate(inner if isinstance(inner, list) else []):
                yield f"messages.{i}.content.{j}.content.{k}", sub


def to_ir(body: MessagesBody | CountTokensBody, *, beta: list[str] | None = None) -> ir.Request:
    """Validate what the schema cannot express and build the IR request."""
    beta = beta or []
    unportable: list[str] = []
    system = _system(body.system)
    messages = _messages(body.messages, unportable, system)
    tools = _tools(body.tools or [], unportable)
    server_tools = [
        t for i, tool in enumerate(body.tools or []) if (t := server_tool(tool, f"tools.{i}"))
    ]
    max_tokens = getattr(body, "max_tokens", 0)
    request = ir.Request(
        model=body.model,
        messages=messages,
        max_tokens=max_tokens,
        system=system,
        tools=tools,
        server_tools=server_tools,
        tool_choice=_tool_choice(body.tool_choice, tools),
        reasoning=_reasoning(body, max_tokens, beta),
        output_schema=_output_schema(body),
        beta=beta,
        unportable=unportable,
    )
    if isinstance(body, MessagesBody):
        request.temperature = body.temperature
        request.top_p = body.top_p
        request.top_k = body.top_k
        request.stop_sequences = body.stop_sequences or []
        request.stream = body.stream
        request.user_id = body.metadata.user_id if body.metadata else None
        request.provider_options = body.provider_options or {}
        request.service_tier = body.service_tier
        request.context_edits = context_edits(body.context_management, request.context_dropped)
    return request


def _output_schema(body: MessagesBody | CountTokensBody) -> dict[str, Any] | None:
    output_format = body.output_config.format if body.output_config else None
    return output_format.schema if output_format is not None else None


def _system(system: str | list[SystemBlockIn] | None) -> list[ir.Text]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ir.Text(system)] if system else []
    return [ir.Text(b.text, cache_control=b.cache_control) for b in system]


def _messages(items: list, unportable: list[str], system: list[ir.Text]) -> list[ir.Message]:
    """Conversation turns; `system` turns are folded into the system prompt (reference 1.4.2)."""
    merged: list[ir.Message] = []
    results: list[tuple[int, str, str]] = []  # (merged turn, tool_use_id, where) of tool_results
    for i, item in enumerate(items):
        content = item.content
        if item.role == "system":
            system.extend(_system_turn(content, f"messages.{i}.content"))
            continue
        if not (merged and merged[-1].role == item.role):
            merged.append(ir.Message(role=item.role, content=[]))
        if isinstance(content, str):
            if content:
                merged[-1].content.append(ir.Text(content))
            continue
        for j, b in enumerate(content):  # consecutive same-role turns merge, as Anthropic's do
            part = _block(b, f"messages.{i}.content.{j}", unportable)
            if isinstance(part, ir.ToolResult):
                results.append((len(merged) - 1, part.tool_use_id, f"messages.{i}.content.{j}"))
            if part is not None:
                merged[-1].content.append(part)
    _check_tool_pairing(merged, results)
    return merged


def _system_turn(content: str | list[dict], where: str) -> list[ir.Text]:
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    texts = []
    for j, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"{where}.{j}: system turns may only hold text blocks")
        texts.append(_text(block, f"{where}.{j}"))
    return texts


def _tool_use_ids(message: ir.Message) -> list[str]:
    return [p.id for p in message.content if isinstance(p, ir.ToolUse)]


def _check_tool_pairing(messages: list[ir.Message], results: list[tuple[int, str, str]]) -> None:
    """Every `tool_use` answered in the next turn, every `tool_result` asked in the previous."""
    for i, msg in enumerate(messages):
        if msg.role != "assistant" or i + 1 == len(messages):
            continue  # the last assistant turn may be a prefill that calls a tool
        answered = {p.tool_use_id for p in messages[i + 1].content if isinstance(p, ir.ToolResult)}
        missing = [t for t in _tool_use_ids(msg) if t not in answered]
        if missing:
            raise InvalidRequest(
                f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
    asked: dict[int, set[str]] = {}
    unexpected: list[tuple[int, str, str]] = []
    for turn, tool_use_id, where in results:
        if turn not in asked:
            before = messages[turn - 1] if turn else None
            ok = before is not None and before.role == "assistant"
            asked[turn] = set(_tool_use_ids(before)) if ok else set()
        if tool_use_id not in asked[turn]:
            unexpected.append((turn, tool_use_id, where))
    if unexpected:
        turn, _, where = unexpected[0]
        ids = ", ".join(t for n, t, _ in unexpected if n == turn)
        raise InvalidRequest(
            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {ids}. Each "
            "`tool_result` block must have a corresponding `tool_use` block in the previous "
            "message."
        )


def _text(block: dict, where: str) -> ir.Text:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}.text: Field required")
    if not text:
        raise InvalidRequest(f"{where}.text: text content blocks must be non-empty")
    return ir.Text(text, cache_control=block.get("cache_control"))


# Anthropic's documented media types, per source (reference 1.4.4).
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
PDF_MEDIA_TYPES = ("application/pdf",)
TEXT_MEDIA_TYPES = ("text/plain",)
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _one_of(choices: tuple[str, ...]) -> str:
    quoted = [f"'{c}'" for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def is_base64(data: str) -> bool:
    """Standard, padded base64 (RFC 4648 section 4), as Anthropic requires: about 1 ns a byte."""
    if len(data) % 4 or not data.isascii():
        return False
    encoded = data.encode("ascii")
    rest = encoded.translate(None, _BASE64_ALPHABET)  # what is not in the alphabet
    return rest in (b"", b"=", b"==") and encoded.endswith(rest)


def _source(block: dict, where: str) -> dict:
    source = block.get("source")
    if not isinstance(source, dict) or "type" not in source:
        raise InvalidRequest(f"{where}.source: Field required")
    return source


def _media_type(source: dict, where: str, allowed: tuple[str, ...]) -> str:
    media_type = source.get("media_type")
    if media_type is None:
        raise InvalidRequest(f"{where}.media_type: Field required")
    if media_type not in allowed:
        raise InvalidRequest(f"{where}.media_type: Input should be {_one_of(allowed)}")
    return media_type


def _base64(source: dict, where: str, what: str) -> str:
    data = source.get("data")
    if not isinstance(data, str):
        raise InvalidRequest(f"{where}.data: Field required")
    if not data:
        raise InvalidRequest(f"{where}: {what} cannot be empty")
    if not is_base64(data):
        raise InvalidRequest(f"{where}: invalid base64 data")
    return data


def _image(block: dict, where: str) -> ir.Image:
    source = _source(block, where)
    kind = source["type"]
    if kind == "base64":
        at = f"{where}.image.source.base64"
        media_type = _media_type(source, at, IMAGE_MEDIA_TYPES)
        return ir.Image(media_type=media_type, data=_base64(source, at, "image"))
    if kind == "url" and isinstance(source.get("url"), str):
        return ir.Image(url=source["url"])
    raise InvalidRequest(f"{where}.source.type: image source `{kind}` is not supported here")


def _document(block: dict, where: str) -> ir.Document:
    source = _source(block, where)
    kind = source["type"]
    meta = {"title": block.get("title"), "context": block.get("context")}
    if kind == "base64":
        at = f"{where}.document.source.base64"
        media_type = _media_type(source, at, PDF_MEDIA_TYPES)
        return ir.Document(media_type=media_type, data=_base64(source, at, "document"), **meta)
    if kind == "url" and isinstance(source.get("url"), str):
        return ir.Document(url=source["url"], **meta)
    if kind == "text":
        at = f"{where}.document.source.text"
        _media_type(source, at, TEXT_MEDIA_TYPES)
        if not isinstance(source.get("data"), str):
            raise InvalidRequest(f"{at}.data: Field required")
        return ir.Document(text=source["data"], media_type="text/plain", **meta)
    if kind == "content":
        inner = source.get("content")
        parts: list[ir.Text | ir.Image] = []
        if isinstance(inner, str):
            parts = [ir.Text(inner)]
        elif isinstance(inner, list):
            for k, b in enumerate(inner):
                sub = _block(b, f"{where}.source.content.{k}", [])
                if isinstance(sub, ir.Text | ir.Image):
                    parts.append(sub)
        return ir.Document(parts=parts, **meta)
    raise InvalidRequest(f"{where}.source.type: document source `{kind}` is not supported here")


def _search_result(block: dict, where: str) -> ir.Text:
    texts = [b.get("text", "") for b in block.get("content") or [] if isinstance(b, dict)]
    header = f"[{block.get('title', '')}]({block.get('source', '')})"
    return ir.Text("\n".join([header, *texts]))


def _tool_use(block: dict, where: str) -> ir.ToolUse:
    tool_id, name, args = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(tool_id, str) or not TOOL_ID.match(tool_id):
        raise InvalidRequest(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.tool_use.name: Field required")
    if not isinstance(args, dict):
        raise InvalidRequest(f"{where}.tool_use.input: Input should be a valid dictionary")
    return ir.ToolUse(id=tool_id, name=name, input=args)


def _tool_result(block: dict, where: str) -> ir.ToolResult:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise InvalidRequest(f"{where}.tool_result.tool_use_id: Field required")
    content = block.get("content")
    parts: list = []
    if isinstance(content, str):
        parts = [ir.Text(content)] if content else []
    elif isinstance(content, list):
        for k, b in enumerate(content):
            sub = _block(b, f"{where}.tool_result.content.{k}", [])
            if isinstance(sub, ir.Text | ir.Image | ir.Document):
                parts.append(sub)
    return ir.ToolResult(
        tool_use_id=tool_use_id, content=parts, is_error=bool(block.get("is_error"))
    )


def _thinking(block: dict, where: str) -> ir.Thinking:
    if not isinstance(block.get("thinking"), str):
        raise InvalidRequest(f"{where}.thinking.thinking: Field required")
    return ir.Thinking(thinking=block["thinking"], signature=str(block.get("signature") or ""))


def _redacted(block: dict, where: str) -> ir.RedactedThinking:
    return ir.RedactedThinking(data=str(block.get("data") or ""))


_BLOCKS = {
    "text": _text,
    "image": _image,
    "document": _document,
    "search_result": _search_result,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": _thinking,
    "redacted_thinking": _redacted,
}


def _block(block: Any, where: str, unportable: list[str]) -> ir.Part | None:
    """One content block; types the IR cannot carry are noted in `unportable` and skipped."""
    if not isinstance(block, dict):
        raise InvalidRequest(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f"{where}.type: Field required")
    decode = _BLOCKS.get(kind)
    if decode is None and (text := server_block(block, where)) is not None:
        return text
    if decode is None:
        unportable.append(f"{where} (`{kind}` block)")
        return None
    return decode(block, where)


def _tools(tools: list[ToolIn], unportable: list[str]) -> list[ir.Tool]:
    result = []
    for i, tool in enumerate(tools):
        if tool.type not in (None, "custom"):
            if server_tool(tool, f"tools.{i}") is not None:
                continue  # emulated: request.server_tools
            unportable.append(f"tools.{i} (server tool `{tool.type}`)")
            continue
        if tool.input_schema is None:
            raise InvalidRequest(f"tools.{i}.custom.input_schema: Field required")
        if not TOOL_ID.match(tool.name) or len(tool.name) > 64:
            raise InvalidRequest(
                f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        result.append(
            ir.Tool(name=tool.name, input_schema=tool.input_schema, description=tool.description)
        )
    return result


def _tool_choice(choice, tools: list[ir.Tool]) -> ir.ToolChoice | None:
    if choice is None:
        return None
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequest("tool_choice.tool.name: Field required")
        if choice.name not in {t.name for t in tools}:
            raise InvalidRequest(f"tool_choice.tool.name: no tool named `{choice.name}` in tools")
    return ir.ToolChoice(
        type=choice.type,
        name=choice.name,
        disable_parallel_tool_use=choice.disable_parallel_tool_use,
    )


def _reasoning(body, max_tokens: int, beta: list[str]) -> ir.Reasoning | None:
    thinking = body.thinking
    effort = body.output_config.effort if body.output_config else None
    if thinking is not None and thinking.type == "enabled":
        budget = thinking.budget_tokens
        if budget is None:
            raise InvalidRequest("thinking.enabled.budget_tokens: Field required")
        if budget < 1024:
            raise InvalidRequest(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        interleaved = any(b.startswith("interleaved-thinking") for b in beta)
        if max_tokens and budget >= max_tokens and not interleaved:
            raise InvalidRequest("max_tokens: must be greater than thinking.budget_tokens")
        effort = effort or next(e for floor, e in _EFFORT_BY_BUDGET if budget >= floor)
        return ir.Reasoning(
            budget_tokens=budget, effort=effort, summary=thinking.display != "omitted"
        )
    if thinking is not None and thinking.type == "adaptive":
        return ir.Reasoning(adaptive=True, effort=effort, summary=thinking.display != "omitted")
    reasoning = getattr(body, "reasoning", None)
    if thinking is None and reasoning is not None and reasoning.enabled is not False:
        if reasoning.effort == "none":
            return None
        return ir.Reasoning(
            budget_tokens=reasoning.max_tokens,
            effort=reasoning.effort or effort,
            summary=reasoning.summary not in ("none", "omitted"),
            asked_by="reasoning",
        )
    if thinking is None and effort is not None:
        # Effort alone steers how much the model works; no thinking blocks were asked for.
        return ir.Reasoning(effort=effort, summary=False, asked_by="output_config.effort")
    return None
