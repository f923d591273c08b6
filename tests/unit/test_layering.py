"""The layers point one way: core <- protocols <- accounts <- providers <- gateway.

core/ (IR, errors, ids, tokens, shared state, metrics) and protocols/ (the wire codecs) import
no Django, no HTTP client and none of the apps, so they load and test without settings.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["core", "protocols", "accounts", "providers", "gateway"]


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_no_layer_imports_a_layer_above_it():
    upward = []
    for rank, layer in enumerate(LAYERS):
        above = set(LAYERS[rank + 1 :])
        for path in sorted((ROOT / layer).rglob("*.py")):
            wrong = imports_of(path) & above
            if wrong:
                upward.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert upward == []


def test_core_and_protocols_import_without_django():
    modules = [
        f"{p.parent.relative_to(ROOT)}/{p.stem}".replace("/", ".").removesuffix(".__init__")
        for layer in ("core", "protocols")
        for p in sorted((ROOT / layer).rglob("*.py"))
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "apps = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'gateway', 'providers', 'accounts', 'channels', 'celery', 'httpx', "
        "'httpx2'))\n"
        "print(apps)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
