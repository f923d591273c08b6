"""Anthropic's server tools and context edits, decoded for routes that must emulate them.

Server tools (`web_search_*`, `web_fetch_*`, `code_execution_*`) become `ir.ServerTool`s that a
translating adapter maps onto its provider's own tool or refuses; other server tools stay
unportable. `server_tool_use` / `web_search_tool_result` / `web_fetch_tool_result` blocks sent
back in assistant turns become plain text, so a translated route still sees what was searched,
fetched and found.
`context_management` is validated here; the gateway applies its edits (gateway/context_edits.py).
"""

from __future__ import annotations

import re
from typing import Any

from core import ir
from core.errors import InvalidRequest

_SERVER_TOOL = re.compile(r"^(web_search|web_fetch|code_execution)_(\d{8})$")
# Names Anthropic requires for each server tool type.
NAMES = {"web_search": "web_search", "web_fetch": "web_fetch", "code_execution": "code_execution"}
LOCATION_FIELDS = ("city", "region", "country", "timezone")
MAX_DOMAINS = 100
CLEAR_TOOL_USES = "clear_tool_uses_20250919"
CLEAR_THINKING = "clear_thinking_20251015"


# The options of each server tool a translated route reads; Anthropic routes get the tool as
# sent, and any other option (a newer one: `use_cache`, `defer_loading`...) is reported on a
# translated route by the strictness rule instead of being dropped silently.
READ_OPTIONS = {
    "web_search": frozenset(
        {"type", "name", "cache_control", "max_uses", "allowed_domains", "blocked_domains"}
        | {"user_location"}
    ),
    "web_fetch": frozenset(
        {"type", "name", "cache_control", "max_uses", "allowed_domains", "blocked_domains"}
        | {"citations", "max_content_tokens"}
    ),
    "code_execution": frozenset({"type", "name", "cache_control"}),
}


def unread_options(wire: Any, server_tools: list[ir.ServerTool]) -> list[str]:
    """`tools.N.<option>` for each option of an emulated server tool no translation reads."""
    tools = wire.get("tools") if isinstance(wire, dict) else None
    if not isinstance(tools, list):
        return []
    found: list[str] = []
    for tool in server_tools:
        index = int(tool.where.rpartition(".")[2])
        raw = tools[index] if index < len(tools) else None
        if isinstance(raw, dict):
            found += [
                f"{tool.where}.{_printable(key)}"
                for key in raw
                if key not in READ_OPTIONS[tool.kind]
            ]
    return found


def _printable(name: Any) -> str:
    text = str(name)[:64]
    return "".join(c if c.isprintable() and c not in ";," else "?" for c in text)


def server_tool(tool: Any, where: str) -> ir.ServerTool | None:
    """The IR server tool for a `tools` entry of a type we can emulate, else None."""
    match = _SERVER_TOOL.match(tool.type or "")
    if match is None:
        return None
    kind = match.group(1)
    if tool.name != NAMES[kind]:
        raise InvalidRequest(f"{where}.name: a `{tool.type}` tool must be named `{NAMES[kind]}`")
    if kind == "code_execution":
        return ir.ServerTool(kind=kind, type=tool.type, where=where, max_uses=tool.max_uses)
    if tool.allowed_domains is not None and tool.blocked_domains is not None:
        raise InvalidRequest(
            f"{where}: use either allowed_domains or blocked_domains, not both in the same request"
        )
    return ir.ServerTool(
        kind=kind,
        type=tool.type,
        where=where,
        max_uses=tool.max_uses,
        allowed_domains=_domains(tool.allowed_domains, f"{where}.allowed_domains"),
        blocked_domains=_domains(tool.blocked_domains, f"{where}.blocked_domains"),
        user_location=_location(tool.user_location, f"{where}.user_location")
        if kind == "web_search"
        else None,
        citations=_citations(tool.citations, f"{where}.citations") if kind == "web_fetch" else None,
        max_content_tokens=tool.max_content_tokens if kind == "web_fetch" else None,
    )


def _citations(citations: dict[str, Any] | None, where: str) -> bool | None:
    """web_fetch's `citations: {enabled}` (off unless enabled)."""
    if citations is None:
        return None
    enabled = citations.get("enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidRequest(f"{where}.enabled: Input should be a valid boolean")
    return enabled


def _domains(domains: list[str] | None, where: str) -> list[str] | None:
    if domains is None:
        return None
    if len(domains) > MAX_DOMAINS:
        raise InvalidRequest(f"{where}: at most {MAX_DOMAINS} domains")
    for i, domain in enumerate(domains):
        if not domain or len(domain) > 253 or any(c.isspace() for c in domain):
            raise InvalidRequest(f"{where}.{i}: not a domain name")
    return domains


def _location(location: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    if location is None:
        return None
    if location.get("type") != "approximate":
        raise InvalidRequest(f"{where}.type: Input should be 'approximate'")
    result: dict[str, Any] = {"type": "approximate"}
    for name in LOCATION_FIELDS:
        value = location.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > 255:
            raise InvalidRequest(f"{where}.{name}: Input should be a valid string")
        result[name] = value
    return result


# --- Server-tool blocks in the history --------------------------------------------------------
def server_block(block: dict, where: str) -> ir.Text | None:
    """A web search's call or result sent back in an assistant turn, as text; None for another
    server tool's block (unportable)."""
    kind = block.get("type")
    if kind == "server_tool_use" and block.get("name") == "web_search":
        given = block.get("input")
        query = given.get("query") if isinstance(given, dict) else None
        return ir.Text(f"[web search: {query}]" if isinstance(query, str) else "[web search]")
    if kind == "server_tool_use" and block.get("name") == "code_execution":
        given = block.get("input")
        code = given.get("code") if isinstance(given, dict) else None
        return ir.Text(f"[code execution]\n{code}" if isinstance(code, str) else "[code execution]")
    if kind == "server_tool_use" and block.get("name") == "web_fetch":
        given = block.get("input")
        url = given.get("url") if isinstance(given, dict) else None
        return ir.Text(f"[web fetch: {url}]" if isinstance(url, str) else "[web fetch]")
    if kind == "web_fetch_tool_result":
        content = block.get("content") if isinstance(block.get("content"), dict) else {}
        if content.get("type") != "web_fetch_result":
            return ir.Text(f"[web fetch failed: {content.get('error_code') or 'error'}]")
        document = content.get("content") if isinstance(content.get("content"), dict) else {}
        source = document.get("source") if isinstance(document.get("source"), dict) else {}
        data = source.get("data") if source.get("type") == "text" else None
        page = f"[web fetch result: {content.get('url')}]"
        return ir.Text(f"{page}\n{data}" if isinstance(data, str) and data else page)
    if kind == "code_execution_tool_result":
        content = block.get("content") if isinstance(block.get("content"), dict) else {}
        output = "".join(
            value for key in ("stdout", "stderr") if isinstance(value := content.get(key), str)
        )
        return ir.Text(f"[code execution output]\n{output}" if output else "[no output]")
    if kind == "web_search_tool_result":
        content = block.get("content")
        if not isinstance(content, list):
            code = content.get("error_code") if isinstance(content, dict) else None
            return ir.Text(f"[web search failed: {code or 'error'}]")
        lines = [
            f"- {hit.get('title') or hit.get('url')}: {hit.get('url')}"
            for hit in content
            if isinstance(hit, dict) and isinstance(hit.get("url"), str)
        ]
        return ir.Text("[web search results]\n" + "\n".join(lines) if lines else "[no results]")
    return None


# --- context_management -----------------------------------------------------------------------
def context_edits(value: Any, dropped: list[str]) -> list[ir.ContextEdit]:
    """The edits the gateway applies; others (compaction, not emulated) are noted in `dropped`
    (a field a translated route cannot honour, judged by the strictness rule)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise InvalidRequest("context_management: Input should be a valid dictionary")
    edits = value.get("edits", [])
    if not isinstance(edits, list):
        raise InvalidRequest("context_management.edits: Input should be a valid list")
    result = []
    for i, edit in enumerate(edits):
        where = f"context_management.edits.{i}"
        if not isinstance(edit, dict) or not isinstance(edit.get("type"), str):
            raise InvalidRequest(f"{where}.type: Field required")
        kind = edit["type"]
        if kind == CLEAR_TOOL_USES:
            result.append(_clear_tool_uses(edit, where))
        elif kind == CLEAR_THINKING:
            result.append(_clear_thinking(edit, where))
        else:
            # Compaction, or an edit newer than this gateway: Anthropic routes get it as sent,
            # translated routes cannot honour it (strictness decides).
            dropped.append(f"{where} (`{kind[:64]}` edit)")
    return result


def _count(value: Any, kind: str, where: str) -> int:
    """`{type: kind, value: n}` -> n (a non-negative integer)."""
    if not isinstance(value, dict) or value.get("type") != kind:
        raise InvalidRequest(f"{where}: Input should be an object with type '{kind}'")
    n = value.get("value")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 2**31 - 1:
        raise InvalidRequest(f"{where}.value: Input should be a non-negative integer")
    return n


def _clear_tool_uses(edit: dict, where: str) -> ir.ContextEdit:
    exclude = edit.get("exclude_tools") or []
    if not isinstance(exclude, list) or not all(isinstance(n, str) for n in exclude):
        raise InvalidRequest(f"{where}.exclude_tools: Input should be a list of tool names")
    inputs = edit.get("clear_tool_inputs", False)
    if not isinstance(inputs, bool):
        raise InvalidRequest(f"{where}.clear_tool_inputs: Input should be a valid boolean")
    return ir.ContextEdit(
        type=CLEAR_TOOL_USES,
        trigger_input_tokens=_count(edit.get("trigger"), "input_tokens", f"{where}.trigger")
        if edit.get("trigger") is not None
        else None,
        keep=_count(edit.get("keep"), "tool_uses", f"{where}.keep")
        if edit.get("keep") is not None
        else None,
        clear_at_least=_count(edit.get("clear_at_least"), "input_tokens", f"{where}.clear_at_least")
        if edit.get("clear_at_least") is not None
        else None,
        exclude_tools=exclude,
        clear_tool_inputs=inputs,
    )


def _clear_thinking(edit: dict, where: str) -> ir.ContextEdit:
    keep = edit.get("keep")
    if keep == "all":
        return ir.ContextEdit(type=CLEAR_THINKING, keep=None)
    if keep is None:
        return ir.ContextEdit(type=CLEAR_THINKING, keep=1)
    return ir.ContextEdit(type=CLEAR_THINKING, keep=_count(keep, "thinking_turns", f"{where}.keep"))
