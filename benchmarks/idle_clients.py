"""Idle clients in a process of their own, as kiosks are machines of their own.

    python -m benchmarks.idle_clients SPEC.json

SPEC holds ``{"base": URL, "auths": [...]}`` (CloudHelp: each a ``hello`` auth) or
``{"base": URL, "sockets": N}`` (the bare relay: N rooms of one). Connects them, prints
``connected N`` and has each send ``{"type": "ping", "seq"}`` every 5 s as an idle page does,
until its standard input closes; then each says ``bye`` and closes, and the process exits.

The signaling benchmark's own process then holds only the clients in calls, so what it
measures is the servers' relay, not its own work for thousands of idle sockets.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from benchmarks.signaling import BenchClient, acknowledge, hello, in_batches
from cloudhelp.core.gcpolicy import tune_gc, young_passes


async def connect(http: aiohttp.ClientSession, spec: dict[str, Any]) -> list[BenchClient]:
    base = spec["base"]
    if "auths" in spec:
        return await in_batches([hello(http, base, auth) for auth in spec["auths"]])

    async def socket(n: int) -> BenchClient:
        return BenchClient(await http.ws_connect(f"{base}/ws?room=idle-{n}", heartbeat=None))

    return await in_batches([socket(n) for n in range(spec["sockets"])])


async def stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def run(spec: dict[str, Any]) -> None:
    tune_gc()
    young = young_passes()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        clients = await connect(http, spec)
        print("connected", len(clients), flush=True)
        pinging = asyncio.create_task(acknowledge(clients))
        await stdin_closed()
        pinging.cancel()
        await in_batches([client.close() for client in clients])
    if young is not None:
        await young.stop()


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        asyncio.run(run(json.load(file)))


if __name__ == "__main__":
    main()
