"""Claude Code (`claude -p`) completes a prompt with a tool call through Tollgate.

The CLI is pinned in tests/e2e/claude_code/package-lock.json and installed by `make test` into
.venv/claude-code. It talks
to the real gateway, which routes every model to an OpenAI-compatible fake upstream.
"""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Installed by `make test` from tests/e2e/claude_code/package-lock.json (see the Makefile).
CLAUDE = ROOT / ".venv/claude-code/node_modules/@anthropic-ai/claude-code/bin/claude.exe"


def test_claude_code_runs_a_tool_through_an_openai_compatible_upstream(stage, tmp_path):
    stage.apply(
        providers=[stage.provider("openai")],
        models=[
            stage.model("claude-cc", [{"provider": "openai-fake", "upstream_model": "gpt-cc"}]),
            stage.model(
                "claude-cc-small", [{"provider": "openai-fake", "upstream_model": "gpt-cc-small"}]
            ),
        ],
        tenants=[{"name": "acme"}],
    )
    key = stage.tenant_key("acme")
    stage.upstream.script(
        "gpt-cc",
        {
            "blocks": [
                {"type": "text", "text": "I will run it."},
                {
                    "type": "tool_use",
                    "name": "Bash",
                    "id": "call_cc1",
                    "input": {"command": "echo tollgate-ok", "description": "Print a marker"},
                },
            ],
            "stop_reason": "tool_use",
        },
        {"blocks": [{"type": "text", "text": "The command printed tollgate-ok."}]},
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ANTHROPIC_BASE_URL": stage.gateway.url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_MODEL": "claude-cc",
        "ANTHROPIC_SMALL_FAST_MODEL": "claude-cc-small",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-cc-small",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-cc",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-cc",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
    }
    result = subprocess.run(
        [
            str(CLAUDE),
            "-p",
            "Run the shell command `echo tollgate-ok` and tell me what it printed.",
            "--output-format",
            "json",
            "--allowedTools",
            "Bash(echo:*)",
            "--max-turns",
            "4",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = json.loads(result.stdout)
    assert output["is_error"] is False
    assert output["result"] == "The command printed tollgate-ok."

    main_calls = stage.upstream.requests("gpt-cc")
    assert len(main_calls) == 2
    tool_messages = [m for m in main_calls[1]["body"]["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["tool_call_id"] == "call_cc1"
    assert "tollgate-ok" in json.dumps(tool_messages[0]["content"])
    first = main_calls[0]["body"]
    assert first["stream"] is True  # Claude Code streams, with its tools, thinking and betas
    assert any(t["function"]["name"] == "Bash" for t in first["tools"])
