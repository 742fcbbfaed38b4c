"""The ``cloudhelp`` command for tests, each run forked from a warm process (a forkserver).

Every command still runs in a process of its own, with its own arguments, environment, working
folder, standard streams and exit status, as when a person runs it; only the imports (~0.55 s
of CPU per command, some 140 commands in a run) are done once per pytest worker, by a template
process that imports the command line and then only forks. A command whose interpreter must
start differently — ``PYTHONPATH`` or another ``PYTHON*`` variable, or a variable read when a
module is imported (``IMPORT_TIME_VARIABLES``) set otherwise than for the template — starts a
fresh interpreter instead.

Run as ``python -m tests.clirunner`` it is the template: one JSON request per line on its
standard input; for each it forks, answers ``{"pid": …}`` at once and ``{"returncode": …}`` when
the command is over.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import select
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Read by a module when it is imported (cloudhelp/domain/passwords.py): the template has the
# worker's value, so a command asking for another one needs an interpreter of its own.
IMPORT_TIME_VARIABLES = ("CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES",)


class Template:
    """This pytest worker's template process (started at the first command)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._environment: dict[str, str] = {}  # the template's, as it started
        self._lock = threading.Lock()

    def can_run(self, env: dict[str, str]) -> bool:
        """Whether a command with environment ``env`` can be forked from the template (else it
        needs an interpreter of its own)."""
        started_with = self._environment if self._process is not None else dict(os.environ)
        return not any(
            env.get(name) != started_with.get(name)
            for name in {*env, *started_with}
            if name.startswith("PYTHON") or name in IMPORT_TIME_VARIABLES
        )

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._environment = dict(os.environ)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.clirunner"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
                # Unbuffered: the returncode line must not sit in a read-ahead buffer while
                # select() below waits on the pipe (a quick command answers both lines at once).
                bufsize=0,
            )  # fmt: skip
            atexit.register(self._process.kill)
        return self._process

    def run(
        self,
        args: list[str],
        env: dict[str, str],
        cwd: Path | None,
        input_text: str | None,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cloudhelp ARGS`` in a forked process; what ``subprocess.run`` would return."""
        argv = [sys.executable, "-m", "cloudhelp", *args]
        with self._lock, tempfile.TemporaryDirectory(prefix="cloudhelp-cli-") as folder:
            streams = {name: str(Path(folder) / name) for name in ("stdin", "stdout", "stderr")}
            Path(streams["stdin"]).write_text(input_text or "")
            process = self._started()
            assert process.stdin is not None and process.stdout is not None
            request = {"args": args, "env": env, "cwd": str(cwd or Path.cwd()), **streams}
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
            pid = json.loads(process.stdout.readline())["pid"]
            ready, _, _ = select.select([process.stdout], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
            returncode = json.loads(process.stdout.readline())["returncode"]
            stdout = Path(streams["stdout"]).read_text()
            stderr = Path(streams["stderr"]).read_text()
            if not ready:
                raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
            return subprocess.CompletedProcess(argv, returncode, stdout, stderr)


TEMPLATE = Template()


def _import_the_command_line() -> None:
    """Every module a command may import, so that forked commands import nothing."""
    import cloudhelp.cli
    import cloudhelp.devtools

    for package in (cloudhelp.cli, cloudhelp.devtools):
        for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)


def _run_command(request: dict[str, Any]) -> int:
    """In the forked child: become the command's process and run it; its exit status."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    written = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", written),
                            (2, "stderr", written)):  # fmt: skip
        opened = os.open(request[name], flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = ["cloudhelp", *request["args"]]
    from cloudhelp.cli import main

    try:
        code: Any = main(request["args"])
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):  # SystemExit("message"), as the interpreter prints it
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    return code


def _serve() -> None:
    """The template: fork a command per request line until standard input closes."""
    _import_the_command_line()
    assert threading.active_count() == 1, "forking needs a process with one thread"
    pending = b""
    while True:
        while b"\n" not in pending:
            chunk = os.read(0, 65536)
            if not chunk:
                return
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _run_command(request)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        os.write(1, json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        os.write(1, json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


if __name__ == "__main__":
    _serve()
