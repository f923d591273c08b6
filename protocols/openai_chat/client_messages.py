"""OpenAI Chat `messages` -> the IR system prompt and turns (reference 2.3, read backwards).

`system` and `developer` messages, wherever they stand, become the system prompt; `tool`
messages become `tool_result` parts of a user turn (consecutive ones, and the user message
after them, merge into that turn, as same-role turns do on the Anthropic surface). Pairing is
OpenAI's rule: every call of an assistant message answered by the `tool` messages right after
it, and no `tool` message without such a call. Errors name the JSON path first. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from core import client_json, ir
from core.errors import InvalidRequest
from protocols.anthropic.decode import IMAGE_MEDIA_TYPES, is_base64
from protocols.openai_chat.client_schema import MessageIn

# `data:<media type>;base64,<data>`, the only inline form OpenAI takes for images and files.
DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
WEB_URL = re.compile(r"https?://\S+", re.IGNORECASE)
# Spellings clients use for a media type the IR knows under another name.
MEDIA_ALIASES = {"image/jpg": "image/jpeg"}
IMAGE_DETAIL = ("auto", "low", "high")
FILE_MEDIA_TYPES = ("application/pdf",)
_TOOL_PAIRING = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to "
    "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
)


class _Pending:
    """The tool calls of the last assistant message, until `tool` messages answer them."""

    def __init__(self, where: str, ids: list[str]):
        self.where = where
        self.open = dict.fromkeys(ids)

    def check_answered(self) -> None:
        if self.open:
            raise InvalidRequest(f"{self.where}.tool_calls: {_TOOL_PAIRING}{', '.join(self.open)}")


def to_ir(items: list[MessageIn], dropped: list[str]) -> tuple[list[ir.Text], list[ir.Message]]:
    """(system prompt, turns); fields no route can carry are added to `dropped`."""
    system: list[ir.Text] = []
    turns: list[ir.Message] = []
    pending: _Pending | None = None
    for i, message in enumerate(items):
        where = f"messages.{i}"
        if message.role == "tool":
            pending = _answer(pending, message, where)
            _append(turns, "user", [_tool_result(message, where)])
            continue
        if pending is not None:
            pending.check_answered()
            pending = None
        if message.name is not None:
            dropped.append(f"{where}.name")
        if message.role in ("system", "developer"):
            system += _texts(_required(message.content, where), f"{where}.content")
        elif message.role == "user":
            _append(turns, "user", _user_parts(_required(message.content, where), where, dropped))
        elif message.role == "assistant":
            parts = _assistant_parts(message, where, dropped)
            _append(turns, "assistant", parts)
            calls = [p.id for p in parts if isinstance(p, ir.ToolUse)]
            pending = _Pending(where, calls) if calls else None
        else:
            raise InvalidRequest(
                f"{where}.role: `function` messages are deprecated and not supported here; "
                "answer tool calls with `tool` messages"
            )
    if pending is not None:
        pending.check_answered()
    if not turns:
        raise InvalidRequest("messages: at least one user or assistant message is required")
    return system, turns


def _append(turns: list[ir.Message], role: ir.Role, parts: list[ir.Part]) -> None:
    """Consecutive same-role turns merge; a message with nothing to say adds no turn."""
    if not parts:
        return
    if turns and turns[-1].role == role:
        turns[-1].content.extend(parts)
    else:
        turns.append(ir.Message(role=role, content=parts))


def _required(content: str | list[Any] | None, where: str) -> str | list[Any]:
    if content is None:
        raise InvalidRequest(f"{where}.content: Field required")
    return content


def _answer(pending: _Pending | None, message: MessageIn, where: str) -> _Pending:
    if pending is None:
        raise InvalidRequest(
            f"{where}.role: messages with role 'tool' must be a response to a preceding "
            "message with 'tool_calls'"
        )
    call_id = message.tool_call_id
    if not call_id:
        raise InvalidRequest(f"{where}.tool_call_id: Field required")
    if call_id not in pending.open:
        raise InvalidRequest(
            f"{where}.tool_call_id: `{call_id}` answers no open tool call of the assistant "
            f"message at {pending.where}"
        )
    del pending.open[call_id]
    return pending


# --- Content parts ----------------------------------------------------------------------------
def _part(part: Any, where: str) -> tuple[dict[str, Any], str]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"{where}: Input should be a valid dictionary")
    kind = part.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest(f"{where}.type: Field required")
    return part, kind


def _text(part: dict[str, Any], where: str, field: str = "text") -> ir.Text | None:
    text = part.get(field)
    if text is None:
        raise InvalidRequest(f"{where}.{field}: Field required")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}.{field}: Input should be a valid string")
    return ir.Text(text) if text else None  # an empty text says nothing (and Anthropic refuses it)


def _texts(content: str | list[Any], where: str, extra: tuple[str, ...] = ()) -> list[ir.Text]:
    """String content, or text parts only (system, developer and tool messages; assistant
    messages may also hold `refusal` parts: `extra`)."""
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    texts = []
    for j, raw in enumerate(content):
        part, kind = _part(raw, f"{where}.{j}")
        if kind != "text" and kind not in extra:
            allowed = " or ".join(f"`{k}`" for k in ("text", *extra))
            raise InvalidRequest(f"{where}.{j}.type: only {allowed} parts are allowed here")
        if (text := _text(part, f"{where}.{j}", kind)) is not None:
            texts.append(text)
    return texts


def _data_url(url: str, where: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    """(media type, base64 data) of a `data:` URL, checked as the Anthropic surface checks."""
    match = DATA_URL.fullmatch(url)
    if match is None:
        raise InvalidRequest(f"{where}: a data URL must read `data:<media type>;base64,<data>`")
    media_type = MEDIA_ALIASES.get(match.group(1).lower(), match.group(1).lower())
    if media_type not in allowed:
        raise InvalidRequest(
            f"{where}: media type `{media_type}` is not one of {', '.join(allowed)}"
        )
    data = match.group(2)
    if not data or not is_base64(data):
        raise InvalidRequest(f"{where}: invalid base64 data")
    return media_type, data


def _image(part: dict[str, Any], where: str, dropped: list[str]) -> ir.Image:
    image = part.get("image_url")
    if isinstance(image, str):  # some clients send the URL alone
        image = {"url": image}
    if not isinstance(image, dict):
        raise InvalidRequest(f"{where}.image_url: Field required")
    url, detail = image.get("url"), image.get("detail", "auto")
    if not isinstance(url, str):
        raise InvalidRequest(f"{where}.image_url.url: Field required")
    if detail not in IMAGE_DETAIL:
        raise InvalidRequest(f"{where}.image_url.detail: Input should be 'auto', 'low' or 'high'")
    if detail != "auto":
        dropped.append(f"{where}.image_url.detail")  # the IR keeps no resolution hint
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.image_url.url", IMAGE_MEDIA_TYPES)
        return ir.Image(media_type=media_type, data=data)
    if WEB_URL.fullmatch(url) is None:
        raise InvalidRequest(f"{where}.image_url.url: must be an http(s) URL or a data: URL")
    return ir.Image(url=url)


def _file(part: dict[str, Any], where: str) -> ir.Document:
    file = part.get("file")
    if not isinstance(file, dict):
        raise InvalidRequest(f"{where}.file: Field required")
    if file.get("file_id") is not None:
        raise InvalidRequest(
            f"{where}.file.file_id: uploaded file ids are not supported here; send the file "
            "inline as `file_data`"
        )
    data_url, filename = file.get("file_data"), file.get("filename")
    if not isinstance(data_url, str):
        raise InvalidRequest(f"{where}.file.file_data: Field required")
    if filename is not None and not isinstance(filename, str):
        raise InvalidRequest(f"{where}.file.filename: Input should be a valid string")
    media_type, data = _data_url(data_url, f"{where}.file.file_data", FILE_MEDIA_TYPES)
    return ir.Document(media_type=media_type, data=data, title=filename)


def _user_parts(content: str | list[Any], where: str, dropped: list[str]) -> list[ir.Part]:
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    parts: list[ir.Part] = []
    for j, raw in enumerate(content):
        at = f"{where}.content.{j}"
        part, kind = _part(raw, at)
        if kind == "text":
            if (text := _text(part, at)) is not None:
                parts.append(text)
        elif kind == "image_url":
            parts.append(_image(part, at, dropped))
        elif kind == "file":
            parts.append(_file(part, at))
        elif kind == "input_audio":
            raise InvalidRequest(f"{at}.type: `input_audio` parts are not supported here")
        else:
            raise InvalidRequest(f"{at}.type: unknown content part type `{kind[:64]}`")
    return parts


# --- Assistant turns and tool results ---------------------------------------------------------
def _arguments(arguments: str, where: str) -> dict[str, Any]:
    """`function.arguments`: a JSON-encoded object ("" for a call without arguments)."""
    if not arguments.strip():
        return {}
    try:
        value = client_json.decode(arguments.encode())
    except InvalidRequest as err:
        problem = err.message.removeprefix("Request body ")
        raise InvalidRequest(f"{where}: must be a JSON-encoded object; {problem}") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: must be a JSON-encoded object")
    return value


def _assistant_parts(message: MessageIn, where: str, dropped: list[str]) -> list[ir.Part]:
    """Reasoning first, then text and refusals, then tool calls (the order of reference 5.8)."""
    if message.function_call is not None:
        raise InvalidRequest(
            f"{where}.function_call: deprecated and not supported here; use `tool_calls`"
        )
    if message.audio is not None:
        dropped.append(f"{where}.audio")
    parts: list[ir.Part] = []
    if message.reasoning_content:
        parts.append(ir.Thinking(message.reasoning_content))
    if message.content is not None:
        parts += _texts(message.content, f"{where}.content", extra=("refusal",))
    if message.refusal:
        parts.append(ir.Text(message.refusal))
    seen: set[str] = set()
    for k, call in enumerate(message.tool_calls or []):
        if call.id in seen:
            raise InvalidRequest(f"{where}.tool_calls.{k}.id: duplicate tool call id `{call.id}`")
        seen.add(call.id)
        at = f"{where}.tool_calls.{k}.function.arguments"
        name, arguments = call.function.name, _arguments(call.function.arguments, at)
        parts.append(ir.ToolUse(id=call.id, name=name, input=arguments))
    return parts


def _tool_result(message: MessageIn, where: str) -> ir.ToolResult:
    content = _texts(_required(message.content, where), f"{where}.content")
    return ir.ToolResult(tool_use_id=str(message.tool_call_id), content=list(content))
