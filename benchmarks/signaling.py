"""Signaling benchmark: idle sessions, relay latency and throughput, call set-up with aiortc.

    python -m benchmarks.signaling [--quick]

Prints one JSON object. The CloudHelp server and the bare relay baseline each run in their own
process; the load comes from this process, the same way for both, so the ratios are fair even
where this one process limits the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from cloudhelp.domain import accounts, catalog, network
from cloudhelp.store import db
from cloudhelp.store.models import Kiosk, Staff, StaffLogin, StaffSkill, Station, utcnow

PAYLOAD = "办" * 80  # ~300 bytes per message once wrapped in JSON


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---------------------------------------------------------------------------- seeding


async def seed(url: str, kiosks: int, staff: int) -> tuple[list[str], list[str]]:
    """Demo data plus ``kiosks`` enrolled kiosks and ``staff`` signed-in staff (SCJG skills)."""
    engine = db.create_engine(url)
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    credentials = [secrets.token_urlsafe(24) for _ in range(kiosks)]
    tokens = [secrets.token_urlsafe(24) for _ in range(staff)]
    async with sessions() as s, s.begin():
        await catalog.import_catalog(s, catalog.parse_file(catalog.SAMPLE_CATALOG))
        await network.import_network(s, network.load_sample_network())
    async with sessions() as s, s.begin():
        from sqlalchemy import select

        station = await s.scalar(select(Station).where(Station.code == "DLW-QG"))
        hall = await s.scalar(select(Station).where(Station.code == "GJZ-HALL"))
        department_id = (await catalog.get_item(s, "SCJG-001")).department_id  # type: ignore[union-attr]
        assert station and hall
        for n, credential in enumerate(credentials):
            s.add(
                Kiosk(
                    code=f"B-{n}",
                    name=f"bench {n}",
                    station_id=station.id,
                    credential_hash=accounts.token_hash(credential),
                )
            )
        expires = utcnow() + timedelta(hours=2)
        for n, token in enumerate(tokens):
            person = Staff(username=f"bench{n}", display_name=f"B{n}", station_id=hall.id)
            person.skills = [StaffSkill(department_id=department_id)]
            s.add(person)
            await s.flush()
            s.add(
                StaffLogin(
                    token_hash=accounts.token_hash(token), staff_id=person.id, expires_at=expires
                )
            )
    await engine.dispose()
    return credentials, tokens


# ---------------------------------------------------------------------------- clients


class BenchClient:
    """A lean WebSocket client that always reads (so heartbeats are answered).

    Frames carrying a send time count as relay latency; the others go to ``frames``.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.latencies: list[float] | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                data = frame.get("data")
                if isinstance(data, dict) and "t" in data:
                    if self.latencies is not None:
                        self.latencies.append((time.perf_counter() - data["t"]) * 1000)
                else:
                    self.frames.put_nowait(frame)

    async def next(self, type_: str) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.frames.get(), 120)
            if frame["type"] == type_:
                return frame

    async def close(self) -> None:
        """Say bye (the session ends now, not after the grace period) and close."""
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            await self.ws.send_json({"type": "bye"})
        self.reader.cancel()
        await self.ws.close()


async def hello(http: aiohttp.ClientSession, base: str, auth: dict[str, Any]) -> BenchClient:
    ws = await http.ws_connect(f"{base}/ws", heartbeat=None, max_msg_size=0)
    await ws.send_json({"type": "hello", "v": 1, "auth": auth})
    welcome = json.loads((await ws.receive(timeout=30)).data)
    assert welcome["type"] == "welcome", welcome
    return BenchClient(ws)


async def idle_sessions(base: str, pid: int, credentials: list[str]) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.sleep(1.0)
        before = rss_kib(pid)
        clients: list[BenchClient] = []
        for start in range(0, len(credentials), 200):
            batch = credentials[start : start + 200]
            clients += await asyncio.gather(
                *(hello(http, base, {"kind": "kiosk", "credential": c}) for c in batch)
            )
        await asyncio.sleep(2.0)
        after = rss_kib(pid)
        for client in clients:
            await client.close()
        await asyncio.sleep(3.0)  # let the server finish ending them before the next phase
    return {
        "idle_sessions": len(clients),
        "rss_per_idle_session_kib": round((after - before) / len(clients), 1),
    }


class RelayLoad:
    """Pairs of clients exchanging ~300-byte messages; latency measured at the receiver."""

    def __init__(self, http: aiohttp.ClientSession, clients: list[BenchClient]) -> None:
        self.http = http
        self.clients = clients

    async def run(self, per_client_rate: float, seconds: float) -> dict[str, float]:
        latencies: list[float] = []
        for client in self.clients:
            client.latencies = latencies
        interval = 1.0 / per_client_rate

        async def send(ws: aiohttp.ClientWebSocketResponse, offset: float) -> None:
            await asyncio.sleep(offset)
            next_at = time.perf_counter()
            end = next_at + seconds
            while next_at < end:
                frame = {"type": "app", "data": {"t": time.perf_counter(), "p": PAYLOAD}}
                await ws.send_str(json.dumps(frame))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        started = time.perf_counter()
        count = len(self.clients)
        await asyncio.gather(
            *(send(c.ws, i * interval / count) for i, c in enumerate(self.clients))
        )
        await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - started - 0.5
        for client in self.clients:
            client.latencies = None
        if not latencies:
            return {"p50": float("nan"), "p99": float("nan"), "msgs_s": 0.0}
        return {
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "msgs_s": len(latencies) / elapsed,
        }

    async def max_rate(self, rates: list[float], seconds: float) -> float:
        """The highest received rate among the steps whose p99 stayed under 50 ms."""
        best = 0.0
        for rate in rates:
            result = await self.run(rate, seconds)
            if os.environ.get("BENCH_VERBOSE"):
                print(rate, {k: round(v, 2) for k, v in result.items()}, file=sys.stderr)
            if result["p99"] >= 50.0:
                break
            best = max(best, result["msgs_s"])
        return best

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.http.close()


async def cloudhelp_calls(base: str, credentials: list[str], tokens: list[str]) -> RelayLoad:
    """``len(tokens)`` calls set up through the real queue: kiosks take tickets, staff answer."""
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    staff = [await hello(http, base, {"kind": "staff", "token": t}) for t in tokens]
    for client in staff:
        await client.ws.send_json({"type": "staff.status", "status": "available"})
    kiosks = [await hello(http, base, {"kind": "kiosk", "credential": c}) for c in credentials]

    async def answer(client: BenchClient) -> None:
        ring = await client.next("ring")
        await client.ws.send_json({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        await client.next("joined")

    answering = [asyncio.create_task(answer(c)) for c in staff]
    for client in kiosks:
        await client.ws.send_json({"type": "ticket.take", "item": "SCJG-001"})
    await asyncio.wait_for(asyncio.gather(*answering), 600)
    return RelayLoad(http, kiosks + staff)


async def bare_calls(base: str, calls: int) -> RelayLoad:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    clients = []
    for n in range(calls):
        for _ in range(2):
            ws = await http.ws_connect(f"{base}/ws?room={n}", heartbeat=None)
            clients.append(BenchClient(ws))
    return RelayLoad(http, clients)


async def relay_figures(load: RelayLoad, seconds: float, rates: list[float]) -> dict[str, float]:
    await load.run(10, 1.0)  # warm up
    steady = await load.run(10, seconds)
    best = await load.max_rate(rates, max(2.0, seconds / 2))
    await load.close()
    return {"p50": steady["p50"], "p99": steady["p99"], "max": best}


# ---------------------------------------------------------------------------- call set-up


async def call_setup(base: str, credentials: list[str], tokens: list[str]) -> list[float]:
    import aioice.ice

    from cloudhelp.media.peer import CallPeer, SignalingClient

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # loopback only
    times: list[float] = []
    async with aiohttp.ClientSession() as http:
        staff = SignalingClient(base, http)
        await staff.connect({"kind": "staff", "token": tokens[0]})
        await staff.send({"type": "staff.status", "status": "available"})
        for credential in credentials:
            kiosk = SignalingClient(base, http)
            await kiosk.connect({"kind": "kiosk", "credential": credential})
            kiosk_peer, staff_peer = CallPeer(kiosk), CallPeer(staff)
            started = time.perf_counter()
            await kiosk.send({"type": "ticket.take", "item": "SCJG-001"})
            ring = await staff.expect("ring", timeout=30)
            await staff.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
            await asyncio.wait_for(kiosk_peer.connected.wait(), 30)
            await asyncio.wait_for(staff_peer.connected.wait(), 30)
            times.append((time.perf_counter() - started) * 1000)
            await kiosk.send({"type": "call.hangup"})
            await staff.expect("wrapup", timeout=10)
            await staff.send({"type": "wrapup.done"})
            await staff.expect_where("presence", lambda f: f["state"] == "available", timeout=10)
            staff.listeners.remove(staff_peer._on_signal)
            await kiosk_peer.close()
            await staff_peer.close()
            await kiosk.close()
            staff.drain("queue")
            staff.drain("presence")
    return times


# ---------------------------------------------------------------------------- main


async def run(quick: bool) -> dict[str, Any]:
    idle_n, calls, setups, seconds = (1000, 50, 10, 2.0) if quick else (5000, 200, 50, 6.0)
    rates = [10, 20, 40, 60] if quick else [10, 20, 30, 40, 50, 60, 70, 80, 100, 120, 140]
    workdir = Path(tempfile.mkdtemp(prefix="cloudhelp-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    credentials, tokens = await seed(url, idle_n + calls + setups, calls)
    results: dict[str, Any] = {"quick": quick}
    env = {
        "CLOUDHELP_RATE_PER_SECOND": "1000",
        "CLOUDHELP_RATE_BURST": "2000",
        "CLOUDHELP_LOG_LEVEL": "WARNING",
    }
    port = free_port()
    with process(
        [sys.executable, "-m", "cloudhelp", "serve", "--db", url, "--port", str(port)], env
    ) as server:
        assert server.stdout is not None
        server.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        results |= await idle_sessions(base, server.pid, credentials[:idle_n])
        gc.collect()
        load = await cloudhelp_calls(base, credentials[idle_n : idle_n + calls], tokens)
        ours = await relay_figures(load, seconds, rates)
        setup = await call_setup(
            base,
            credentials[idle_n + calls :],
            [await _fresh_staff_token(url)],
        )
    bare_port = free_port()
    with process([sys.executable, "-m", "benchmarks.bare_relay", str(bare_port)]):
        await asyncio.sleep(1.0)
        bare = await relay_figures(
            await bare_calls(f"http://127.0.0.1:{bare_port}", calls), seconds, rates
        )
    results |= {
        "relay_calls": calls,
        "relay_p50_ms": round(ours["p50"], 2),
        "relay_p99_ms": round(ours["p99"], 2),
        "baseline_relay_p50_ms": round(bare["p50"], 2),
        "baseline_relay_p99_ms": round(bare["p99"], 2),
        "relay_max_msgs_s": round(ours["max"]),
        "baseline_relay_max_msgs_s": round(bare["max"]),
        "call_setup_calls": len(setup),
        "call_setup_p50_ms": round(statistics.median(setup), 1),
        "call_setup_p95_ms": round(percentile(setup, 0.95), 1),
    }
    return results


async def _fresh_staff_token(url: str) -> str:
    """A signed-in staff member who is not busy in the relay calls."""
    engine = db.create_engine(url)
    async with db.session_factory(engine)() as s, s.begin():
        from sqlalchemy import select

        person = await s.scalar(select(Staff).where(Staff.username == "wangli"))
        assert person is not None
        token = secrets.token_urlsafe(24)
        s.add(
            StaffLogin(
                token_hash=accounts.token_hash(token),
                staff_id=person.id,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    await engine.dispose()
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller N, under a minute")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick)), indent=1))


if __name__ == "__main__":
    main()
