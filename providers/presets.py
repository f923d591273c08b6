"""Presets for OpenAI-compatible servers and Azure OpenAI: a base URL and the server's quirks.

A preset is data, not code (as Portkey keeps provider HTTP details): `gateway_apply` accepts
`preset: vllm` on a provider entry, fills in what the entry leaves out, and stores the quirks
in `Provider.options`, which the OpenAI Chat adapter reads. Options a preset may set:

- `max_tokens_field`: `max_tokens` or `max_completion_tokens` (default: by model name)
- `top_k`: the server accepts Anthropic's `top_k` as an extra field (vLLM, Together, OpenRouter)
- `stream_usage`: send `stream_options.include_usage` (default true)
- `auth`: `bearer` (default), `api-key` (Azure) or `none`
- `azure_api_version`: address Azure deployments, `{base}/openai/deployments/{model}/...`
- `service_tier`: the server takes OpenAI's `service_tier` (default true); a server without
  tiers serves both of Anthropic's values (`auto`, `standard_only`) as they ask, so it gets none
- `web_search_options`: the server's models search the web when sent `web_search_options`
  (OpenAI's search models are recognised by name: `…search…`)
- `prompt_cache_key`: send the per-tenant `prompt_cache_key` (default: only to api.openai.com;
  other servers may reject a field they do not know)

Anthropic-kind presets also set the provider's `anthropic-beta` policy (`betas`, see
protocols/anthropic/betas.py): Anthropic takes every beta; Anthropic-compatible servers reject
the ones they do not know, so they get only those listed. A preset without `betas` forwards
every beta.
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "openai": {
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "options": {"prompt_cache_key": True},
    },
    "vllm": {
        "kind": "openai",
        "base_url": "http://localhost:8000/v1",
        "options": {"top_k": True, "max_tokens_field": "max_tokens", "service_tier": False},
    },
    "ollama": {
        "kind": "openai",
        "base_url": "http://localhost:11434/v1",
        "options": {"max_tokens_field": "max_tokens", "service_tier": False},
    },
    "groq": {
        "kind": "openai",
        "base_url": "https://api.groq.com/openai/v1",
        "options": {"max_tokens_field": "max_completion_tokens", "service_tier": False},
    },
    "together": {
        "kind": "openai",
        "base_url": "https://api.together.xyz/v1",
        "options": {"top_k": True, "max_tokens_field": "max_tokens", "service_tier": False},
    },
    "deepseek": {
        "kind": "openai",
        "base_url": "https://api.deepseek.com/v1",
        "options": {"max_tokens_field": "max_tokens", "service_tier": False},
    },
    "mistral": {
        "kind": "openai",
        "base_url": "https://api.mistral.ai/v1",
        # Mistral reports usage on the last chunk by itself and rejects stream_options.
        "options": {"max_tokens_field": "max_tokens", "stream_usage": False, "service_tier": False},
    },
    "openrouter": {
        "kind": "openai",
        "base_url": "https://openrouter.ai/api/v1",
        "options": {"top_k": True, "service_tier": False},
    },
    "anthropic": {
        "kind": "anthropic",
        "base_url": "https://api.anthropic.com",
        "options": {},
        "betas": {"mode": "forward", "names": []},
    },
    # A server that speaks the Messages API without Anthropic's betas (a proxy, a local model
    # server): only betas that change nothing a server could reject.
    "anthropic-compatible": {
        "kind": "anthropic",
        "base_url": "",
        "options": {},
        "betas": {
            "mode": "allow",
            "names": ["interleaved-thinking-*", "fine-grained-tool-streaming-*"],
        },
    },
    # DeepSeek's Anthropic-compatible endpoint documents anthropic-beta as not supported.
    "deepseek-anthropic": {
        "kind": "anthropic",
        "base_url": "https://api.deepseek.com/anthropic",
        "options": {},
        "betas": {"mode": "allow", "names": []},
    },
    "azure": {
        "kind": "openai",
        "base_url": "",  # https://<resource>.openai.azure.com: each deployment has its own
        "options": {
            "auth": "api-key",
            "azure_api_version": "2024-10-21",
            "max_tokens_field": "max_completion_tokens",
            "service_tier": False,
        },
    },
}


def betas(preset: str | None) -> dict:
    """The preset's beta policy ({mode, names}); forward everything without one."""
    policy = PRESETS[preset].get("betas") if preset in PRESETS else None
    return policy or {"mode": "forward", "names": []}


def resolve(preset: str | None, *, kind: str | None, base_url: str, options: dict) -> tuple:
    """(kind, base_url, options) after filling what the entry left out from its preset."""
    if preset is None:
        return kind, base_url, options
    defaults = PRESETS[preset]
    return (
        kind or defaults["kind"],
        base_url or defaults["base_url"],
        {**defaults["options"], **options},
    )
