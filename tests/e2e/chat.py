"""Helpers of the `/v1/chat/completions` end-to-end tests: one model per provider kind of the
fake upstream (and the demo provider), the official `openai` client, raw chunk parsing."""

from __future__ import annotations

import json

import httpx
import openai

# (provider kind, upstream model): every kind a route can have.
KINDS = [
    ("openai", "gpt-chat"),
    ("anthropic", "claude-up-chat"),
    ("openai_responses", "gpt-resp-chat"),
    ("gemini", "gemini-chat"),
    ("demo", "demo-1"),
]
UPSTREAM_KINDS = [k for k in KINDS if k[0] != "demo"]
MODEL = "chat-test"
ASK = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def provider_for(stage, kind: str, name: str | None = None, **extra) -> dict:
    if kind == "demo":
        return {"name": name or "demo", "kind": "demo"}
    return stage.provider(kind, name, **extra)


def route(stage, kind: str, upstream_model: str, tenant: str = "acme", **key_options) -> str:
    """A model `chat-test` served by one route of `kind`; returns a key of `tenant` for it."""
    provider = provider_for(stage, kind)
    stage.apply(
        providers=[provider],
        models=[
            stage.model(MODEL, [{"provider": provider["name"], "upstream_model": upstream_model}])
        ],
        tenants=[{"name": tenant}],
    )
    return stage.tenant_key(tenant, **key_options)


def client(stage, key: str, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=stage.gateway.url + "/v1", api_key=key, max_retries=0, **options)


def post(stage, key: str, body: dict, **headers) -> httpx.Response:
    return httpx.post(
        stage.gateway.url + "/v1/chat/completions",
        json=body,
        timeout=30,
        headers={"authorization": f"Bearer {key}", **headers},
    )


def chunks(response: httpx.Response) -> list[dict | str]:
    """The `data:` frames of a raw stream, asserting the framing (`[DONE]` kept as a string);
    comment lines (keep-alive pings) are skipped."""
    assert response.text.endswith("\n\n"), response.text[-200:]
    frames: list[dict | str] = []
    for event in response.text.split("\n\n")[:-1]:
        lines = [line for line in event.split("\n") if not line.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 1 and lines[0].startswith("data: "), event
        data = lines[0][6:]
        frames.append(data if data == "[DONE]" else json.loads(data))
    return frames


def openai_error(response: httpx.Response) -> dict:
    """The `error` object of an OpenAI-shaped error body, checking its four keys."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]
