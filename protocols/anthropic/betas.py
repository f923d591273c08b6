"""Anthropic beta flags: read from the request, filtered per provider, emulated where we can.

A client names betas in the `anthropic-beta` header (comma-separated) and, as Claude Code does,
in the body's `betas` list; both are merged, in order, without duplicates. Anthropic routes get
them in the header, filtered by the provider's policy (`forward` all, `allow` only the listed
names, `deny` the listed ones; names may end in `*`), since Anthropic-compatible servers reject
betas they do not know. On translated routes a beta has no header to go to: the ones listed in
KNOWN are acted on (`context-1m-*` asks for the long-context route variant) or need nothing (the
fields they unlock are mapped or refused on their own); any other is reported under strictness
like a field the route cannot honour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from core.errors import InvalidRequest

MAX_FLAGS = 64
MAX_FLAG_CHARS = 128
# An HTTP token (RFC 9110 section 5.6.2): visible ASCII without separators.
_FLAG = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
MODES = ("forward", "allow", "deny")
LONG_CONTEXT = {"context-1m-": 1_000_000}

# Beta names (by prefix) a translated route needs no header for, and why.
KNOWN: dict[str, str] = {
    "context-1m-": "selects the route's long-context variant",
    "interleaved-thinking-": "thinking between tool calls is what translated routes return",
    "fine-grained-tool-streaming-": "tool input is streamed as the provider sends it",
    "token-counting-": "count_tokens is always available",
    "prompt-caching-": "cache_control is mapped per provider",
    "extended-cache-ttl-": "cache_control ttl is mapped per provider",
    "output-128k-": "max_tokens is checked against the model's limit",
    "model-context-window-exceeded-": "the stop reason is mapped",
    "claude-code-": "a client identity, no behaviour",
    "oauth-": "a client identity, no behaviour",
    "context-management-": "context_management is judged on its own",
    "structured-outputs-": "output formats are judged on their own",
    "effort-": "output_config.effort is judged on its own",
    "web-search-": "server tools are judged on their own",
    "web-fetch-": "server tools are judged on their own",
    "code-execution-": "server tools are judged on their own",
    "search-results-": "search_result blocks are judged on their own",
    "files-api-": "file sources are judged on their own",
    "mcp-client-": "mcp_servers is judged on its own",
    "advanced-tool-use-": "tool fields are judged on their own",
    "compact-": "compaction is judged on its own",
    "mid-conversation-system-": "system turns mid-conversation are folded into the system prompt",
    "message-batches-": "no effect on /v1/messages",
    "tool-search-tool-": "server tools are judged on their own",
    "mcp-servers-": "mcp_servers is judged on its own",
    "fast-mode-": "speed is judged on its own",
    "user-profiles-": "user_profile_id is judged on its own",
    "redact-thinking-": "thinking display is judged on its own",
    "thinking-display-updates-": "thinking display is judged on its own",
}


def of_request(headers: dict[bytes, bytes], body: list[str] | None = None) -> list[str]:
    """A request's betas: its `anthropic-beta` header and its body's `betas`, merged."""
    return merge(headers.get(b"anthropic-beta"), body)


def merge(header: bytes | None, body: Any) -> list[str]:
    """The request's beta names: the header's, then the body's, each once; a clear 400 for
    anything that is not a short list of HTTP tokens."""
    flags: list[str] = []
    if header:
        for raw in header.split(b","):
            raw = raw.strip(b" \t")
            if raw:
                flags.append(_check(raw.decode("latin-1"), "anthropic-beta"))
    if body is not None:
        if not isinstance(body, list) or not all(isinstance(b, str) for b in body):
            raise InvalidRequest("betas: Input should be a valid list of strings")
        flags += [_check(b, "betas") for b in body]
    merged = list(dict.fromkeys(flags))
    if len(merged) > MAX_FLAGS:
        raise InvalidRequest(f"anthropic-beta: at most {MAX_FLAGS} beta names")
    return merged


def _check(flag: str, where: str) -> str:
    if len(flag) > MAX_FLAG_CHARS or not _FLAG.fullmatch(flag):
        raise InvalidRequest(
            f"{where}: must be a comma-separated list of beta names, each of visible ASCII "
            f"characters without spaces or separators (an HTTP token), at most "
            f"{MAX_FLAG_CHARS} characters"
        )
    return flag


def passes(flag: str, mode: str, names: Iterable[str]) -> bool:
    """Whether a provider with this policy gets `flag`."""
    if mode == "forward":
        return True
    listed = any(fnmatchcase(flag, name) for name in names)
    return listed if mode == "allow" else not listed


def forwarded(flags: list[str], mode: str, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(betas the provider gets, betas its policy drops)."""
    names = tuple(names)
    kept = [f for f in flags if passes(f, mode, names)]
    return kept, [f for f in flags if f not in kept]


def unknown(flags: list[str]) -> list[str]:
    """Betas a translated route can neither act on nor safely ignore."""
    return [f for f in flags if not f.startswith(tuple(KNOWN))]


def long_context(flags: list[str]) -> int | None:
    """The context window a `context-1m-*`-style beta asks for (None: none)."""
    windows = [w for f in flags for p, w in LONG_CONTEXT.items() if f.startswith(p)]
    return max(windows, default=None)


def shown(flag: str) -> str:
    return f"anthropic-beta: {flag}"


def names_problem(names: Any) -> str | None:
    """What is wrong with a provider's beta list (None: nothing), for admin and config."""
    if not isinstance(names, list):
        return "betas must be a list of beta names (a trailing * matches any suffix)"
    if len(names) > MAX_FLAGS:
        return f"at most {MAX_FLAGS} beta names"
    for name in names:
        if not isinstance(name, str) or len(name) > MAX_FLAG_CHARS or not _FLAG.fullmatch(name):
            return f"beta name {name!r} is not an HTTP token"
    return None
