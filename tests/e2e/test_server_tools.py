"""Web search and context editing off Anthropic, through the real server and the official SDK:
a scripted search in each provider's own shape comes back as Anthropic's server_tool_use,
web_search_tool_result and cited text, counted and billed per search."""

import time
from decimal import Decimal

import pytest
import redis
from django.conf import settings

from gateway.models import UsageRecord
from tests.e2e.usage import drain, records_for

# An Anthropic route passes the tool and its answer through (the fake searches as Anthropic).
KINDS = ["openai_responses", "gemini", "openai", "anthropic"]
# Chat Completions searches only with a search model.
UPSTREAM = {"openai": "gpt-4o-search-preview"}
PAGES = [
    {"url": "https://www.letour.fr/en/news", "title": "Tour de France 2026: final ranking"},
    {"url": "https://www.uci.org/results", "title": "UCI results"},
]
SEARCH = {
    "blocks": [
        {"type": "web_search", "query": "2026 Tour de France winner", "results": PAGES},
        {"type": "text", "text": "Tadej Pogačar won it.", "cites": [PAGES[0]["url"]]},
    ]
}
TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    drain(client)  # records of earlier tests
    yield client
    client.close()


def the_record(broker) -> UsageRecord:
    deadline = time.monotonic() + 15  # published within a second; later on a loaded machine
    while not UsageRecord.objects.filter(model="claude-search").exists():
        assert time.monotonic() < deadline, "no usage record"
        drain(broker)
        time.sleep(0.05)
    return UsageRecord.objects.get(model="claude-search")


def setup(stage, kind: str, *, search: bool = True) -> str:
    upstream = UPSTREAM.get(kind, "search-model")
    stage.apply(
        providers=[stage.provider(kind)],
        models=[
            stage.model(
                "claude-search",
                [{"provider": f"{kind}-fake", "upstream_model": upstream}],
                pricing_per_mtok={"input": 1, "output": 1, "web_search_per_1k": 10},
            )
        ],
        tenants=[{"name": "acme"}],
    )
    if search:
        stage.upstream.script(upstream, SEARCH)
    return stage.tenant_key("acme")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_web_search_is_answered_as_anthropic_answers_it(stage, broker, kind, stream):
    client = stage.client(setup(stage, kind))
    ask = {
        "model": "claude-search",
        "max_tokens": 1024,
        "tools": [TOOL],
        "messages": [{"role": "user", "content": "Who won the 2026 Tour de France?"}],
    }
    if stream:
        with client.messages.stream(**ask) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**ask)
    kinds = [b.type for b in message.content]
    assert sorted(kinds) == ["server_tool_use", "text", "web_search_tool_result"]
    call = next(b for b in message.content if b.type == "server_tool_use")
    result = next(b for b in message.content if b.type == "web_search_tool_result")
    text = next(b for b in message.content if b.type == "text")
    assert call.id.startswith("srvtoolu_") and call.name == "web_search"
    assert result.tool_use_id == call.id
    if kind != "openai":  # a search model does not say what it searched for
        assert call.input == {"query": "2026 Tour de France winner"}
    urls = [page.url for page in result.content]
    assert PAGES[0]["url"] in urls
    assert text.text == "Tadej Pogačar won it."
    (cited,) = text.citations
    assert cited.type == "web_search_result_location"
    assert cited.url == PAGES[0]["url"] and cited.title == PAGES[0]["title"]
    assert cited.cited_text == "Tadej Pogačar won it."
    assert message.usage.server_tool_use.web_search_requests == 1
    if kind == "anthropic":  # the tool as sent, searched by Anthropic itself
        assert stage.upstream.requests("search-model")[-1]["body"]["tools"] == [TOOL]
    record = the_record(broker)
    tokens = record.input_tokens + record.output_tokens
    assert record.cost_usd == Decimal(tokens) / 1_000_000 + Decimal("0.01")


@pytest.mark.parametrize("kind", ["openai_responses", "openai"])
def test_web_fetch_is_refused_naming_the_tool_on_a_route_without_it(stage, kind):
    client = stage.client(setup(stage, kind))
    with pytest.raises(Exception) as caught:
        client.messages.create(
            model="claude-search",
            max_tokens=100,
            tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}],
            messages=[{"role": "user", "content": "read https://example.com"}],
        )
    assert caught.value.status_code == 400
    assert "tools.0 (server tool `web_fetch_20250910`)" in caught.value.message
    assert stage.upstream.requests(UPSTREAM.get(kind, "search-model")) == []


def test_old_tool_results_are_cleared_and_reported(stage):
    client = stage.client(setup(stage, "openai_responses", search=False))
    history = [{"role": "user", "content": "read both"}]
    for n in range(2):
        use = {"type": "tool_use", "id": f"toolu_{n}", "name": "Read", "input": {"n": n}}
        history.append({"role": "assistant", "content": [use]})
        result = {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": f"file {n}"}
        history.append({"role": "user", "content": [result]})
    edit = {
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 1},
        "keep": {"type": "tool_uses", "value": 1},
    }
    message = client.beta.messages.create(
        model="claude-search",
        max_tokens=100,
        tools=[{"name": "Read", "input_schema": {"type": "object"}}],
        messages=history,
        context_management={"edits": [edit]},
        betas=["context-management-2025-06-27"],
    )
    (applied,) = message.context_management.applied_edits
    assert applied.type == "clear_tool_uses_20250919"
    assert applied.cleared_tool_uses == 1
    sent = stage.upstream.requests("search-model")[-1]["body"]["input"]
    outputs = [i["output"] for i in sent if i.get("type") == "function_call_output"]
    assert outputs == ["[Old tool result content cleared]", "file 1"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_cleared_edits_are_reported_in_the_stream_too(stage, stream):
    client = stage.client(setup(stage, "gemini", search=False))
    think = {"type": "thinking", "thinking": "old plan", "signature": "sig"}
    history = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": [think, {"type": "text", "text": "first"}]},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": [think, {"type": "text", "text": "second"}]},
        {"role": "user", "content": "three"},
    ]
    edit = {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 1}}
    ask = {
        "model": "claude-search",
        "max_tokens": 100,
        "messages": history,
        "context_management": {"edits": [edit]},
        "betas": ["context-management-2025-06-27"],
    }
    if stream:
        # The SDK takes context_management from the stream's message_delta.
        with client.beta.messages.stream(**ask) as events:
            message = events.get_final_message()
    else:
        message = client.beta.messages.create(**ask)
    (applied,) = message.context_management.applied_edits
    assert applied.type == "clear_thinking_20251015"
    assert applied.cleared_thinking_turns == 1
    assert applied.cleared_input_tokens > 0


@pytest.mark.parametrize("level", ["warn", "error"])
def test_compaction_follows_strictness_on_a_translated_route(stage, level):
    client = stage.client(setup(stage, "openai_responses", search=False))
    ask = {
        "model": "claude-search",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_body": {"context_management": {"edits": [{"type": "compact_20260112"}]}},
        "extra_headers": {"x-tollgate-strictness": level},
    }
    dropped = "context_management.edits.0 (`compact_20260112` edit)"
    if level == "error":
        with pytest.raises(Exception) as caught:
            client.messages.create(**ask)
        assert caught.value.status_code == 400
        assert caught.value.body["error"]["message"].startswith(dropped)
        return
    raw = client.messages.with_raw_response.create(**ask)
    assert dropped in raw.headers["tollgate-warnings"]
    assert raw.parse().content[0].text.startswith("echo: hi")


@pytest.mark.parametrize("kind", ["openai_responses", "gemini"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_python_code_execution_runs_on_the_providers_interpreter(stage, kind, stream):
    client = stage.client(setup(stage, kind, search=False))
    code = "print(sum(range(10)))"
    stage.upstream.script(
        "search-model",
        {
            "blocks": [
                {"type": "code_execution", "code": code, "output": "45\n"},
                {"type": "text", "text": "The sum is 45."},
            ]
        },
    )
    ask = {
        "model": "claude-search",
        "max_tokens": 1024,
        "tools": [{"type": "code_execution_20250522", "name": "code_execution"}],
        "messages": [{"role": "user", "content": "Add 0..9 with code."}],
        "betas": ["code-execution-2025-05-22"],
    }
    if stream:
        with client.beta.messages.stream(**ask) as events:
            message = events.get_final_message()
    else:
        message = client.beta.messages.create(**ask)
    call, result, answer = message.content
    assert (call.type, call.name, call.input) == (
        "server_tool_use",
        "code_execution",
        {"code": code},
    )
    assert result.type == "code_execution_tool_result" and result.tool_use_id == call.id
    assert (result.content.stdout, result.content.return_code) == ("45\n", 0)
    assert answer.text == "The sum is 45."
    sent = stage.upstream.requests("search-model")[-1]["body"]["tools"]
    assert sent == (
        [{"type": "code_interpreter", "container": {"type": "auto"}}]
        if kind == "openai_responses"
        else [{"code_execution": {}}]
    )


def test_newer_code_execution_is_refused_naming_the_tool(stage):
    client = stage.client(setup(stage, "gemini", search=False))
    with pytest.raises(Exception) as caught:
        client.messages.create(
            model="claude-search",
            max_tokens=100,
            tools=[{"type": "code_execution_20250825", "name": "code_execution"}],
            messages=[{"role": "user", "content": "run ls"}],
        )
    assert caught.value.status_code == 400
    message = caught.value.body["error"]["message"]
    assert message.startswith("tools.0 (server tool `code_execution_20250825`) is not supported")
    assert stage.upstream.requests("search-model") == []


# url_context on Gemini; an Anthropic route passes the tool through and Anthropic fetches.
FETCHED = "https://docs.example.org/guide"
UNREACHABLE = "https://down.example.net/"
FETCH = {
    "blocks": [
        {"type": "web_fetch", "url": FETCHED},
        {"type": "web_fetch", "url": UNREACHABLE, "failed": True},
        {"type": "text", "text": "The guide explains setup."},
    ]
}
FETCH_TOOL = {"type": "web_fetch_20250910", "name": "web_fetch"}


@pytest.mark.parametrize("kind", ["gemini", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_web_fetch_is_answered_as_anthropic_answers_it(stage, broker, kind, stream):
    client = stage.client(setup(stage, kind, search=False))
    stage.upstream.script("search-model", FETCH)
    ask = {
        "model": "claude-search",
        "max_tokens": 1024,
        "tools": [FETCH_TOOL],
        "messages": [{"role": "user", "content": f"Summarise {FETCHED} and {UNREACHABLE}"}],
    }
    if stream:
        with client.messages.stream(**ask) as events:
            message = events.get_final_message()
            request_id = events.response.headers["request-id"]
    else:
        message = client.messages.create(**ask)
        request_id = message._request_id
    calls = [b for b in message.content if b.type == "server_tool_use"]
    results = [b for b in message.content if b.type == "web_fetch_tool_result"]
    assert [(c.name, c.input) for c in calls] == [
        ("web_fetch", {"url": FETCHED}),
        ("web_fetch", {"url": UNREACHABLE}),
    ]
    assert all(c.id.startswith("srvtoolu_") for c in calls)
    assert [r.tool_use_id for r in results] == [c.id for c in calls]
    page, failed = results[0].content, results[1].content
    assert page.type == "web_fetch_result" and page.url == FETCHED
    assert page.content.type == "document" and page.content.source.media_type == "text/plain"
    if kind == "gemini":  # url_context never returns the page's text
        assert page.content.source.data == "" and page.retrieved_at is None
        body = stage.upstream.requests("search-model")[-1]["body"]
        assert body["tools"] == [{"url_context": {}}]
    else:
        assert stage.upstream.requests("search-model")[-1]["body"]["tools"] == [FETCH_TOOL]
    assert failed.type == "web_fetch_tool_result_error"
    assert failed.error_code == "url_not_accessible"
    # A stream gives Gemini's fetches after the text (it reports them with the last chunk).
    assert [b.text for b in message.content if b.type == "text"] == ["The guide explains setup."]
    assert message.usage.server_tool_use.web_fetch_requests == 2
    (record,) = records_for(broker, [request_id]).values()
    tokens = record.input_tokens + record.output_tokens
    assert record.cost_usd == Decimal(tokens) / 1_000_000  # fetches cost nothing more


def test_web_fetch_settings_gemini_lacks_are_warned_or_skip_the_route(stage):
    client = stage.client(setup(stage, "gemini", search=False))
    stage.upstream.script("search-model", FETCH)
    tool = {**FETCH_TOOL, "max_uses": 2, "citations": {"enabled": True}}
    ask = {
        "model": "claude-search",
        "max_tokens": 100,
        "tools": [tool],
        "messages": [{"role": "user", "content": f"read {FETCHED}"}],
    }
    answer = client.messages.with_raw_response.create(**ask)
    warned = answer.headers["tollgate-warnings"]
    assert "tools.0.max_uses" in warned and "tools.0.citations" in warned
    with pytest.raises(Exception) as caught:
        client.messages.create(**ask, extra_headers={"x-tollgate-strictness": "error"})
    assert caught.value.status_code == 400
    assert "tools.0.max_uses" in caught.value.message
    assert len(stage.upstream.requests("search-model")) == 1  # the warned one only


@pytest.mark.parametrize("kind", ["gemini", "openai_responses"])
def test_a_server_tool_option_no_translation_reads_is_reported_not_dropped(stage, kind):
    client = stage.client(setup(stage, kind))
    plain = {k: v for k, v in TOOL.items() if k != "max_uses"}  # Gemini reports max_uses too
    tool = {**plain, "defer_loading": True, "use_cache": False}
    ask = {
        "model": "claude-search",
        "max_tokens": 100,
        "tools": [tool],
        "messages": [{"role": "user", "content": "Who won?"}],
    }
    answer = client.messages.with_raw_response.create(**ask)

    warned = answer.headers["tollgate-warnings"]
    assert "tools.0.defer_loading dropped" in warned and "tools.0.use_cache dropped" in warned
    with pytest.raises(Exception) as caught:
        client.messages.create(**ask, extra_headers={"x-tollgate-strictness": "error"})
    assert caught.value.status_code == 400 and "tools.0.defer_loading" in caught.value.message


def test_an_anthropic_route_gets_the_server_tool_options_as_sent(stage):
    client = stage.client(setup(stage, "anthropic"))
    tool = {**TOOL, "defer_loading": True}
    answer = client.messages.with_raw_response.create(
        model="claude-search",
        max_tokens=100,
        tools=[tool],
        messages=[{"role": "user", "content": "Who won?"}],
    )
    assert "tollgate-warnings" not in answer.headers
    assert stage.upstream.requests("search-model")[-1]["body"]["tools"] == [tool]
