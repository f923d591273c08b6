"""Responses `input` (a string or items, reference 3.3) -> IR turns and system text.

Items become turns in order: assistant items (output text, function calls, reasoning) join the
assistant turn they follow, user items (messages, function call outputs) the user turn; a
turn's tool results come first, as every upstream wants them. System and developer messages
join the system prompt (their position in the conversation is lost: no upstream has a place
for system text mid-conversation). Errors are `InvalidRequest` naming the item's JSON path.

Reasoning items round-trip: the gateway answers with the IR thinking block's signature as the
item's `encrypted_content` (client_encode.py), so the item a client sends back becomes the same
thinking block (the Responses upstream's signed envelope, an Anthropic signature...), and the
upstream that produced it gets its own item back.
"""

from __future__ import annotations

import re
from typing import Any

from core import client_json, ir
from core.errors import InvalidRequest
from protocols.openai_chat.request import chat_tool_id

# `encrypted_content` of a reasoning item standing for a redacted thinking block (its data).
REDACTED_PREFIX = "tgr."
_ROLES = ("user", "assistant", "system", "developer")
_DATA_URL = re.compile(r"^data:([a-z]+/[a-z0-9.+-]+);base64,(.*)$", re.S)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# A namespace tool's functions reach upstreams as `<namespace>__<name>` (client_decode.py);
# answers split it back (client_encode.py), and a replayed call's `namespace` joins it again.
NAMESPACE_SEP = "__"
# Items recorded by server-side tools; their findings are in the assistant text that follows.
_SKIPPED = frozenset({"web_search_call"})


def flat_name(namespace: str, name: str) -> str:
    return f"{namespace}{NAMESPACE_SEP}{name}"


def _str(item: dict, key: str, where: str, *, empty: bool = False) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        problem = "Field required" if value is None else "Input should be a valid string"
        raise InvalidRequest(f"{where}.{key}: {problem}")
    if not value and not empty:
        raise InvalidRequest(f"{where}.{key}: must not be empty")
    return value


def image(part: dict, where: str) -> ir.Image:
    if part.get("file_id") is not None:
        raise InvalidRequest(f"{where}.file_id: file ids need the Files API; send image_url")
    url = _str(part, "image_url", where)
    if m := _DATA_URL.match(url):
        if m.group(1) not in _IMAGE_TYPES:
            raise InvalidRequest(f"{where}.image_url: image type `{m.group(1)}` not supported")
        return ir.Image(media_type=m.group(1), data=m.group(2))
    if not url.startswith("https://") and not url.startswith("http://"):
        raise InvalidRequest(f"{where}.image_url: must be a data URL or an http(s) URL")
    return ir.Image(url=url)


def file(part: dict, where: str) -> ir.Document:
    """A PDF given inline (`file_data` data URL) or by `file_url`; never a Files-API id."""
    if part.get("file_id") is not None:
        raise InvalidRequest(f"{where}.file_id: file ids need the Files API; send file_data")
    title = part.get("filename") if isinstance(part.get("filename"), str) else None
    if part.get("file_url") is not None:
        return ir.Document(url=_str(part, "file_url", where), title=title)
    data = _str(part, "file_data", where)
    m = _DATA_URL.match(data)
    if m is None or m.group(1) != "application/pdf":
        raise InvalidRequest(f"{where}.file_data: must be a data:application/pdf;base64 URL")
    return ir.Document(media_type="application/pdf", data=m.group(2), title=title)


def _text(part: dict, where: str, key: str = "text") -> ir.Text | None:
    text = _str(part, key, where, empty=True)
    return ir.Text(text) if text else None


_USER_PARTS = {"input_text": _text, "input_image": image, "input_file": file}
_ASSISTANT_PARTS = {
    "output_text": _text,
    "input_text": _text,
    "refusal": lambda part, where: _text(part, where, "refusal"),
}


def parts(content: Any, where: str, table: dict) -> list[ir.Part]:
    """A message's (or a function output's) content: a string or typed parts."""
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: Input should be a valid string or list")
    result: list[ir.Part] = []
    for j, part in enumerate(content):
        at = f"{where}.{j}"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict) or not isinstance(kind, str):
            raise InvalidRequest(f"{at}.type: Field required")
        decode = table.get(kind)
        if decode is None:
            allowed = ", ".join(f"`{k}`" for k in table)
            raise InvalidRequest(f"{at}.type: `{kind}` is not allowed here (allowed: {allowed})")
        if (decoded := decode(part, at)) is not None:
            result.append(decoded)
    return result


def arguments(item: dict, where: str) -> dict[str, Any]:
    text = _str(item, "arguments", where, empty=True)
    if not text.strip():
        return {}
    try:  # the body's own rules: depth, number range, UTF-8 (core/client_json.py)
        value = client_json.decode(text.encode())
    except InvalidRequest:
        raise InvalidRequest(f"{where}.arguments: not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}.arguments: must be a JSON object")
    return value


class Conversation:
    """Turns being built from items; `calls` tracks every call id and whether it was answered."""

    def __init__(self) -> None:
        self.messages: list[ir.Message] = []
        self.system: list[ir.Text] = []
        self.dropped: list[str] = []
        self.calls: dict[str, tuple[str, int, bool]] = {}  # id -> (where, turn, answered)

    def add(self, role: ir.Role, part: ir.Part) -> None:
        if not (self.messages and self.messages[-1].role == role):
            self.messages.append(ir.Message(role=role, content=[]))
        self.messages[-1].content.append(part)

    def message(self, item: dict, where: str) -> None:
        role = item.get("role")
        if role not in _ROLES:
            raise InvalidRequest(f"{where}.role: Input should be {', '.join(map(repr, _ROLES))}")
        content = item.get("content")
        if role in ("system", "developer"):
            found = parts(content, f"{where}.content", {"input_text": _text})
            self.system.extend(p for p in found if isinstance(p, ir.Text))
            return
        table = _USER_PARTS if role == "user" else _ASSISTANT_PARTS
        for part in parts(content, f"{where}.content", table):
            self.add(role, part)

    def function_call(self, item: dict, where: str) -> None:
        call_id = _str(item, "call_id", where)
        tool_id = chat_tool_id(call_id)  # ids every upstream accepts, the same for the output
        if tool_id in self.calls:
            raise InvalidRequest(f"{where}.call_id: duplicate call_id `{call_id}`")
        name = _str(item, "name", where)
        if item.get("namespace") is not None:
            name = flat_name(_str(item, "namespace", where), name)
        tool = ir.ToolUse(id=tool_id, name=name, input=arguments(item, where))
        self.add("assistant", tool)
        self.calls[tool_id] = (where, len(self.messages) - 1, False)

    def function_call_output(self, item: dict, where: str) -> None:
        call_id = _str(item, "call_id", where)
        tool_id = chat_tool_id(call_id)
        call = self.calls.get(tool_id)
        if call is None:
            raise InvalidRequest(
                f"{where}.call_id: no function_call with call_id `{call_id}` earlier in input"
            )
        if call[2]:
            raise InvalidRequest(f"{where}.call_id: call `{call_id}` already has an output")
        if call[1] != len(self.messages) - 1 and not (
            call[1] == len(self.messages) - 2 and self.messages[-1].role == "user"
        ):
            raise InvalidRequest(
                f"{where}: the output of `{call_id}` must follow its function_call, "
                "with no assistant output in between"
            )
        output = item.get("output")
        table = {"input_text": _text, "input_image": image, "input_file": file}
        content = parts(output if output is not None else "", f"{where}.output", table)
        self.add("user", ir.ToolResult(tool_use_id=tool_id, content=content))  # type: ignore[arg-type]
        self.calls[tool_id] = (call[0], call[1], True)

    def reasoning(self, item: dict, where: str) -> None:
        enc = item.get("encrypted_content")
        if enc is not None and not isinstance(enc, str):
            raise InvalidRequest(f"{where}.encrypted_content: Input should be a valid string")
        summary = item.get("summary", [])
        if not isinstance(summary, list):
            raise InvalidRequest(f"{where}.summary: Input should be a valid list")
        texts = [
            _str(s, "text", f"{where}.summary.{k}", empty=True) if isinstance(s, dict) else None
            for k, s in enumerate(summary)
        ]
        if None in texts:
            raise InvalidRequest(f"{where}.summary: items must be summary_text objects")
        if not enc:
            # Without it the reasoning cannot be replayed statelessly: nothing to carry.
            self.dropped.append(f"{where} (reasoning item without encrypted_content)")
            return
        if enc.startswith(REDACTED_PREFIX):
            self.add("assistant", ir.RedactedThinking(data=enc[len(REDACTED_PREFIX) :]))
            return
        self.add("assistant", ir.Thinking("\n\n".join(t for t in texts if t), signature=enc))

    def finish(self) -> None:
        """Every call answered; each user turn's tool results first."""
        for tool_id, (where, _, answered) in self.calls.items():
            if not answered:
                raise InvalidRequest(f"{where}: no function_call_output for call `{tool_id}`")
        for message in self.messages:
            if message.role == "user":
                message.content.sort(key=lambda p: not isinstance(p, ir.ToolResult))
        if not self.messages:
            raise InvalidRequest("input: must hold at least one user or assistant message")


def _refused(kind: str):
    def refuse(self: Conversation, item: dict, where: str) -> None:
        raise InvalidRequest(
            f"{where}.type: `{kind}` items are not supported by this gateway"
            + (" (it keeps no responses; send the items themselves)" if kind == "item_reference"
               else "")
        )  # fmt: skip

    return refuse


_ITEMS = {
    "message": Conversation.message,
    "function_call": Conversation.function_call,
    "function_call_output": Conversation.function_call_output,
    "reasoning": Conversation.reasoning,
}


def conversation(value: str | list[dict[str, Any]]) -> Conversation:
    """The request's `input`, decoded; InvalidRequest naming the first bad item."""
    result = Conversation()
    if isinstance(value, str):
        if value:
            result.add("user", ir.Text(value))
    else:
        for i, item in enumerate(value):
            where = f"input.{i}"
            kind = item.get("type", "message" if "role" in item else None)
            if not isinstance(kind, str):
                raise InvalidRequest(f"{where}.type: Field required")
            if kind in _SKIPPED:
                continue
            handler = _ITEMS.get(kind) or _refused(kind)
            handler(result, item, where)
    result.finish()
    return result
