"""A server process is warm before its first request: tables loaded, heap frozen."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.live import ROOT

PROBE = """
import gc, json, sys
import gateway.asgi
from core import tokens
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "tokenizer_loaded": tokens.encoding.cache_info().currsize,
    "tasks_imported": "gateway.usage.tasks" in sys.modules,
}))
"""


def test_the_asgi_entry_point_warms_up_and_freezes_the_heap():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gateway.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["frozen"] > 10_000  # the modules and caches of a loaded Django app
    assert state["tokenizer_loaded"] == 1
    assert state["tasks_imported"]
