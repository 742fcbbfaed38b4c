"""A private PostgreSQL cluster a test can stop and start (as scripts/test.sh makes its own):
initdb into a fresh folder, pg_ctl on a free loopback port, stopped in any mode, started again.
Run as root (CI), the server runs as the ``postgres`` user."""

from __future__ import annotations

import asyncio
import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        pytest.fail("PostgreSQL is missing: run the suite with `bash scripts/test.sh`.")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One throwaway cluster: ``url`` reaches its ``postgres`` database."""

    def __init__(self, root: Path) -> None:
        self.bin = _bin_dir()
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sock"
        self.log = root / "pg.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: str) -> None:
        as_postgres = os.geteuid() == 0
        argv = (
            ["su", "postgres", "-s", "/bin/sh", "-c", command]
            if as_postgres
            else ["sh", "-c", command]
        )
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{command!r} failed: {done.stdout}{done.stderr}\n{log}")

    def init(self) -> None:
        self.data.mkdir()
        self.sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
            shutil.chown(self.sockets, "postgres")
            shutil.chown(self.root, "postgres")
        self._run(
            f"{self.bin / 'initdb'} -D {self.data} -U postgres -A trust --no-sync -E UTF8 "
            "--locale=C.UTF-8 >/dev/null"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            f"{self.bin / 'pg_ctl'} -D {self.data} -w -l {self.log} -o {shlex.quote(options)} "
            "start >/dev/null"
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate``: every server process quits at once, as in a crash or power cut."""
        self._run(f"{self.bin / 'pg_ctl'} -D {self.data} -w -m {mode} stop >/dev/null")

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    async def stop_async(self, mode: str = "fast") -> None:
        await asyncio.to_thread(self.stop, mode)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A started cluster, stopped and removed afterwards whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="cloudhelp-pg-"))
    root.chmod(0o755)  # the postgres user must be able to enter it
    cluster = Cluster(root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            try:
                cluster.stop("immediate")
            except RuntimeError:
                pass
        shutil.rmtree(root, ignore_errors=True)
