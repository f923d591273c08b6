"""Provider web searches as Anthropic reports them: helpers shared by the adapters.

Each provider says what it searched and found in its own shape (Responses `web_search_call`
items and `url_citation` annotations, Gemini `groundingMetadata`, Chat `annotations`); the
adapters read those and build the same IR with these functions: a `ServerToolUse` (id
`srvtoolu_…`, name `web_search`, input `{query}`), a `WebSearchResult` listing the pages, and
`Citation`s on the text. Request-side, `refuse_server_tools` turns a server tool a route has no
equivalent for into the route's refusal (a 400 naming the tool when no route is left).
"""

from __future__ import annotations

import re
from typing import Any

from core import ids, ir
from core.errors import RouteRefusal

CITED_TEXT_CHARS = 150  # Anthropic's cited_text is at most about this long
_ID_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def server_tool_id(upstream_id: Any = None) -> str:
    """`srvtoolu_` and the provider's id of the call (Anthropic's pattern), or a fresh one."""
    if isinstance(upstream_id, str) and upstream_id:
        return "srvtoolu_" + _ID_CHARS.sub("_", upstream_id)[:64]
    return "srvtoolu_" + ids.tool_use_id().removeprefix("toolu_")


def search_call(call_id: str, query: str | None) -> ir.ServerToolUse:
    return ir.ServerToolUse(id=call_id, name="web_search", input={"query": query or ""})


def hits(pages: list[tuple[Any, Any]]) -> list[ir.SearchHit]:
    """Pages as (url, title), without duplicates or urls that are not strings; the url stands
    in for a missing title (Anthropic's title is a string)."""
    seen: set[str] = set()
    result = []
    for url, title in pages:
        if not isinstance(url, str) or not url or url in seen:
            continue
        seen.add(url)
        result.append(
            ir.SearchHit(url=url, title=title if isinstance(title, str) and title else url)
        )
    return result


def citation(url: Any, title: Any, cited: str) -> ir.Citation | None:
    if not isinstance(url, str) or not url:
        return None
    return ir.Citation(
        url=url,
        title=title if isinstance(title, str) and title else None,
        cited_text=cited[:CITED_TEXT_CHARS],
    )


def span(text: str, start: Any, end: Any) -> str:
    """The answer's text between two character offsets (empty when they make no sense)."""
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start <= end:
        return ""
    return text[start:end]


# The Python code execution tool: a provider's Python interpreter answers as it does. Newer
# versions run bash and a text editor in a container, which no provider's interpreter emulates.
PYTHON_CODE_EXECUTION = "code_execution_20250522"


def refuse_server_tools(request: ir.Request, kinds: frozenset[str], provider: str) -> None:
    """Raise the route's refusal for the first server tool whose kind is not in `kinds`: a tool
    the model would need is never silently taken away, whatever the strictness."""
    for tool in request.server_tools:
        python = tool.kind != "code_execution" or tool.type == PYTHON_CODE_EXECUTION
        if tool.kind not in kinds or not python:
            raise RouteRefusal(f"{tool.where} (server tool `{tool.type}`)", provider)


def runs_code(request: ir.Request) -> bool:
    return any(t.kind == "code_execution" for t in request.server_tools)


def code_call(call_id: str, code: Any) -> ir.ServerToolUse:
    return ir.ServerToolUse(
        id=call_id, name="code_execution", input={"code": code if isinstance(code, str) else ""}
    )


def searched(request: ir.Request) -> ir.ServerTool | None:
    return next((t for t in request.server_tools if t.kind == "web_search"), None)


def fetched(request: ir.Request) -> ir.ServerTool | None:
    return next((t for t in request.server_tools if t.kind == "web_fetch"), None)


def fetch_parts(call_id: str, url: str, ok: bool) -> list[ir.Part]:
    """One page a provider fetched: Anthropic's `server_tool_use` (name `web_fetch`, input
    `{url}`) and its result, `url_not_accessible` when the fetch failed."""
    return [
        ir.ServerToolUse(id=call_id, name="web_fetch", input={"url": url}),
        ir.WebFetchResult(
            tool_use_id=call_id, url=url, error_code=None if ok else "url_not_accessible"
        ),
    ]


# --- OpenAI Chat search models ----------------------------------------------------------------
QUERY_CHARS = 200


def is_search_model(upstream_model: str, options: dict[str, Any]) -> bool:
    """Chat Completions searches only with a search model (`gpt-4o-search-preview`,
    `gpt-5-search-api`, …), or on a server whose provider declares `web_search_options`."""
    return "search" in upstream_model or bool(options.get("web_search_options"))


def chat_search_options(tool: ir.ServerTool) -> dict[str, Any]:
    """`web_search_options` (Chat's location has its fields under `approximate`)."""
    if not tool.user_location:
        return {}
    place = {k: v for k, v in tool.user_location.items() if k != "type"}
    return {"user_location": {"type": "approximate", "approximate": place}}


def last_user_text(request: ir.Request) -> str:
    """What a search model searched for: it does not say, it searches on the conversation."""
    for message in reversed(request.messages):
        if message.role == "user":
            texts = [p.text for p in message.content if isinstance(p, ir.Text)]
            if texts:
                return " ".join(texts)[:QUERY_CHARS]
    return ""


def chat_citations(annotations: Any, text: str) -> list[ir.Citation]:
    """Chat's `annotations: [{type: url_citation, url_citation: {url, title, start_index,
    end_index}}]` as citations of `text`."""
    result = []
    for note in annotations if isinstance(annotations, list) else []:
        if not isinstance(note, dict) or note.get("type") != "url_citation":
            continue
        cite = note.get("url_citation")
        if not isinstance(cite, dict):
            continue
        cited = span(text, cite.get("start_index"), cite.get("end_index"))
        if (found := citation(cite.get("url"), cite.get("title"), cited)) is not None:
            result.append(found)
    return result


def chat_search_parts(
    request: ir.Request, cited: list[ir.Citation], upstream_id: Any
) -> list[ir.Part]:
    """The one search a search model ran, with the pages its answer cites."""
    call_id = server_tool_id(upstream_id)
    pages = [(c.url, c.title) for c in cited]
    return [
        search_call(call_id, last_user_text(request)),
        ir.WebSearchResult(tool_use_id=call_id, results=hits(pages)),
    ]
