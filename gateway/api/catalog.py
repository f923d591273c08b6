"""`GET /v1/models`, `GET /v1/models/{id}` and `POST /v1/messages/count_tokens`.

The models a key may use, in the shape of the SDK that asks (Anthropic's paginated list when the
request carries `anthropic-version`, as Anthropic's SDKs always send; OpenAI's list otherwise),
and input-token counts: from the
provider's own counting endpoint where one exists (Anthropic, Gemini, OpenAI Responses) and it
answers, otherwise the gateway's documented estimate (a real tokenizer). Counting is never
billed and never rate-limited, but each call an authenticated key makes leaves a usage record
(endpoint `count_tokens`: who asked, for which model, which counter answered, how long it took),
kept out of the daily roll-ups so it never counts as a request or as tokens.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs

import msgspec
from django.conf import settings

from accounts.keys import authenticate, secret_from_headers
from core import client_json
from core.errors import GatewayError, InvalidRequest, NotFound
from core.tokens import estimate_input_tokens
from gateway import logs
from gateway.api.http import GatewayConsumer
from gateway.pipeline.admission import resolve_model
from gateway.usage import recorder
from gateway.usage.record import COLUMN_SIZES, UsageRecord, clean
from protocols import openai_errors
from protocols.anthropic import betas, openapi
from protocols.anthropic.decode import count_tokens_body, to_ir
from providers import routing
from providers.registry import adapter_for
from providers.transport import client_for

log = logging.getLogger("tollgate.api")
_json = msgspec.json.Encoder()
# Says where a count came from: the provider's own counter, or the gateway's estimate.
COUNT_SOURCE_HEADER = b"tollgate-token-count"


def model_json(model: routing.ModelEntry) -> dict:
    """One entry per model, its aliases and patterns in an extra `aliases` field. As on
    Anthropic, `GET /v1/models/{alias}` answers the model it resolves to, under its own id."""
    data = {
        "type": "model",
        "id": model.name,
        "display_name": model.display_name,
        "created_at": model.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if model.max_tokens:
        data["max_tokens"] = model.max_tokens
    if model.aliases:  # an extra field: the ids and patterns that also reach this model
        data["aliases"] = list(model.aliases)
    return data


def visible(snapshot: routing.Snapshot, key) -> list[routing.ModelEntry]:
    tenant_models = snapshot.tenant_models.get(key.tenant_id)
    return [
        m
        for name, m in sorted(snapshot.models.items())
        if m.routes
        and (tenant_models is None or name in tenant_models)
        and (key.allowed_models is None or name in key.allowed_models)
    ]


def page(models: list[routing.ModelEntry], query: dict[str, list[str]]) -> dict:
    """Anthropic's cursor pagination: `limit` (1-1000), `after_id`, `before_id`."""
    try:
        limit = int(query.get("limit", ["20"])[0])
    except ValueError:
        raise InvalidRequest("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: Input should be between 1 and 1000")
    ids = [m.name for m in models]
    if after := query.get("after_id", [None])[0]:
        models = models[ids.index(after) + 1 :] if after in ids else []
        chosen = models[:limit]
    elif before := query.get("before_id", [None])[0]:
        models = models[: ids.index(before)] if before in ids else []
        chosen = models[-limit:]  # the page just before the cursor
    else:
        chosen = models[:limit]
    return {
        "data": [model_json(m) for m in chosen],
        # More in the direction asked: after the page, or before it for `before_id`.
        "has_more": len(models) > len(chosen),
        "first_id": chosen[0].name if chosen else None,
        "last_id": chosen[-1].name if chosen else None,
    }


def openai_model_json(model: routing.ModelEntry) -> dict:
    """A model as OpenAI's `GET /v1/models` lists it."""
    return {
        "id": model.name,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": "tollgate",
    }


class ModelsConsumer(GatewayConsumer):
    methods = ("GET",)
    endpoint = "models"

    def speaks_openai(self) -> bool:
        return b"anthropic-version" not in self.headers

    def error_response(self, err: GatewayError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if self.speaks_openai():
            return (*openai_errors.error(err, self.request_id), [])
        return super().error_response(err)

    async def handle(self, body: bytes) -> None:
        key = await authenticate(secret_from_headers(self.headers), self.origin())
        snapshot = await routing.current()
        model_id = self.scope["url_route"]["kwargs"].get("model_id")
        if model_id is None:
            models = visible(snapshot, key)
            if self.speaks_openai():
                listed = {"object": "list", "data": [openai_model_json(m) for m in models]}
            else:
                query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
                listed = page(models, query)
            await self.send_json(200, _json.encode(listed))
            return
        found = resolve_model(snapshot, key, model_id)  # 404 alike for unknown and not allowed
        if not found.routes:
            raise NotFound(f"model: unknown model `{model_id}`")
        shown = openai_model_json(found) if self.speaks_openai() else model_json(found)
        await self.send_json(200, _json.encode(shown))


class OpenAPIConsumer(GatewayConsumer):
    """`GET /v1/openapi.json`: the API's description, from the schema that validates it."""

    methods = ("GET",)

    async def handle(self, body: bytes) -> None:
        await self.send_json(200, openapi.encoded())


class CountTokensConsumer(GatewayConsumer):
    """Never fails once the request is valid: the provider's counter of the route that would
    serve the model when it has one and it answers, the gateway's estimate otherwise, and
    `tollgate-token-count` says which."""

    endpoint = "count_tokens"

    async def handle(self, body: bytes) -> None:
        self.began_at = time.time()
        key = await authenticate(secret_from_headers(self.headers), self.origin())
        self.tenant = key.tenant_name
        self.record = UsageRecord(
            request_id=self.request_id,
            endpoint="count_tokens",
            started_at=self.began_at,
            finished_at=self.began_at,
            status="error",
            http_status=500,
            tenant_id=key.tenant_id,
            key_id=key.key_id,
            key_prefix=key.prefix,
        )
        try:
            await self.count(key, body)
        except GatewayError as err:
            self.record.error_type = err.type
            self.record.http_status = err.status
            raise
        except Exception:
            self.record.error_type = "api_error"
            raise
        finally:
            self.account()

    async def count(self, key, body: bytes) -> None:
        record = self.record
        wire = client_json.decode_object(body)
        if isinstance(wire.get("model"), str):
            record.model = clean(wire["model"], COLUMN_SIZES["model"])  # what the client typed
        parsed = count_tokens_body(wire)
        request = to_ir(parsed, beta=betas.of_request(self.headers, parsed.betas))
        request.surface, request.raw, request.raw_json = "anthropic", body, wire
        snapshot = await routing.current()
        model = resolve_model(snapshot, key, request.model)
        record.model = clean(model.name, COLUMN_SIZES["model"])
        targets = snapshot.plan(model)
        if targets:
            target = targets[0]
            record.provider = clean(target.provider_name, COLUMN_SIZES["provider"])
            record.upstream_model = clean(target.upstream_model, COLUMN_SIZES["upstream_model"])
            client = client_for(target) if target.base_url else None
            began = time.perf_counter()
            tokens, exact = await adapter_for(target.kind).count_tokens(request, target, client)
            if client is not None:  # time spent on the provider was not the gateway's own
                self.upstream_seconds += time.perf_counter() - began
        else:  # a model without an enabled route can still be counted
            tokens, exact = estimate_input_tokens(request, exact=True), False
        record.input_tokens, record.estimated = tokens, not exact
        record.status, record.http_status = "ok", 200
        source = b"provider" if exact else b"estimate"
        await self.send_json(
            200, _json.encode({"input_tokens": tokens}), [(COUNT_SOURCE_HEADER, source)]
        )

    def account(self) -> None:
        """Hand the record to the recorder: never billed, never in the roll-ups."""
        latency = time.perf_counter() - self.started
        self.record.finished_at = self.began_at + latency
        self.record.latency_ms = round(latency * 1000, 3)
        try:
            recorder.submit(self.record)
        except Exception:
            log.exception("usage record of request %s could not be handed off", self.request_id)
        if settings.ACCESS_LOG:
            logs.log_request(self.record, endpoint="count_tokens", tenant=self.tenant)
