"""Helpers for tests that run the ``cloudhelp`` command as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            pythonpath: Path | None = None, input_text: str | None = None,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``python -m cloudhelp ARGS`` in a child process and capture its output."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath is not None:
        full_env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "cloudhelp", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
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
