"""The server's garbage-collector pauses during the relay, per GC policy, against the bare relay.

    python -m benchmarks.gc_pauses [--quick] [--policies 7000,50,0,0 7000,50,0.1,2 …]

For each young/middle threshold pair, a CloudHelp server (the demo's database) holds ``idle``
kiosk sessions, each acknowledging every 5 s as protocol.js does, and ``calls`` calls relaying
chat lines as the pages send them at 10 msg/s per side; the baseline is the bare relay
(benchmarks/bare_relay.py) with as many idle sockets, which ping as often, and calls. Each
server runs under benchmarks/gc_probe.py, which times every collector pass in the server's CPU
time: the figures do not depend on what else the machine runs, unlike latencies. Prints one
JSON object: per policy and for the baseline, the passes of each generation per relay window,
the longest, and the collector's CPU time per second of relay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.signaling import (
    RATE_LIMIT_ENV,
    BenchClient,
    Seeded,
    acknowledge,
    burst,
    free_port,
    hello,
    in_batches,
    load_demo,
    process,
    seed,
    settled,
)

WINDOWS = 3


async def relay(clients: list[BenchClient], seconds: float) -> list[BenchClient]:
    """Each client sends a chat line (as the pages send it) 10 times a second for ``seconds``;
    the clients whose connection was lost meanwhile (they stop sending)."""
    lost: list[BenchClient] = []

    async def send(client: BenchClient, offset: float) -> None:
        await asyncio.sleep(offset)
        loop = asyncio.get_running_loop()
        next_at, end = loop.time(), loop.time() + seconds
        while next_at < end:
            try:
                await client.ws.send_str(client.chat(0.0))
            except aiohttp.ClientError:
                lost.append(client)
                return
            next_at += 0.1
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    live = [client for client in clients if not client.ws.closed]
    await asyncio.gather(*(send(c, n * 0.1 / len(live)) for n, c in enumerate(live)))
    return lost


async def windows(
    pid: int, out: Path, clients: list[BenchClient], seconds: float
) -> dict[str, Any]:
    """The collector's passes in each relay window, read from ``out``."""
    await relay(clients, 1.0)  # warm up
    lines, lost = [], 0
    for _ in range(WINDOWS):
        os.kill(pid, signal.SIGUSR1)  # what came before the window is set apart
        lost += len(await relay(clients, seconds))
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(0.5)
        text = await asyncio.to_thread(out.read_text)
        lines.append(json.loads(text.splitlines()[-1]))
    young = [line["0"] for line in lines]
    middle = [line["1"] for line in lines]
    total = sum(line[g]["total_ms"] for line in lines for g in ("0", "1", "2"))
    return {
        "young_passes_per_window": [w["passes"] for w in young],
        "young_max_ms": max(w["max_ms"] for w in young),
        "middle_passes_per_window": [w["passes"] for w in middle],
        "middle_max_ms": max(w["max_ms"] for w in middle),
        "full_passes": sum(line["2"]["passes"] for line in lines),
        "gc_cpu_ms_per_s": round(total / (WINDOWS * seconds), 2),
        # A busy machine can keep this one client process from answering the server's
        # heartbeat in time: the server then closes that socket (not a server failure).
        "call_sockets_lost": lost,
    }


async def with_server(
    command: list[str], env: dict[str, str], body: Callable[[int, Path], Awaitable[Any]]
) -> Any:
    out = Path(tempfile.mkdtemp(prefix="gc-probe-")) / "passes.jsonl"
    probe = [sys.executable, "-m", "benchmarks.gc_probe", str(out), *command]
    with process(probe, env) as server:
        assert server.stdout is not None
        server.stdout.readline()
        return await body(server.pid, out)


async def cloudhelp(url: str, seeded: Seeded, policy: str, idle: int, calls: int,
                    seconds: float) -> dict[str, Any]:  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = RATE_LIMIT_ENV | {"CLOUDHELP_LOG_LEVEL": "WARNING", "CLOUDHELP_GC_POLICY": policy}

    async def body(pid: int, out: Path) -> dict[str, Any]:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        idle_clients = await in_batches(
            [hello(http, base, {"kind": "kiosk", "credential": c}) for c in seeded.kiosks[:idle]]
        )
        pinging = asyncio.create_task(acknowledge(idle_clients))
        load, _rings = await burst(http, base, seeded.kiosks[idle:], seeded.staff)
        await settled(pid, busy=0.5)  # the idle pings keep it above the usual 5 %
        figures = await windows(pid, out, load.clients, seconds)
        pinging.cancel()
        for client in idle_clients + load.clients:
            client.reader.cancel()
        await http.close()
        return figures

    command = ["cloudhelp", "serve", "--db", url, "--port", str(port)]
    return dict(await with_server(command, env, body))


async def bare(policy: str, idle: int, calls: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    async def body(pid: int, out: Path) -> dict[str, Any]:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

        async def socket(room: str) -> BenchClient:
            return BenchClient(await http.ws_connect(f"{base}/ws?room={room}", heartbeat=None))

        idle_clients = await in_batches([socket(f"idle-{n}") for n in range(idle)])
        pinging = asyncio.create_task(acknowledge(idle_clients))
        clients = []
        for n in range(calls):
            pair = [await socket(str(n)), await socket(str(n))]
            pair[0].peer, pair[1].peer = "b", "a"
            clients += pair
        await settled(pid, busy=0.5)
        figures = await windows(pid, out, clients, seconds)
        pinging.cancel()
        for client in idle_clients + clients:
            client.reader.cancel()
        await http.close()
        return figures

    return dict(await with_server(["bare", str(port)], {"CLOUDHELP_GC_POLICY": policy}, body))


async def run(quick: bool, policies: list[str]) -> dict[str, Any]:
    idle, calls, seconds = (1000, 50, 4.0) if quick else (5000, 200, 6.0)
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='gc-pauses-')) / 'bench.db'}"
    load_demo(url, 3)
    # Each policy's server gets kiosks and staff of its own: the tickets and calls a stopped
    # server leaves in the database must not meet the next one's.
    seeded = await seed(url, len(policies) * (idle + calls), len(policies) * calls)
    results: dict[str, Any] = {
        "idle_sessions": idle,
        "calls": calls,
        "window_seconds": seconds,
        "windows": WINDOWS,
        "measured": "each collector pass in the server's CPU time (benchmarks/gc_probe.py)",
    }
    for n, policy in enumerate(policies):
        own = Seeded(
            seeded.kiosks[n * (idle + calls) : (n + 1) * (idle + calls)],
            seeded.staff[n * calls : (n + 1) * calls],
            seeded.signers,
        )
        results[f"cloudhelp_{policy}"] = await cloudhelp(url, own, policy, idle, calls, seconds)
    for policy in policies:
        results[f"baseline_bare_relay_{policy}"] = await bare(policy, idle, calls, seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 idle sessions, 50 calls")
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["7000,50,0,0", "7000,50,0.1,2"],  # without the beat, and the default
        help="young threshold, middle threshold, beat seconds (0: none), middle pass every N beats",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick, args.policies)), indent=1))


if __name__ == "__main__":
    main()
