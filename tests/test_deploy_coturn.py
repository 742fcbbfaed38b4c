"""coturn with deploy/coturn/turnserver.conf (issue 14): the REST secret, UDP/TCP and TLS.

The very config file, its ports, addresses, certificate and secret templated to the test's
(each replaced text must be found), run by Debian's turnserver on loopback and stopped by its
PID. CloudHelp hands out short-lived credentials from the same secret; two aiortc peers whose
only ICE server is the ``turns:`` URL connect relay-only, so the call goes through TURN over TLS.
Allocations over plain UDP and TCP on the TURN port work with those credentials too, and a
wrong password is refused.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint

from cloudhelp.media.peer import CallPeer
from signaling.ice import turn_credentials
from tests.callkit import running_server, until
from tests.test_call_core import answer, take_ticket
from tests.tlskit import TestCA, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "coturn" / "turnserver.conf"
# Not the range of the coturn scripts/test.sh starts for the other tests.
RELAY_PORTS = (49401, 49600)


@dataclass
class Turn:
    port: int
    tls_port: int
    secret: str
    log: Path


def templated_config(folder: Path, port: int, tls_port: int, secret: str, ca: TestCA) -> str:
    cert, key, _ = ca.issue("turn")
    config = CONFIG.read_text()
    replacements = {
        "listening-port=3478": f"listening-port={port}",
        "tls-listening-port=443": f"tls-listening-port={tls_port}",
        "min-port=49152": f"min-port={RELAY_PORTS[0]}",
        "max-port=65535": f"max-port={RELAY_PORTS[1]}",
        "static-auth-secret=CHANGE-ME-the-same-as-CLOUDHELP_TURN_SECRET": (
            f"static-auth-secret={secret}"
        ),
        "realm=turn.example.gov.cn": "realm=cloudhelp.test",
        "cert=/etc/coturn/tls/fullchain.pem": f"cert={cert}",
        "pkey=/etc/coturn/tls/privkey.pem": f"pkey={key}",
        "\nsyslog\n": f"\nlog-file={folder / 'turn.log'}\n",
    }
    for old, new in replacements.items():
        assert old in config, f"{old!r} is no longer in {CONFIG}: update this test"
        config = config.replace(old, new)
    # Loopback only: listen and relay there, and let the relays reach loopback peers (the
    # deploy file's denied-peer-ip list stays as it is); verbose, to log each session.
    return config + (
        "\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nallow-loopback-peers\nverbose\n"
        f"pidfile={folder / 'turn.pid'}\n"
    )


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "turnserver.conf"
    path.write_text(text)
    return path


@asynccontextmanager
async def coturn(folder: Path, ca: TestCA) -> AsyncIterator[Turn]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn is missing: run the suite with `bash scripts/test.sh`.")
    port, tls_port, secret = free_port(), free_port(), secrets.token_hex(16)
    config = _write(folder, templated_config(folder, port, tls_port, secret, ca))
    process = await asyncio.create_subprocess_exec(
        binary, "-c", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for_port(tls_port, what="turnserver (TLS)")
        await wait_for_port(port, what="turnserver (TCP)")
        yield Turn(port, tls_port, secret, folder / "turn.log")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise


async def test_relay_only_call_through_turn_over_tls_with_the_deploy_config(
    sqlite_demo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = TestCA.create(tmp_path / "pki")
    # aioice opens turns: with Python's default context: it trusts the test CA like a browser
    # trusts the district's public one.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_file))
    async with coturn(tmp_path / "turn", ca) as turn:
        url = f"turns:127.0.0.1:{turn.tls_port}?transport=tcp"
        async with running_server(
            sqlite_demo_url, data_dir=tmp_path / "data", turn_urls=[url], turn_secret=turn.secret
        ) as server:
            staff = await server.staff("zhaogang")
            kiosk = await server.kiosk()
            (ice,) = kiosk.welcome["ice_servers"]
            assert ice["urls"] == [url]
            kiosk_peer = CallPeer(kiosk, relay_only=True)
            staff_peer = CallPeer(staff, relay_only=True)
            try:
                await take_ticket(kiosk, "NYNC-001")
                await answer(staff)
                await asyncio.wait_for(kiosk_peer.connected.wait(), 30)
                await until(lambda: staff_peer.frames_of(0) >= 5, what="video through TURN/TLS")
                for peer in (kiosk_peer, staff_peer):
                    transport = peer.pc.getTransceivers()[0].sender.transport.transport
                    connection = transport._connection
                    assert connection.turn_ssl is True
                    assert connection.turn_server == ("127.0.0.1", turn.tls_port)
                    pair = connection._nominated[1]
                    assert pair.local_candidate.type == "relay"
            finally:
                await kiosk_peer.close()
                await staff_peer.close()
    # coturn's own word: allocations were made on TLS connections.
    log = turn.log.read_text()
    assert "TLS/TCP" in log, log[-3000:]


async def test_udp_and_tcp_allocations_with_rest_credentials(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "pki")
    async with coturn(tmp_path / "turn", ca) as turn:
        username, password = turn_credentials(turn.secret, "kiosk-QG-01", 600)
        for transport in ("udp", "tcp"):
            relay, _ = await create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", turn.port), username, password,
                transport=transport,
            )  # fmt: skip
            try:
                host, port = relay.get_extra_info("sockname")
                assert host == "127.0.0.1" and RELAY_PORTS[0] <= port <= RELAY_PORTS[1]
            finally:
                relay.close()
        # A password not made with the secret is refused (401 from the server).
        with pytest.raises(stun.TransactionFailed, match="401"):
            await create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", turn.port), username, "wrong",
                transport="udp",
            )  # fmt: skip
