"""The /v1 OpenAPI document comes from the Structs that validate requests."""

import msgspec

from protocols.anthropic.openapi import document
from protocols.anthropic.schema import KNOWN_FIELDS


def test_every_accepted_field_is_documented_and_nothing_else():
    body = document()["components"]["schemas"]["MessagesBody"]
    assert set(body["properties"]) == KNOWN_FIELDS
    assert {
        "reasoning",
        "provider_options",
        "usage",
        "meta",
        "echo_upstream_request",
        "debug",
        "provider",
    } <= set(body["properties"])
    assert body["additionalProperties"] is True
    assert "X-Tollgate-Strictness" in body["description"]


def test_document_is_openapi_with_every_endpoint_and_anthropic_errors():
    doc = msgspec.json.decode(msgspec.json.encode(document()))
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {"/v1/messages", "/v1/messages/count_tokens", "/v1/models"}
    post = doc["paths"]["/v1/messages"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MessagesBody"
    }
    assert post["responses"]["413"]["description"] == "request_too_large"
    assert post["parameters"][0]["name"] == "X-Tollgate-Strictness"
