"""One database, which servers: a server alone is its database's only one; nodes sharing a
broker may be many; the lock dies with its holder (cloudhelp/store/serverlock.py)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from cloudhelp.store.serverlock import DatabaseInUse
from signaling.broker import InProcessBroker
from tests.callkit import running_server
from tests.helpers import demo_database, run_cli, serve_and_read_url, start_cli

ALONE = "a server without redis_url must be its database's only one"
NODE = "a cluster node cannot share its database"


def test_a_second_server_is_refused_and_a_killed_ones_lock_dies_with_it(tmp_path: Path) -> None:
    """`cloudhelp serve` twice on one data folder (or `cloudhelp demo --serve` beside it, two
    demos on two ports): the second says why and exits 1, the first serves on. Killed
    (SIGKILL: nothing cleaned up), the first leaves nothing that stops its restart."""
    url = demo_database(tmp_path / "cloudhelp.db")
    serve = ("serve", "--db", url, "--port", "0")
    cheap = {"CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES": "1"}
    first = start_cli(*serve, env=cheap)
    try:
        base = serve_and_read_url(first)
        second = run_cli(*serve, env=cheap)
        assert second.returncode == 1, second.stderr
        assert "Another CloudHelp server is serving" in second.stderr
        assert ALONE in second.stderr
        # The demo's way (scripts/demo.sh on another port) is told so before it loads anything.
        demo = run_cli("demo", "--db", url, "--serve", "--port", "0", env=cheap)
        assert demo.returncode == 1, demo.stderr
        assert ALONE in demo.stderr and "Demo data loaded" not in demo.stdout
        with urllib.request.urlopen(base + "healthz", timeout=30) as answer:
            assert answer.status == 200
    finally:
        first.kill()
        first.wait(timeout=30)
    again = start_cli(*serve, env=cheap)
    try:
        base = serve_and_read_url(again)
        with urllib.request.urlopen(base + "healthz", timeout=30) as answer:
            assert answer.status == 200
    finally:
        again.terminate()
        again.wait(timeout=30)


async def test_nodes_and_a_server_alone_never_share_a_database(demo_url: str) -> None:
    """A node (a broker shared with other processes) beside a server alone is refused, and a
    server alone beside nodes; nodes beside nodes are welcome."""
    async with running_server(demo_url):
        with pytest.raises(DatabaseInUse, match=NODE):
            async with running_server(demo_url, broker=InProcessBroker()):
                pass
    broker = InProcessBroker()
    async with running_server(demo_url, broker=broker), running_server(demo_url, broker=broker):
        with pytest.raises(DatabaseInUse, match=ALONE):
            async with running_server(demo_url):
                pass
    async with running_server(demo_url) as alone:  # the nodes are gone: welcome
        assert (await alone.http.get("/healthz")).status == 200


async def test_a_server_on_a_new_data_folder_starts(tmp_path: Path) -> None:
    """The lock file goes into a folder that does not exist yet, as the database does."""
    async with running_server(f"sqlite:///{tmp_path / 'new' / 'cloudhelp.db'}") as server:
        assert (await server.http.get("/healthz")).status == 200
    assert (tmp_path / "new" / "cloudhelp.db-server.lock").exists()
