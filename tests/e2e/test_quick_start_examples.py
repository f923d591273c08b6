"""What `make run` prints works when pasted into a shell: the curl line and the Python examples
(the `anthropic` SDK on /v1/messages, the `openai` SDK on /v1/chat/completions).

(The `claude` line is run in tests/e2e/test_claude_code.py.)"""

import os
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command

DEMO_REPLY = "Hello from the Tollgate demo provider. You said: Hello"


@pytest.fixture
def printed(live_gateway, transactional_db) -> tuple[str, str]:
    out = StringIO()
    host, port = live_gateway.url.removeprefix("http://").split(":")
    call_command("demo_bootstrap", host=host, port=port, stdout=out)
    lines = out.getvalue().splitlines()
    return out.getvalue(), lines[-1]


def paste(snippet: str, secret: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", snippet],
        env={"PATH": os.environ["PATH"], "TOLLGATE_KEY": secret},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("which", "sdk"), [(0, "anthropic"), (1, "openai")])
def test_each_python_example_runs_as_printed(printed, which, sdk):
    text, secret = printed
    starts = [i for i, line in enumerate(text.splitlines()) if line.endswith("<<'PY'")]
    lines = text.splitlines()[starts[which] :]
    snippet = "\n".join(lines[: lines.index("PY") + 1]).strip()
    assert f"import os, {sdk}" in snippet

    result = paste(snippet, secret)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == DEMO_REPLY


def test_the_curl_example_runs_as_printed(printed):
    text, secret = printed
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("curl "))
    snippet = "\n".join(lines[start : start + 3]).strip()

    result = paste(snippet, secret)

    assert result.returncode == 0, result.stderr
    assert DEMO_REPLY in result.stdout
