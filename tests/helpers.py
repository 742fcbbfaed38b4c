"""Helpers for tests that run the ``cloudhelp`` command as a user would."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests import clirunner

ROOT = Path(__file__).resolve().parent.parent
# A folder every pytest-xdist worker of this run shares (tests/conftest.py sets it: pytest's
# temporary folder of the run, removed with old runs); None outside pytest.
RUN_FOLDER: Path | None = None
# How long a command may run before the test gives up: `cloudhelp demo` (7 s of CPU) outlasted
# 120 s in a full run on a loaded two-core machine.
CLI_SECONDS = 300


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            pythonpath: Path | None = None, input_text: str | None = None,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``python -m cloudhelp ARGS`` in a process of its own and capture its output: forked
    from this worker's warm template (tests/clirunner.py), or a fresh interpreter when
    ``pythonpath`` or the environment asks for one."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath is None and clirunner.TEMPLATE.can_run(full_env):
        return clirunner.TEMPLATE.run(list(args), full_env, cwd, input_text, timeout=CLI_SECONDS)
    if pythonpath is not None:
        full_env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "cloudhelp", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=CLI_SECONDS,
        input=input_text,
    )


def start_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              pythonpath: Path | None = None) -> subprocess.Popen[str]:  # fmt: skip
    full_env = {**os.environ, **(env or {})}
    if pythonpath is not None:
        full_env["PYTHONPATH"] = str(pythonpath)
    return subprocess.Popen(
        [sys.executable, "-m", "cloudhelp", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
    )


def serve_and_read_url(process: subprocess.Popen[str]) -> str:
    """The URL from the first line ``cloudhelp serve`` prints."""
    assert process.stdout is not None
    first = process.stdout.readline()
    if not first:
        raise AssertionError(f"serve printed nothing; stderr: {process.stderr.read()}")  # type: ignore[union-attr]
    assert first.startswith("CloudHelp is running: open http://"), first
    return first.rsplit(" ", 1)[1].strip()


def made_once_per_run(name: str, make: Callable[[Path], str]) -> tuple[Path, str]:
    """``make(folder)`` once per test run, by whichever worker asks first (the others wait for
    it): the folder it filled and the text it returned."""
    root = RUN_FOLDER or Path(tempfile.mkdtemp(prefix="cloudhelp-run-"))
    folder, made = root / name, root / f"{name}.made"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            made.write_text(make(folder))
    return folder, made.read_text()


def _made_demo(folder: Path) -> str:
    done = run_cli("demo", "--db", f"sqlite:///{folder / 'demo.db'}")
    assert done.returncode == 0, done.stderr
    return done.stdout


def demo_database(path: Path) -> str:
    """The URL of a SQLite database at ``path`` holding what ``cloudhelp demo --db`` makes: made
    once per test run and copied, for tests that start from the demo rather than test it."""
    folder, _output = made_once_per_run("demo-db", _made_demo)
    source, target = sqlite3.connect(folder / "demo.db"), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{path}"
