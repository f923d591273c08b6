"""The OpenAPI description of the `/v1` API, generated from the same Structs that validate it.

One definition (`schema.py`) gives the accepted fields, their validation and this document, so
a documented field can never be rejected as unknown. Unknown top-level fields follow one rule,
stated here: forwarded unchanged to Anthropic routes, judged by `X-Tollgate-Strictness` on
every other route.
"""

from __future__ import annotations

from functools import cache

import msgspec

from protocols.anthropic.schema import CountTokensBody, MessagesBody
from protocols.surface import GATEWAY_FIELDS

UNKNOWN_FIELDS_RULE = (
    "Fields not listed here are accepted: forwarded unchanged to Anthropic routes; on other "
    "routes dropped and reported (X-Tollgate-Strictness: warn, the default), refused (error) "
    "or dropped silently (off)."
)
_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


@cache
def document() -> dict:
    """The OpenAPI 3.1 document (built once per process: the Structs do not change)."""
    (messages, count), components = msgspec.json.schema_components(
        [MessagesBody, CountTokensBody], ref_template="#/components/schemas/{name}"
    )
    components["MessagesBody"]["additionalProperties"] = True
    extras = ", ".join(sorted(GATEWAY_FIELDS))
    components["MessagesBody"]["description"] = (
        f"Anthropic's Messages request plus the gateway's fields ({extras}), which are never "
        f"sent upstream. {UNKNOWN_FIELDS_RULE}"
    )
    components["Error"] = {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "request_id": {"type": ["string", "null"]},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    }
    errors = {
        str(code): {"description": text, **_json(_ERROR)}
        for code, text in (
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        )
    }
    strictness = {
        "name": "X-Tollgate-Strictness",
        "in": "header",
        "required": False,
        "schema": {"enum": ["error", "warn", "off"], "default": "warn"},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tollgate /v1", "version": "1"},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": {
            "/v1/messages": {
                "post": {
                    "summary": "Create a message (JSON, or server-sent events with stream: true)",
                    "parameters": [strictness],
                    "requestBody": {"required": True, **_json(messages)},
                    "responses": {
                        "200": {"description": "An Anthropic message, or its event stream"},
                        **errors,
                    },
                }
            },
            "/v1/messages/count_tokens": {
                "post": {
                    "summary": "Count a would-be request's input tokens",
                    "requestBody": {"required": True, **_json(count)},
                    "responses": {
                        "200": _json(
                            {"type": "object", "properties": {"input_tokens": {"type": "integer"}}}
                        )
                        | {"description": "The count"},
                        **errors,
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "Models this key may use",
                    "responses": {"200": {"description": "A page of models"}},
                }
            },
        },
    }


def encoded() -> bytes:
    return msgspec.json.encode(document())
