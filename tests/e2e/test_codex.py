"""The Codex CLI (`codex exec`) through Tollgate's Responses surface, configured as people point
it at a gateway: a model provider in `$CODEX_HOME/config.toml` with `wire_api = "responses"`.

The CLI is pinned in tests/e2e/codex/package-lock.json and installed by `make test` into
.venv/codex (`TOLLGATE_E2E_CODEX` names another binary). Codex keeps its defaults (its
`exec_command` shell tool, `web_search`, `store: false` with the reasoning replayed as
`encrypted_content`); only its own traffic elsewhere is off (analytics, the plugins sync) and
its retries, so each call it makes is one call the recording proxy sees. What Codex sends and
needs is in tests/e2e/codex/README.md.

The fake model asks for `cat secret.txt` in Codex's working directory, then answers with the
word the file holds: the word reaches the upstream only if Codex really ran the command and sent
its output back through the gateway. The Gemini route is a Gemini 3 model, which refuses a
follow-up whose function call lost its thought signature.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.e2e.recording_proxy import RecordingProxy
from tests.e2e.usage import drain, records_for

ROOT = Path(__file__).resolve().parents[2]
# Installed by `make test` from tests/e2e/codex/package-lock.json (see the Makefile).
CODEX = Path(os.environ.get("TOLLGATE_E2E_CODEX", ROOT / ".venv/codex/node_modules/.bin/codex"))
UPSTREAM = {"anthropic": "up-codex", "gemini": "gemini-3-up-codex"}  # per provider kind
SECRET = "pelican-7319"  # only in the file: the upstream sees it once the command ran
PROMPT = "What is the secret word in secret.txt?"
ANSWER = f"The secret word is {SECRET}."

# Non-interactive, no session files kept, no git repository needed, commands run unprompted and
# unsandboxed: the test is about the gateway, not Codex's sandbox (bubblewrap, which needs user
# namespaces a CI container may not have; `-s workspace-write` works on this machine).
EXEC_FLAGS = (
    "--json",
    "--ephemeral",
    "--skip-git-repo-check",
    "--dangerously-bypass-approvals-and-sandbox",
)
CONFIG = """\
model = "codex-main"
model_provider = "tollgate"

[model_providers.tollgate]
name = "Tollgate"
base_url = "{base_url}/v1"
env_key = "TOLLGATE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false  # else it calls ab.chatgpt.com

[features]
plugins = false  # else it syncs plugins from github.com and chatgpt.com
"""


def codex(prompt: str, *, base_url: str, key: str, home: Path, workdir: Path) -> list[dict]:
    """`codex exec --json` in `workdir`; returns its events (one JSON object a line)."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(CONFIG.format(base_url=base_url))
    result = subprocess.run(
        [str(CODEX), "exec", *EXEC_FLAGS, "-C", str(workdir), prompt],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "CODEX_HOME": str(codex_home),
            "TOLLGATE_API_KEY": key,
        },
        stdin=subprocess.DEVNULL,  # else it waits for more of the prompt on stdin
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def items(events: list[dict], kind: str) -> list[dict]:
    done = (e["item"] for e in events if e["type"] == "item.completed")
    return [item for item in done if item["type"] == kind]


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    drain(client)  # records of earlier tests
    yield client
    client.close()


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_codex_runs_a_shell_command_and_answers_from_its_output_through_a_translated_route(
    stage, broker, tmp_path, kind
):
    upstream_model = UPSTREAM[kind]
    stage.apply(
        providers=[stage.provider(kind)],
        models=[
            stage.model(
                "codex-main", [{"provider": f"{kind}-fake", "upstream_model": upstream_model}]
            )
        ],
        tenants=[{"name": "acme"}],
    )
    key = stage.tenant_key("acme")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "secret.txt").write_text(f"the secret word is {SECRET}\n")
    stage.upstream.script(
        upstream_model,
        {
            "blocks": [
                {"type": "tool_use", "name": "exec_command", "input": {"cmd": "cat secret.txt"}}
            ],
            "stop_reason": "tool_use",
        },
        {"blocks": [{"type": "text", "text": ANSWER}]},
    )

    with RecordingProxy(stage.gateway.url) as proxy:
        events = codex(PROMPT, base_url=proxy.url, key=key, home=tmp_path, workdir=workdir)
        calls = list(proxy.calls)

    # Every call Codex made was a Responses call the gateway answered; nothing else (no /models).
    assert [(c.method, c.path, c.status) for c in calls] == [("POST", "/v1/responses", 200)] * 2
    assert [c.model for c in calls] == ["codex-main"] * 2
    # The command ran in Codex's working directory, and its output went back to the model.
    [command] = items(events, "command_execution")
    assert command["exit_code"] == 0 and SECRET in command["aggregated_output"]
    asked = stage.upstream.requests(upstream_model)
    assert len(asked) == 2
    assert SECRET not in json.dumps(asked[0]["body"]) and SECRET in json.dumps(asked[1]["body"])
    # Codex's answer is the model's, after the tool output.
    assert [m["text"] for m in items(events, "agent_message")] == [ANSWER]
    assert events[-1]["type"] == "turn.completed"
    # Each call has its usage record, billed to the public model and the route's provider.
    ids = [c.request_id for c in calls]
    assert all(ids), "a /v1/responses answer without a request-id header"
    rows = records_for(broker, ids)
    assert {(r.status, r.http_status, r.billed) for r in rows.values()} == {("ok", 200, True)}
    assert {(r.model, r.provider, r.upstream_model) for r in rows.values()} == {
        ("codex-main", f"{kind}-fake", upstream_model)
    }
    assert all(r.input_tokens > 0 and r.output_tokens > 0 and r.cost_usd > 0 for r in rows.values())
