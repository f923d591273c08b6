"""`pip install .`: the wheel holds everything a running gateway needs, and works outside the
checkout (`python -m gateway ...`, files kept in the working directory)."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of the tracked files: a build writes build/ and *.egg-info beside
    # the sources, which must not appear in the checkout.
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, (t.decode() for t in tracked)):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copyfile(ROOT / name, target)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("tollgate-*.whl")
    return built


def test_the_wheel_holds_code_migrations_templates_static_files_and_scripts(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "gateway/server.py",
        "gateway/migrations/0001_initial.py",
        "accounts/migrations/0001_initial.py",
        "providers/management/commands/gateway_apply.py",
        "gateway/limits/admit.lua",
        "gateway/static/dashboard/dashboard.css",
        "templates/base.html",
        "templates/dashboard/login.html",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_the_installed_package_runs_its_commands_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(site),  # the installed package, not the checkout
        "DJANGO_SETTINGS_MODULE": "gateway.settings",
    }

    def tollgate(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    tollgate("migrate", "-v0")
    printed = tollgate("demo_bootstrap")
    tollgate("check", "--fail-level", "ERROR")

    assert printed.splitlines()[-1].startswith("tg_")
    assert (home / "db.sqlite3").exists() and (home / "var" / "quickstart").is_dir()
    assert not (site / "db.sqlite3").exists()
