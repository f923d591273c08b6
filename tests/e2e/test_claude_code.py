"""Claude Code (`claude -p`) through Tollgate, as people run it: no model variables at all.

The CLI is pinned in tests/e2e/claude_code/package-lock.json and installed by `make test` into
.venv/claude-code. It asks for its own model ids (claude-opus-5-5, claude-haiku-5-5 for a small
subagent), which reach the configured models by pattern (`claude-opus-*`, `claude-haiku-*`) or
by the tenant's default; every model is served by one translated route of the fake upstream.

A conversation is a list of `Turn`s run with `claude -p` (later turns with `--continue`); each
turn scripts the upstream replies it needs and says what `claude -p` prints. A recording proxy
in front of the gateway sees every call Claude Code makes, so the test can say that each was
answered and that each call (`/v1/messages` and `count_tokens`) has its usage record. WebSearch
makes its own messages call with the `web_search` server tool, answered by the provider's search
(scripted in its own shape by the fake upstream; a Chat provider declares `web_search_options`);
`/compact` summarises with an ordinary call, and the next turn goes on from the summary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from gateway.models import UsageRecord
from tests.e2e.recording_proxy import RecordingProxy
from tests.e2e.usage import drain, records_for

ROOT = Path(__file__).resolve().parents[2]
# Installed by `make test` from tests/e2e/claude_code/package-lock.json (see the Makefile).
CLAUDE = ROOT / ".venv/claude-code/node_modules/@anthropic-ai/claude-code/bin/claude.exe"
MAIN, SMALL = "up-cc-main", "up-cc-small"  # upstream models of the two public models
QUIET = {  # no telemetry, update checks or other traffic that is not the conversation
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
}


@dataclass(frozen=True)
class Turn:
    """One `claude -p` of the conversation and the upstream replies it needs, in order."""

    prompt: str
    prints: str | None  # the `result` claude -p prints; None: not checked (a slash command)
    main: tuple[dict, ...] = ()  # scripted replies of the main model's upstream
    small: tuple[dict, ...] = ()  # of the small model's (subagents asked to run on haiku)
    args: tuple[str, ...] = ()
    checks: tuple = field(default=(), compare=False)  # f(upstream requests of MAIN) -> None


def text(value: str) -> dict:
    return {"blocks": [{"type": "text", "text": value}]}


def tool(name: str, **arguments) -> dict:
    return {
        "blocks": [{"type": "tool_use", "name": name, "input": arguments}],
        "stop_reason": "tool_use",
    }


PAGE = {"url": "https://www.letour.fr/en/news", "title": "Tour de France 2026: final ranking"}
SEARCH = {  # the provider's own search, scripted in its own shape by the fake upstream
    "blocks": [
        {"type": "web_search", "query": "2026 Tour de France winner", "results": [PAGE]},
        {"type": "text", "text": "Tadej Pogačar won it.", "cites": [PAGE["url"]]},
    ]
}
SUMMARY = "<analysis>Short.</analysis>\n<summary>The user ran echo tollgate-ok.</summary>"


def ran_the_command(requests: list[dict]) -> None:
    assert "tollgate-ok" in json.dumps(requests[-1]["body"])  # the tool result went back


# How each provider kind was asked to search (Chat: a model with `web_search_options`).
SEARCH_TOOLS = ('{"type": "web_search"', '"google_search"', '"web_search_options"')


def searched_the_web(requests: list[dict]) -> None:
    """WebSearch's own messages call reached the provider with its search tool, and the
    result Claude Code made of our answer (its links and text) went back to the model."""
    search, after = requests[-2:]
    assert any(tool in json.dumps(search["body"]) for tool in SEARCH_TOOLS)
    sent = json.dumps(after["body"], ensure_ascii=False)
    assert 'Web search results for query: \\"2026 Tour de France winner\\"' in sent
    assert PAGE["url"] in sent and "Tadej Pogačar won it." in sent


def asked_for_a_summary(requests: list[dict]) -> None:
    assert "<summary>" in json.dumps(requests[-1]["body"])


def continued_from_the_summary(requests: list[dict]) -> None:
    sent = json.dumps(requests[-1]["body"])
    assert "The user ran echo tollgate-ok." in sent  # the compacted history
    assert "Ask a quick agent for the marker." not in sent  # the turns it summarised


CONVERSATION = [
    Turn(
        prompt="Run the shell command `echo tollgate-ok` and tell me what it printed.",
        main=(
            tool("Bash", command="echo tollgate-ok", description="Print a marker"),
            text("The command printed tollgate-ok."),
        ),
        prints="The command printed tollgate-ok.",
        args=("--allowedTools", "Bash(echo:*)"),
        checks=(ran_the_command,),
    ),
    Turn(
        prompt="Ask a quick agent for the marker.",
        main=(
            tool(
                "Agent",
                description="Find the marker",
                prompt="Say the marker.",
                subagent_type="general-purpose",
                model="haiku",  # Claude Code's small model: claude-haiku-5-5
                run_in_background=False,
            ),
            text("The agent found the marker tollgate-small."),
        ),
        small=(text("The marker is tollgate-small."),),
        prints="The agent found the marker tollgate-small.",
    ),
    # Claude Code counts the conversation's and its tools' tokens: many count_tokens calls.
    Turn(prompt="/context", prints=None),
    Turn(
        prompt="Search the web: who won the 2026 Tour de France?",
        main=(
            tool("WebSearch", query="2026 Tour de France winner"),
            SEARCH,
            text("Tadej Pogačar won the 2026 Tour de France."),
        ),
        prints="Tadej Pogačar won the 2026 Tour de France.",
        args=("--allowedTools", "WebSearch"),
        checks=(searched_the_web,),
    ),
    # Claude Code summarises the conversation with an ordinary messages call.
    Turn(prompt="/compact", prints=None, main=(text(SUMMARY),), checks=(asked_for_a_summary,)),
    Turn(
        prompt="What did we do so far?",
        main=(text("We ran echo tollgate-ok."),),
        prints="We ran echo tollgate-ok.",
        checks=(continued_from_the_summary,),
    ),
]


def claude(prompt: str, env: dict[str, str], cwd: Path, *args: str) -> dict:
    result = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", "--max-turns", "6", *args],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    drain(client)  # records of earlier tests
    yield client
    client.close()


@pytest.mark.parametrize("kind", ["openai", "openai_responses", "gemini"])
def test_claude_code_converses_with_no_model_variables_through_a_translated_route(
    stage, broker, tmp_path, kind
):
    # Chat Completions searches with web_search_options (search models, or a server saying so).
    options = {"options": {"web_search_options": True}} if kind == "openai" else {}
    stage.apply(
        providers=[stage.provider(kind, **options)],
        models=[
            stage.model(
                "cc-main",
                [{"provider": f"{kind}-fake", "upstream_model": MAIN}],
                aliases=["claude-opus-*"],
            ),
            stage.model(
                "cc-small",
                [{"provider": f"{kind}-fake", "upstream_model": SMALL}],
                aliases=["claude-haiku-*"],
            ),
        ],
        tenants=[{"name": "acme", "default_model": "cc-main"}],  # any other claude-* id
    )
    env = {"ANTHROPIC_API_KEY": stage.tenant_key("acme"), **QUIET}

    with RecordingProxy(stage.gateway.url) as proxy:
        env["ANTHROPIC_BASE_URL"] = proxy.url
        for i, turn in enumerate(CONVERSATION):
            stage.upstream.script(MAIN, *turn.main)
            stage.upstream.script(SMALL, *turn.small)
            again = ("--continue",) if i else ()
            output = claude(turn.prompt, env, tmp_path, *again, *turn.args)
            assert output["is_error"] is False, output
            if turn.prints is not None:
                assert output["result"] == turn.prints
            for check in turn.checks:
                check(stage.upstream.requests(MAIN))
        calls = [c for c in proxy.calls if c.path.startswith("/v1/")]

    assert [c for c in calls if c.status != 200] == []
    asked = {c.model for c in calls}
    assert {"claude-opus-5-5", "claude-haiku-5-5"} <= asked  # its own ids, no variables
    messages = [c for c in calls if c.path == "/v1/messages"]
    counts = [c for c in calls if c.path == "/v1/messages/count_tokens"]
    # Two turns of tools, a subagent, a WebSearch (its own call), /compact, one more turn.
    assert len(messages) == 10 and len(counts) > 0
    assert all(json.loads(c.body)["input_tokens"] > 0 for c in counts)
    # Every message has its usage record, billed to the model the id resolved to.
    rows = records_for(broker, [c.request_id for c in messages])
    assert {(r.status, r.http_status, r.billed) for r in rows.values()} == {("ok", 200, True)}
    by_model = {c.request_id: c.model for c in messages}
    resolved = {by_model[rid]: row.model for rid, row in rows.items()}
    assert resolved == {"claude-opus-5-5": "cc-main", "claude-haiku-5-5": "cc-small"}
    assert all(row.provider == f"{kind}-fake" and row.cost_usd > 0 for row in rows.values())
    # Every count_tokens call has its record too: never billed, never rolled up.
    counted = records_for(broker, [c.request_id for c in counts])
    assert {(r.endpoint, r.status, r.billed, r.cost_usd) for r in counted.values()} == {
        ("count_tokens", "ok", False, 0)
    }
    assert all(r.input_tokens > 0 and r.tenant is not None for r in counted.values())
    # This tenant's rows only: records earlier tests on this worker left queued (drained by the
    # fixture, or handed off late by the gateway) belong to tenants since deleted.
    rows = UsageRecord.objects.filter(tenant__name="acme")
    assert rows.count() == len(messages) + len(counts)


def test_the_claude_line_make_run_prints_answers_with_the_demo_provider(
    live_gateway, transactional_db, tmp_path
):
    printed = StringIO()
    host, port = live_gateway.url.removeprefix("http://").split(":")
    call_command("demo_bootstrap", host=host, port=port, stdout=printed)
    lines = printed.getvalue().splitlines()
    secret = lines[-1]
    line = next(line.strip() for line in lines if line.strip().endswith(" claude"))
    env = dict(re.findall(r"(\w+)=(\S+)", line))
    env = {name: value.replace("$TOLLGATE_KEY", secret) for name, value in env.items()}
    assert set(env) == {"ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"}  # no model variable

    output = claude("Hello there", {**env, **QUIET}, tmp_path)

    assert output["result"] == "Hello from the Tollgate demo provider. You said: Hello there"
