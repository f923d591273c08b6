"""Which Anthropic server tools each translating adapter carries, and how it refuses the rest:
a refusal of the route (a 400 naming the tool when no route is left), never a silent drop."""

from __future__ import annotations

import pytest

from core.errors import RouteRefusal
from core.target import Target
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai_chat import OpenAIChatAdapter
from providers.adapters.openai_responses import OpenAIResponsesAdapter
from tests.unit.adapters.goldens import DEFAULT_REQUEST, make_request

ADAPTERS = {
    "openai": OpenAIChatAdapter(),
    "openai_responses": OpenAIResponsesAdapter(),
    "gemini": GeminiAdapter(),
}
# kind -> server tool types it carries (Chat: web search with a search model only)
CARRIED = {
    "openai": {"web_search_20250305", "web_search_20260209"},
    "openai_responses": {"web_search_20250305", "web_search_20260209", "code_execution_20250522"},
    "gemini": {
        "web_search_20250305",
        "web_search_20260209",
        "web_fetch_20250910",
        "web_fetch_20260309",
        "code_execution_20250522",
    },
}
TYPES = [
    "web_search_20250305",
    "web_search_20260209",
    "web_fetch_20250910",
    "web_fetch_20260309",
    "code_execution_20250522",
    "code_execution_20250825",
]


def target(kind: str, model: str = "gpt-4o-search-preview", **extra) -> Target:
    return Target(
        **extra,
        route_id=1,
        provider_id=1,
        provider_name=f"{kind}-main",
        kind=kind,
        base_url="https://upstream.test/v1",
        api_key="k",
        upstream_model=model,
        signing_key=b"k",
    )


def request_with(tool_type: str):
    kind = tool_type.rsplit("_", 1)[0]
    tool = {"kind": kind, "type": tool_type, "where": "tools.0"}
    return make_request({**DEFAULT_REQUEST, "server_tools": [tool]})


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
@pytest.mark.parametrize("tool_type", TYPES)
def test_a_server_tool_is_carried_or_the_route_refuses_naming_it(kind, tool_type):
    adapter, request = ADAPTERS[kind], request_with(tool_type)
    if tool_type in CARRIED[kind]:
        body = adapter.build_request(request, target(kind)).body
        assert body.get("tools") or body.get("web_search_options") is not None
        return
    with pytest.raises(RouteRefusal) as caught:
        adapter.build_request(request, target(kind))
    assert caught.value.feature == f"tools.0 (server tool `{tool_type}`)"
    assert caught.value.message.endswith(f"is not supported by provider `{kind}-main`")


def test_chat_refuses_web_search_on_a_model_that_cannot_search():
    with pytest.raises(RouteRefusal) as caught:
        OpenAIChatAdapter().build_request(
            request_with("web_search_20250305"), target("openai", "gpt-5")
        )
    assert (
        caught.value.feature == "tools.0 (server tool `web_search_20250305`, needs a search model)"
    )


def test_a_chat_server_declaring_web_search_options_searches_with_any_model():
    declared = target("openai", "my-model", options={"web_search_options": True})
    body = OpenAIChatAdapter().build_request(request_with("web_search_20250305"), declared).body
    assert body["web_search_options"] == {}


# --- web_fetch on Gemini: url_context ---------------------------------------------------------
def fetch_request(**options):
    tool = {"kind": "web_fetch", "type": "web_fetch_20250910", "where": "tools.1", **options}
    search = {"kind": "web_search", "type": "web_search_20250305", "where": "tools.0"}
    return make_request({**DEFAULT_REQUEST, "server_tools": [search, tool]})


def test_gemini_fetches_with_url_context_beside_google_search():
    body = ADAPTERS["gemini"].build_request(fetch_request(), target("gemini")).body
    assert body["tools"] == [{"google_search": {}}, {"url_context": {}}]


def test_gemini_reports_the_web_fetch_settings_url_context_has_not():
    request = fetch_request(
        max_uses=2, allowed_domains=["a.test"], max_content_tokens=5000, citations=True
    )
    dropped = ADAPTERS["gemini"].unsupported(request, target("gemini"))
    assert dropped == [
        "tools.1.max_uses",
        "tools.1.allowed_domains",
        "tools.1.max_content_tokens",
        "tools.1.citations",
    ]


def test_gemini_has_nothing_to_report_for_a_plain_web_fetch_or_citations_off():
    request = fetch_request(citations=False)
    assert ADAPTERS["gemini"].unsupported(request, target("gemini")) == []


def test_gemini_url_metadata_without_a_usable_url_gives_no_fetch_blocks():
    listed = [
        None,
        "x",
        {"urlRetrievalStatus": "URL_RETRIEVAL_STATUS_SUCCESS"},
        {"retrievedUrl": 7},
    ]
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Nothing read."}]},
                "finishReason": "STOP",
                "index": 0,
                "urlContextMetadata": {"urlMetadata": listed},
            }
        ]
    }
    request = fetch_request()
    response = ADAPTERS["gemini"].parse_response(body, request, target("gemini"))
    assert [type(p).__name__ for p in response.content] == ["Text"]
    assert response.usage.web_fetch_requests is None


def test_gemini_url_status_other_than_success_is_not_accessible():
    listed = [
        {"retrievedUrl": "https://p.test/", "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_PAYWALL"},
        {"retrievedUrl": "https://u.test/", "urlRetrievalStatus": "URL_RETRIEVAL_STATUS_UNSAFE"},
    ]
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Could not read."}]},
                "finishReason": "STOP",
                "index": 0,
                "urlContextMetadata": {"urlMetadata": listed},
            }
        ]
    }
    response = ADAPTERS["gemini"].parse_response(body, fetch_request(), target("gemini"))
    results = [p for p in response.content if type(p).__name__ == "WebFetchResult"]
    assert [(r.url, r.error_code) for r in results] == [
        ("https://p.test/", "url_not_accessible"),
        ("https://u.test/", "url_not_accessible"),
    ]
    assert response.usage.web_fetch_requests == 2
