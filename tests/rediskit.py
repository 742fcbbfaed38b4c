"""Redis for the tests: the shared server scripts/test.sh starts (``CLOUDHELP_TEST_REDIS_URL``),
and a private one a test may stop and start again on the same port (as tests/pgcluster.py does
for PostgreSQL), with no persistence: started again, it is empty, as after a crash."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def shared_redis_url() -> str:
    """The shared redis-server, in a database of this pytest worker's own (gw0: 1, gw1: 2 …;
    one process: 0). Nodes broadcast on a Stream in their database: in one database, a
    kiosk's new session on one worker's nodes replaced the sessions of the kiosk with the same
    id on another worker's (each worker's tests have their own database of kiosks)."""
    url = os.environ.get("CLOUDHELP_TEST_REDIS_URL")
    if not url:
        pytest.fail(
            "CLOUDHELP_TEST_REDIS_URL is not set: run the suite with `bash scripts/test.sh`, "
            "which starts a throwaway redis-server."
        )
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    database = int(worker.removeprefix("gw")) + 1 if worker.startswith("gw") else 0
    return f"{url.rsplit('/', 1)[0]}/{database}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """One redis-server of the test's own on a loopback port; ``url`` reaches database 0."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is missing: run the suite with `bash scripts/test.sh`.")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.root),
             "--logfile", str(self.root / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer in 10 s: {self.log()}")

    def stop(self) -> None:
        """SIGKILL: the server goes at once, with whatever it held (it persists nothing)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    def log(self) -> str:
        path = self.root / "redis.log"
        return path.read_text() if path.exists() else ""


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A started private redis-server, stopped and its folder removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cloudhelp-redis-"))
    server = PrivateRedis(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
