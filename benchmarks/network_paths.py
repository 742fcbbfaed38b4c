"""Call set-up across real networks: direct vs TURN/UDP vs TURN/TLS, and on a poor link.

    python -m benchmarks.network_paths [--runs N]      (root; Debian packages nftables, coturn)

Prints one JSON object. Each run builds the topology of tests/test_network_paths.py afresh
(tests/netkit.py: a kiosk and a staff host, each behind its own masquerading NAT, a public
network with a real CloudHelp server and coturn), then a staff member answers a kiosk's ticket
and both aiortc peers (tests/netpeer.py, one process per host) report when the media connected
and when the first video frame was decoded, counted from the ``joined`` message each received.
A run's figure is the later of the two sides (the call is up both ways).

Paths:

- ``direct``: NATs that let the peers through (Linux masquerade); STUN only, no TURN.
- ``turn_udp``: NATs that let their hosts reach the public server only; relay-only policy,
  ``turn:`` over UDP.
- ``turn_tls``: the same, with UDP blocked; ``turns:`` (TLS over TCP) on port 443.
- ``turn_udp_poor_link``: ``turn_udp`` with, on the kiosk's link, 3 % random loss each way
  (nftables ``numgen random``), a 2 Mbit/s tbf bottleneck each way and 150 ms added each way
  by a userspace relay on its NAT (signaling and TURN alike).

It re-runs itself in a private network namespace (``unshare``) so nothing it makes is seen
outside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cloudhelp.devtools import demo
from cloudhelp.store import db
from tests.netkit import PUBLIC, SERVER_PORT, Network, call, coturn, district, times_of

STUN = f"stun:{PUBLIC}:3478"
TURN_UDP = f"turn:{PUBLIC}:3478?transport=udp"
TURNS = f"turns:{PUBLIC}:443?transport=tcp"
PATHS = ["direct", "turn_udp", "turn_tls", "turn_udp_poor_link"]


async def demo_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'cloudhelp.db'}"
    engine = db.create_engine(url)
    await db.upgrade(engine)
    async with db.session_factory(engine)() as session, session.begin():
        await demo.load_samples(session)
    await engine.dispose()
    return url


def arrange(network: Network, path: str, secret: str, stack: ExitStack) -> dict[str, Any]:
    """Firewall and impair the network for ``path``; the server's ICE settings for it."""
    if path == "direct":
        return {"stun_urls": [STUN]}
    network.only_to_public()
    relay_only = {"turn_secret": secret, "ice_transport_policy": "relay"}
    if path == "turn_tls":
        network.block_udp()
        return {"turn_urls": [TURNS], **relay_only}
    if path == "turn_udp_poor_link":
        network.only_ports("kiosk", tcp=[SERVER_PORT, 3478, 443], udp=[3478])
        network.lossy("kiosk", 3)
        network.bottleneck("kiosk", "2mbit")
        relayed = [("tcp", SERVER_PORT), ("udp", 3478), ("tcp", 3478), ("tcp", 443)]
        stack.enter_context(network.relay("kiosk", 0.150, relayed))
    return {"turn_urls": [TURN_UDP], **relay_only}


async def one_call(path: str) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        network = Network()
        stack.callback(network.down)
        network.up()
        certificate = stack.enter_context(coturn(network, folder, secret))
        settings = arrange(network, path, secret, stack)
        env = {"SSL_CERT_FILE": str(certificate)}
        url = await demo_database(folder)
        async with (
            district(network, url, **settings) as (server, public_url),
            call(network, server, public_url, env, timeout=60) as (kiosk, staff),
        ):
            for peer in (kiosk, staff):
                await peer.event("connected", 60)
                await peer.event("first_frame", 60)
            kiosk_times, staff_times = times_of(kiosk), times_of(staff)
            connected = kiosk.first("connected")
            assert connected is not None
            return {
                "connect_s": max(kiosk_times.connected, staff_times.connected),
                "first_frame_s": max(kiosk_times.first_frame, staff_times.first_frame),
                "kiosk_path": connected["path"],
            }


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "runs": [round(v, 3) for v in values],
    }


async def measure(runs: int, paths: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for path in paths:
        calls = [await one_call(path) for _ in range(runs)]
        kiosk_path = calls[-1]["kiosk_path"]
        results[path] = {
            "connect_s": summary([c["connect_s"] for c in calls]),
            "first_frame_s": summary([c["first_frame_s"] for c in calls]),
            "kiosk_pair": f"{kiosk_path['local']}→{kiosk_path['remote']}",
            "kiosk_turn": kiosk_path.get("turn"),
        }
    return {
        "measured_from": "the joined message each peer received; the later of the two peers",
        "runs_per_path": runs,
        "paths": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.network_paths")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=PATHS)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:
        inner = [sys.executable, "-m", "benchmarks.network_paths", "--inside",
                 "--runs", str(args.runs), "--paths", *args.paths]  # fmt: skip
        script = 'ip link set lo up && exec "$@"'
        command = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
                   "sh", "-c", script, "sh", *inner]  # fmt: skip
        raise SystemExit(subprocess.run(command, cwd=Path(__file__).parent.parent).returncode)
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).parent.parent))
    print(json.dumps(asyncio.run(measure(args.runs, args.paths)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
