"""The fake upstream's ASGI app: routing, auth checks, the script store, the request log and
the `/_control/*` API tests drive it with.

Each surface module (`openai_chat`, `anthropic`, `responses`, `gemini`) provides `has_auth`,
`error_body`, `credential_error`, `read_prompt`, `render_json`, `render_stream`, and
`count_tokens` where its API has one. Everything provider-specific lives there; this module
only picks the surface.

A credential starting with `revoked-` or `suspended-` is refused the way the provider refuses
a bad key (`credential_error`); counting endpoints answer the fake's estimate unless a reply
was scripted for them (`endpoint: "count"` in the script).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass
from http import HTTPStatus
from types import ModuleType
from typing import Any, Literal
from urllib.parse import parse_qsl

import msgspec

from . import anthropic, gemini, openai_chat, responses
from .delivery import Receive, Send, deliver
from .scenario import (
    DEFAULT_SCENARIO,
    Prompt,
    PromptCache,
    Scenario,
    build_reply,
    estimate_tokens,
    standing_scenario,
)
from .sse import encode

Action = Literal["generate", "stream", "count"]

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})
REFUSED_KEYS = ("revoked-", "suspended-")  # credentials refused in the provider's own shape
REDACTED = "<redacted>"
MAX_RECORDS = 10_000  # oldest records are forgotten first, so long benchmark runs stay flat

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@dataclass(frozen=True, slots=True)
class Route:
    surface: ModuleType
    action: Action
    model: str | None = None  # from the path (Gemini); None means the body's `model`


FIXED_ROUTES = {
    ("POST", "/v1/chat/completions"): Route(openai_chat, "generate"),
    ("POST", "/v1/messages"): Route(anthropic, "generate"),
    ("POST", "/v1/messages/count_tokens"): Route(anthropic, "count"),
    ("POST", "/v1/responses"): Route(responses, "generate"),
    ("POST", "/v1/responses/input_tokens"): Route(responses, "count"),
}
GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/")
GEMINI_ACTIONS: dict[str, Action] = {
    "generateContent": "generate",
    "streamGenerateContent": "stream",
    "countTokens": "count",
}


AZURE_PREFIX = "/openai/deployments/"


def match_route(method: str, path: str) -> Route | None:
    route = FIXED_ROUTES.get((method, path))
    if route is not None or method != "POST":
        return route
    if path.startswith(AZURE_PREFIX) and path.endswith("/chat/completions"):
        deployment = path.removeprefix(AZURE_PREFIX).removesuffix("/chat/completions")
        return Route(openai_chat, "generate", deployment)
    for prefix in GEMINI_PREFIXES:
        if path.startswith(prefix):
            model, _, verb = path.removeprefix(prefix).rpartition(":")
            action = GEMINI_ACTIONS.get(verb)
            return Route(gemini, action, model) if action and model else None
    return None


class RequestRecord(msgspec.Struct):
    """One request as the fake saw it; `completed`/`disconnected` are set when it ends."""

    model: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    auth_present: bool
    body: Any
    completed: bool = False
    disconnected: bool = False
    # The id the fake gave the call in its provider's request-id header ("" for none).
    response_id: str = ""


class ScriptRequest(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    replies: list[Scenario]
    # Which calls the replies answer: generation, or the counting endpoint (a queue of its own,
    # so a client that counts before it asks never takes a reply scripted for the answer).
    endpoint: Literal["generate", "count"] = "generate"


def queue_name(model: str, action: Action) -> str:
    return f"count:{model}" if action == "count" else model


class ScriptStore:
    """Scripted replies queued per upstream model, first in first out."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, deque[Scenario]] = defaultdict(deque)

    def add(self, model: str, replies: list[Scenario]) -> int:
        self._queues[model].extend(replies)
        return len(self._queues[model])

    def pop(self, model: str) -> Scenario | None:
        queue = self._queues.get(model)
        return queue.popleft() if queue else None

    def clear(self) -> None:
        self._queues.clear()


class FakeUpstreamApp:
    """The ASGI callable. Holds its scripts and records; create one per server or test."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.scripts = ScriptStore()
        self.prompt_cache = PromptCache()
        # 0 keeps no records: the benchmark's baseline must spend nothing on bookkeeping.
        self.records: deque[RequestRecord] = deque(maxlen=max_records)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return None
        if scope["path"].startswith("/_control/"):
            return await self._control(scope, receive, send)
        route = match_route(scope["method"], scope["path"])
        if route is None:
            return await self._unknown(scope, receive, send)
        return await self._serve(route, scope, receive, send)

    async def _serve(
        self, route: Route, scope: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        raw = await _read_body(receive)
        body = _decode(raw)
        headers, query = _headers(scope), _query(scope)
        record = self._record(scope, body, route.model, headers, query)
        surface = route.surface
        if not isinstance(body, dict):
            error = surface.error_body(400, "The request body is not valid JSON.")
            record.completed = await _send_json(send, 400, error)
        elif not surface.has_auth(headers, query):
            error = surface.error_body(401, "Missing or invalid API key.")
            record.completed = await _send_json(send, 401, error)
        elif (key := _credential(headers, query)).startswith(REFUSED_KEYS):
            status, error = surface.credential_error(key)
            record.completed = await _send_json(send, status, error)
        elif route.action == "count":
            scenario = self.scripts.pop(queue_name(record.model, "count")) or DEFAULT_SCENARIO
            status, head, frames = _render_count(surface, scenario, len(raw))
            outcome = await deliver(
                receive, send, status=status, headers=head, frames=frames, scenario=scenario
            )
            record.completed, record.disconnected = outcome.completed, outcome.disconnected
        elif (refusal := _check(surface, body, record.model)) is not None:
            record.completed = await _send_json(send, *refusal)
        else:
            scenario = self.scripts.pop(record.model) or standing_scenario(record.model)
            prompt = surface.read_prompt(body)
            cache = getattr(surface, "cache_prefix", None)
            if cache is not None and not scenario.is_error:
                cached = self.prompt_cache.read(*cache(body))
                prompt = dataclasses.replace(prompt, cached_tokens=cached)
            status, head, frames = _render(route, scenario, body, prompt, record.model, len(raw))
            head += [(k.lower().encode(), v.encode()) for k, v in scenario.headers.items()]
            id_header = getattr(surface, "REQUEST_ID_HEADER", None)
            if id_header and id_header not in {k.lower() for k in scenario.headers}:
                record.response_id = f"up_{secrets.token_hex(8)}"  # as the provider names it
                head.append((id_header.encode(), record.response_id.encode()))
            outcome = await deliver(
                receive, send, status=status, headers=head, frames=frames, scenario=scenario
            )
            record.completed, record.disconnected = outcome.completed, outcome.disconnected

    async def _unknown(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = _decode(await _read_body(receive))
        record = self._record(scope, body, None, _headers(scope), _query(scope))
        message = f"Unknown request URL: {scope['method']} {scope['path']}."
        record.completed = await _send_json(send, 404, openai_chat.error_body(404, message))

    def _record(
        self,
        scope: dict[str, Any],
        body: Any,
        model: str | None,
        headers: dict[str, str],
        query: dict[str, str],
    ) -> RequestRecord:
        if model is None:
            model = str(body.get("model", "")) if isinstance(body, dict) else ""
        if self.records.maxlen == 0:
            return RequestRecord(
                model=model,
                method=scope["method"],
                path=scope["path"],
                query={},
                headers={},
                auth_present=False,
                body=None,
            )
        record = RequestRecord(
            model=model,
            method=scope["method"],
            path=scope["path"],
            query={k: REDACTED if k == "key" else v for k, v in query.items()},
            headers={k: REDACTED if k in SECRET_HEADERS else v for k, v in headers.items()},
            auth_present="key" in query or not SECRET_HEADERS.isdisjoint(headers),
            body=body,
        )
        self.records.append(record)
        return record

    async def _control(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        handler = {
            ("GET", "/_control/health"): self._health,
            ("POST", "/_control/script"): self._script,
            ("GET", "/_control/requests"): self._requests,
            ("POST", "/_control/reset"): self._reset,
        }.get((scope["method"], scope["path"]))
        if handler is None:
            message = f"Unknown control URL: {scope['method']} {scope['path']}."
            await _send_json(send, 404, openai_chat.error_body(404, message))
            return
        status, payload = handler(raw, _query(scope))
        await _send_json(send, status, payload)

    def _health(self, raw: bytes, query: dict[str, str]) -> tuple[int, Any]:
        return 200, {"status": "ok"}

    def _script(self, raw: bytes, query: dict[str, str]) -> tuple[int, Any]:
        try:
            request = msgspec.json.decode(raw, type=ScriptRequest)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            return 400, openai_chat.error_body(400, f"Invalid script: {exc}")
        queue = queue_name(request.model, request.endpoint)
        return 200, {"model": request.model, "queued": self.scripts.add(queue, request.replies)}

    def _requests(self, raw: bytes, query: dict[str, str]) -> tuple[int, Any]:
        model = query.get("model")
        return 200, [r for r in self.records if model is None or r.model == model]

    def _reset(self, raw: bytes, query: dict[str, str]) -> tuple[int, Any]:
        self.scripts.clear()
        self.records.clear()
        self.prompt_cache.clear()
        return 200, {"status": "reset"}


def create_app(max_records: int = MAX_RECORDS) -> FakeUpstreamApp:
    return FakeUpstreamApp(max_records)


def _check(surface: ModuleType, body: dict[str, Any], model: str) -> tuple[int, Any] | None:
    """A surface's own validation of what was sent (Gemini 3's thought signatures)."""
    check = getattr(surface, "check_request", None)
    return check(body, model) if check is not None else None


def _render(
    route: Route,
    scenario: Scenario,
    body: dict[str, Any],
    prompt: Prompt,
    model: str,
    body_size: int,
) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    """Status, headers and body frames for a scripted (or default) reply."""
    surface = route.surface
    if scenario.is_error:
        return _render_error(surface, scenario)
    reply = build_reply(scenario, prompt, model=model, body_size=body_size)
    if route.action == "stream" or body.get("stream") is True:
        return scenario.status, list(SSE_HEADERS), surface.render_stream(reply)
    data = encode(surface.render_json(reply))
    return scenario.status, _json_headers(data), [data]


def _render_error(
    surface: ModuleType, scenario: Scenario
) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    payload = scenario.error_body
    if payload is None:
        payload = surface.error_body(scenario.status, _scripted_message(scenario.status))
    data = encode(payload)
    return scenario.status, _json_headers(data), [data]


def _render_count(
    surface: ModuleType, scenario: Scenario, body_size: int
) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    """A counting endpoint's answer: the fake's estimate, a scripted count (`usage.input_tokens`)
    or a scripted failure."""
    if scenario.is_error:
        status, head, frames = _render_error(surface, scenario)
    else:
        scripted = scenario.usage.input_tokens if scenario.usage is not None else None
        tokens = estimate_tokens(body_size) if scripted is None else scripted
        frames = [encode(surface.count_tokens(tokens))]
        status, head = scenario.status, _json_headers(frames[0])
    head += [(k.lower().encode(), v.encode()) for k, v in scenario.headers.items()]
    return status, head, frames


def _credential(headers: dict[str, str], query: dict[str, str]) -> str:
    """The key a request carries, wherever its surface puts it."""
    bearer = headers.get("authorization", "").partition(" ")[2]
    for value in (headers.get("x-api-key"), headers.get("x-goog-api-key"), headers.get("api-key")):
        if value:
            return value.strip()
    return (bearer or query.get("key", "")).strip()


def _scripted_message(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Overloaded" if status == 529 else "Error"
    return f"Fake upstream: scripted {status} {phrase}."


def _json_headers(data: bytes) -> list[tuple[bytes, bytes]]:
    return [JSON_TYPE, (b"content-length", str(len(data)).encode())]


async def _send_json(send: Send, status: int, payload: Any) -> bool:
    data = encode(payload)
    await send({"type": "http.response.start", "status": status, "headers": _json_headers(data)})
    await send({"type": "http.response.body", "body": data, "more_body": False})
    return True


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    if not message.get("more_body"):
        return message.get("body", b"")
    chunks = [message.get("body", b"")]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def _decode(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        return None


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _query(scope: dict[str, Any]) -> dict[str, str]:
    query_string = scope.get("query_string", b"")
    return dict(parse_qsl(query_string.decode("latin-1"))) if query_string else {}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
