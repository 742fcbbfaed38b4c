"""Signaling benchmark: what the pages send, against a bare relay measured in the same run.

    python -m benchmarks.signaling [--quick]
    BENCH_LOOP_PROBE=probe.jsonl python -m benchmarks.signaling   # where the relay's lag is

Prints one JSON object. The CloudHelp server (the demo's database with its history, plus bench
kiosks and staff) and the bare relay baseline (benchmarks/bare_relay.py) each run in their own
process with the same interpreter settings (``gcpolicy.tune_gc``, full passes by
``gcpolicy.FullPasses``: when no call is in progress, or every 10 minutes); the load comes from
this process, the same way for both.

Every client, idle or in a call, sends an acknowledging ``{"type": "ping", "seq"}`` every 5 s,
as every page does (protocol.js ``ACK_MS``): 1,000 messages a second from 5,000 idle kiosks.

Phases, on CloudHelp:

1. idle: ``idle`` kiosks say hello from a process of their own (benchmarks/idle_clients.py)
   and stay connected, pinging (RSS per idle session); they stay through the mixed load.
   Then the server's next full garbage-collector pass (it runs within a minute, nobody being
   in a call): how long it stalled the loop.
2. burst: ``calls`` staff are available; ``calls`` kiosks send ``ticket.take`` at once; the time
   from the burst to each ring. Each staff member answers 1–3 s after their ring (a person's
   reaction): these are the relay calls.
3. relay: each side sends a chat message (``{"type": "app", "data": {"kind": "chat", …},
   "to": peer}``, as protocol.js does) 10 times a second; latency is measured at the receiver,
   over three windows pooled. Then the highest rate whose p99 stays < 50 ms (the rate rises
   step by step until a step fails in two windows in a row). The bare relay is measured here
   too, with its own idle sockets and calls, both servers up: their windows (and steps) take
   turns, CloudHelp's, the bare relay's, CloudHelp's …, each once both servers are idle
   again, so that what the machine does meanwhile falls on both alike.
4. mixed: the relay at 10 msg/s goes on while 20 staff sign in per second, a supervisor loads
   the report page and the report API, exports Excel and watches the board; the server's own
   event-loop lag (``/api/v1/health``, a 10 ms timer's delay) over that time.
5. call set-up with real aiortc peers, one call at a time.
6. churn: whole calls one after another (hello, take, ring, accept, chat, hang up, wrap up,
   bye); the server's RSS growth per call after a warm-up.

With ``BENCH_LOOP_PROBE`` the CloudHelp server runs under benchmarks/loop_probe.py, which
appends one line to that file before and after each of CloudHelp's relay windows (the warm-up's
included): what held the loop in each (its own overhead raises the figures; compare probe runs
with probe runs).

The bare relay's idle sockets come from a process of their own (RSS per socket), as
CloudHelp's do; this process holds only the clients in calls, of both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from cloudhelp.callcenter.pushes import SNAPSHOT_IDLE_SECONDS
from cloudhelp.core.gcpolicy import tune_gc, young_passes
from cloudhelp.domain import accounts, catalog, passwords
from cloudhelp.store import db
from cloudhelp.store.models import Kiosk, Staff, StaffLogin, StaffSkill, Station, utcnow

TEXT = "您好，请把营业执照正本再靠近一点摄像头。" * 4  # a chat line, ~240 bytes as JSON
ITEM = "SCJG-001"
DEMO_PASSWORD = "cloudhelp-demo"
# The rate limit is raised for the CloudHelp run (the default, 40/s per connection, is below the
# top steps of the maximum-rate search); the bare relay has none.
RATE_LIMIT_ENV = {"CLOUDHELP_RATE_PER_SECOND": "1000", "CLOUDHELP_RATE_BURST": "2000"}
PING_SECONDS = 5.0  # protocol.js acknowledges every 5 s
# A server counts as settled below this share of a core while every client pings.
SETTLED_WITH_PINGS = 0.25
# Sign-ins of the mixed load go round this many accounts: the login throttle counts attempts per
# account and address, and a hall's staff are different people behind one address.
SIGNERS = 60
# Staff answer a ring after a person's reaction time, not the instant it arrives.
ANSWER_SECONDS = (1.0, 3.0)
# A step of the maximum-rate search fails when this many windows in a row have p99 >= 50 ms.
MAX_RATE_TRIES = 2


@dataclass(frozen=True)
class Sizes:
    idle: int
    calls: int
    setups: int
    seconds: float
    rates: tuple[int, ...]
    mixed_seconds: float
    warmup_calls: int
    churn_calls: int
    history_days: int


# The maximum-rate steps (msg/s per side) rise by 5 up to 30: with every idle session pinging
# through each step, the two cores saturate between 20 and 30, and steps of 10 there measured
# one server's maximum as half or two thirds of the other's depending on which side of a step
# the machine fell (docs/speed.md).
QUICK = Sizes(1000, 50, 10, 2.0, (10, 20, 40, 60), 10.0, 50, 200, 14)
FULL = Sizes(
    5000,
    200,
    50,
    6.0,
    (10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 100, 120, 140),
    20.0,
    200,
    1000,
    60,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settled(pid: int, busy: float = 0.05, timeout: float = 120.0) -> None:
    """Wait until the process uses under ``busy`` of a core over half a second: the work a
    phase started (sessions being set up…) is done before the next phase is measured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if cpu_seconds(pid) - before < busy * 0.5:
            return
    raise RuntimeError(f"process {pid} still busy after {timeout} s")


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


@dataclass(frozen=True)
class Seeded:
    kiosks: list[str]  # credentials
    staff: list[str]  # login tokens of staff who handle ITEM
    signers: list[str]  # usernames whose password is DEMO_PASSWORD (one sign-in each at a time)


def load_demo(url: str, days: int) -> None:
    """The demo, as the README's first command loads it, with ``days`` of history."""
    subprocess.run(
        [sys.executable, "-m", "cloudhelp", "demo", "--db", url, "--history", str(days)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def seed(url: str, kiosks: int, staff: int, signers: int = SIGNERS) -> Seeded:
    """``kiosks`` enrolled kiosks, ``staff`` signed-in staff who handle ITEM, and ``signers``
    staff with the demo password (a hall's staff signing in: different people, one address)."""
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    credentials = [secrets.token_urlsafe(24) for _ in range(kiosks)]
    tokens = [secrets.token_urlsafe(24) for _ in range(staff)]
    async with sessions() as s, s.begin():
        station = await s.scalar(select(Station).where(Station.code == "DLW-QG"))
        hall = await s.scalar(select(Station).where(Station.code == "GJZ-HALL"))
        item = await catalog.get_item(s, ITEM)
        if station is None or hall is None or item is None:
            raise RuntimeError("the demo's station DLW-QG, hall GJZ-HALL and item are missing")
        for n, credential in enumerate(credentials):
            s.add(
                Kiosk(
                    code=f"B-{n}",
                    name=f"bench {n}",
                    station_id=station.id,
                    credential_hash=accounts.token_hash(credential),
                )
            )
        expires = utcnow() + timedelta(hours=3)
        for n, token in enumerate(tokens):
            person = Staff(username=f"bench{n}", display_name=f"B{n}", station_id=hall.id)
            person.skills = [StaffSkill(department_id=item.department_id)]
            s.add(person)
            await s.flush()
            s.add(
                StaffLogin(
                    token_hash=accounts.token_hash(token), staff_id=person.id, expires_at=expires
                )
            )
        password_hash = await passwords.hash_password(DEMO_PASSWORD)
        names = [f"signer{n}" for n in range(signers)]
        for name in names:
            s.add(Staff(username=name, display_name=name, station_id=hall.id,
                        password_hash=password_hash))  # fmt: skip
    await engine.dispose()
    return Seeded(credentials, tokens, names)


# ---------------------------------------------------------------------------- clients


class BenchClient:
    """A lean WebSocket client that always reads (so heartbeats are answered), keeps the last
    ``seq`` to acknowledge, and knows its call peer once ``joined``.

    Relayed chat lines carrying a send time count as relay latency; pongs (and the pings the
    bare relay forwards) are dropped; the others go to ``frames``.
    """

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, session_id: str = "", token: str = ""
    ) -> None:
        self.ws = ws
        self.session_id = session_id
        self.token = token  # the session's resume token
        self.closed_at: float | None = None  # perf_counter() when the socket was found closed
        self.gone = asyncio.Event()  # set then
        self.peer = ""
        self.last_seq = 0
        self.sent = 0  # the cseq of the last numbered message, as protocol.js numbers them
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.latencies: list[float] | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            await self._frames()
        self.closed_at = time.perf_counter()
        self.gone.set()

    async def _frames(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            self.last_seq = frame.get("seq", self.last_seq)
            data = frame.get("data")
            if isinstance(data, dict) and "t" in data:
                if self.latencies is not None:
                    self.latencies.append((time.perf_counter() - data["t"]) * 1000)
                continue
            if frame.get("type") in ("pong", "ping"):  # acknowledge()'s, answered or
                continue  # forwarded by the bare relay
            if frame.get("type") == "joined" and frame.get("peers"):
                self.peer = frame["peers"][0]["session"]
            self.frames.put_nowait(frame)

    async def next(self, type_: str, timeout: float = 120) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if frame["type"] == type_:
                    return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(self.text(frame))

    def text(self, frame: dict[str, Any]) -> str:
        """``frame`` as protocol.js writes it: numbered (``cseq``) unless a hello, ping or bye."""
        if frame["type"] not in ("hello", "ping", "bye"):
            self.sent += 1
            frame = frame | {"cseq": self.sent}
        return json.dumps(frame, ensure_ascii=False)

    def chat(self, sent_at: float) -> str:
        """A chat line as kiosk.js/staff.js send it through protocol.js (with ``to``)."""
        frame = {"type": "app", "data": {"kind": "chat", "text": TEXT, "t": sent_at}}
        return self.text(frame | {"to": self.peer})

    async def close(self) -> None:
        """Say bye (the session ends now, not after the grace period) and close."""
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            await self.ws.send_json({"type": "bye"})
        self.reader.cancel()
        await self.ws.close()


async def hello(http: aiohttp.ClientSession, base: str, auth: dict[str, Any]) -> BenchClient:
    ws = await http.ws_connect(f"{base}/ws", heartbeat=None, max_msg_size=0)
    await ws.send_json({"type": "hello", "v": 1, "auth": auth})
    welcome = json.loads((await ws.receive(timeout=60)).data)
    if welcome["type"] != "welcome":
        raise RuntimeError(f"hello refused: {welcome}")
    return BenchClient(ws, welcome["session"], welcome["token"])


async def acknowledge(clients: list[BenchClient]) -> None:
    """Each client sends ``{"type": "ping", "seq"}`` every PING_SECONDS from a random phase, as
    every page does whether idle or in a call (protocol.js ``ACK_MS``); runs until cancelled.
    (The bare relay forwards it to the room's other member, if any.)"""

    async def every(client: BenchClient) -> None:
        await asyncio.sleep(random.uniform(0, PING_SECONDS))
        while not client.ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await client.send({"type": "ping", "seq": client.last_seq})
            await asyncio.sleep(PING_SECONDS)

    await asyncio.gather(*(every(client) for client in clients))


@contextlib.asynccontextmanager
async def acknowledging(clients: list[BenchClient]) -> AsyncIterator[None]:
    """:func:`acknowledge` for ``clients`` while the block runs."""
    task = asyncio.create_task(acknowledge(clients))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def in_batches(coros: list[Any], size: int = 200) -> list[Any]:
    done: list[Any] = []
    for start in range(0, len(coros), size):
        done += await asyncio.gather(*coros[start : start + size])
    return done


class RelayLoad:
    """Pairs of clients in calls exchanging chat lines; latency measured at the receiver."""

    def __init__(self, http: aiohttp.ClientSession, clients: list[BenchClient]) -> None:
        self.http = http
        self.clients = clients

    async def run(self, per_client_rate: float, seconds: float) -> dict[str, Any]:
        """Every client sends ``per_client_rate`` chat lines a second for ``seconds``; p50 and
        p99 of the latencies at the receivers, and the rate received. The load generator's own
        garbage is collected first, so that none of its pauses falls in the window."""
        gc.collect()
        latencies: list[float] = []
        for client in self.clients:
            client.latencies = latencies
        interval = 1.0 / per_client_rate

        async def send(client: BenchClient, offset: float) -> None:
            await asyncio.sleep(offset)
            next_at = time.perf_counter()
            end = next_at + seconds
            while next_at < end:
                await client.ws.send_str(client.chat(time.perf_counter()))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        started = time.perf_counter()
        count = len(self.clients)
        await asyncio.gather(*(send(c, i * interval / count) for i, c in enumerate(self.clients)))
        await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - started - 0.5
        for client in self.clients:
            client.latencies = None
        if not latencies:
            return {"p50": float("nan"), "p99": float("nan"), "msgs_s": 0.0, "latencies": []}
        return {
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "msgs_s": len(latencies) / elapsed,
            "latencies": latencies,
        }

    async def close(self) -> None:
        await in_batches([c.close() for c in self.clients])
        await self.http.close()


RELAY_WINDOWS = 3  # the steady relay is measured over this many windows per server, pooled


async def relay_figures(
    loads: dict[str, RelayLoad],
    sizes: Sizes,
    settle: Callable[[], Awaitable[None]],
    mark: Callable[[str], None] = lambda name: None,
) -> dict[str, dict[str, Any]]:
    """The steady relay (10 msg/s per side) of each server, window by window in turn
    (A, B, A, B …: whatever the machine does meanwhile falls on both alike), over
    RELAY_WINDOWS windows each: p50 and p99 of each server's latencies pooled, and each
    window's p99; then each server's maximum rate, its steps also taken in turn. ``settle``
    waits until every server is idle again (before each window); ``mark`` is called with the
    server's name before its warm-up and each window, and after each (the loop probe's
    SIGUSR1)."""
    windows: dict[str, list[dict[str, Any]]] = {name: [] for name in loads}

    async def window(name: str, rate: float, seconds: float) -> dict[str, Any]:
        await settle()
        mark(name)
        result = await loads[name].run(rate, seconds)
        mark(name)
        return result

    for name in loads:
        await window(name, 10, 1.0)  # warm up
    for _ in range(RELAY_WINDOWS):
        for name in loads:
            windows[name].append(await window(name, 10, sizes.seconds))
    best = await max_rates(loads, window, sizes.rates, max(2.0, sizes.seconds / 2))
    figures = {}
    for name, done in windows.items():
        pooled = [latency for result in done for latency in result["latencies"]]
        figures[name] = {
            "p50": percentile(pooled, 0.50),
            "p99": percentile(pooled, 0.99),
            "p99_windows": [round(result["p99"], 2) for result in done],
            "max": best[name],
        }
    return figures


def relay_keys(prefix: str, figures: dict[str, Any]) -> dict[str, Any]:
    """One server's relay figures (``relay_figures``) as the output's keys."""
    return {
        f"{prefix}relay_p50_ms": round(figures["p50"], 2),
        f"{prefix}relay_p99_ms": round(figures["p99"], 2),
        f"{prefix}relay_p99_windows_ms": figures["p99_windows"],
        f"{prefix}relay_max_msgs_s": round(figures["max"]),
    }


async def max_rates(
    loads: dict[str, RelayLoad],
    window: Callable[[str, float, float], Awaitable[dict[str, Any]]],
    rates: tuple[int, ...],
    seconds: float,
) -> dict[str, float]:
    """Each server's highest received rate among the steps whose p99 stayed under 50 ms,
    rising until a step fails twice in a row: one stall of either server (a garbage-collector
    pass, the machine's other work) fails a single window, and stopping there made the result
    swing by 4x between runs. The same rule for both servers, their steps taken in turn."""
    best = dict.fromkeys(loads, 0.0)
    rising = list(loads)
    for rate in rates:
        for name in list(rising):
            for attempt in range(MAX_RATE_TRIES):
                result = await window(name, rate, seconds)
                if os.environ.get("BENCH_VERBOSE"):
                    figures = {k: round(result[k], 2) for k in ("p50", "p99", "msgs_s")}
                    print(name, rate, attempt, figures, file=sys.stderr)
                if result["p99"] < 50.0:
                    best[name] = max(best[name], result["msgs_s"])
                    break
            else:
                rising.remove(name)
        if not rising:
            break
    return best


async def next_full_pass(http: aiohttp.ClientSession, base: str, timeout: float = 120) -> float:
    """Wait for the server's next full garbage-collector pass; its duration (ms)."""
    deadline = time.perf_counter() + timeout
    first = None
    while time.perf_counter() < deadline:
        async with http.get(f"{base}/api/v1/health") as response:
            passes = (await response.json())["gc_full_passes"]
        if first is None:
            first = passes["count"]
        elif passes["count"] > first:
            return float(passes["last_ms"])
        await asyncio.sleep(1.0)
    raise RuntimeError(f"no full pass within {timeout} s")


@contextlib.asynccontextmanager
async def idle_elsewhere(pid: int, spec: dict[str, Any]) -> AsyncIterator[tuple[int, float]]:
    """Idle clients connected from a process of their own (benchmarks/idle_clients.py, as
    kiosks are machines of their own), pinging every PING_SECONDS while the block runs; they
    say bye when it ends. Yields how many, and the server's RSS growth per connection (KiB)
    once it has set them up."""
    path = Path(tempfile.mkdtemp(prefix="idle-clients-")) / "spec.json"
    path.write_text(json.dumps(spec))
    await settled(pid)
    before = rss_kib(pid)
    command = [sys.executable, "-m", "benchmarks.idle_clients", str(path)]
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        said = (await proc.stdout.readline()).decode().split()
        if said[:1] != ["connected"]:
            raise RuntimeError(f"the idle clients did not connect: {said}")
        count = int(said[1])
        await settled(pid, busy=SETTLED_WITH_PINGS)
        yield count, (rss_kib(pid) - before) / count
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 120)


# ---------------------------------------------------------------------------- CloudHelp phases


async def burst(
    http: aiohttp.ClientSession, base: str, credentials: list[str], tokens: list[str]
) -> tuple[RelayLoad, list[float]]:
    """Every staff member available; every kiosk takes a ticket at once. The times from the
    burst to each ring (ms; a ticket not rung within 60 s is missing); then the calls."""
    staff = await in_batches([hello(http, base, {"kind": "staff", "token": t}) for t in tokens])
    for client in staff:
        await client.send({"type": "staff.status", "status": "available"})
    for client in staff:
        while (await client.next("presence"))["state"] != "available":
            pass
    kiosks = await in_batches(
        [hello(http, base, {"kind": "kiosk", "credential": c}) for c in credentials]
    )
    rings: list[float] = []

    async def answer(client: BenchClient, started: float) -> None:
        ring = await client.next("ring", timeout=60)
        rings.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(random.uniform(*ANSWER_SECONDS))  # a person reaching for the button
        await client.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        await client.next("joined")

    take = {"type": "ticket.take", "item": ITEM}
    started = time.perf_counter()
    answering = [asyncio.create_task(answer(c, started)) for c in staff]
    await asyncio.gather(*(k.send(take) for k in kiosks))
    outcomes = await asyncio.gather(*answering, return_exceptions=True)
    missed = [o for o in outcomes if isinstance(o, BaseException)]
    if missed:
        raise RuntimeError(f"{len(missed)} of {len(staff)} tickets never rang: {missed[0]!r}")
    for kiosk in kiosks:
        await kiosk.next("joined")
    return RelayLoad(http, kiosks + staff), rings


async def mixed_load(
    base: str, load: RelayLoad, seconds: float, signers: list[str]
) -> dict[str, float]:
    """The relay at 10 msg/s per side while staff sign in (20/s), a supervisor loads reports,
    exports Excel and watches the board; the server's event-loop lag over that time."""
    counts = {"reports": 0, "exports": 0}
    jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of an IP address such as 127.0.0.1
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as supervisor,
        aiohttp.ClientSession() as others,
    ):
        async with supervisor.post(
            f"{base}/api/v1/auth/login", json={"username": "sunhua", "password": DEMO_PASSWORD}
        ) as response:
            response.raise_for_status()
        board = await hello(supervisor, base, {"kind": "staff", "purpose": "board"})
        await board.send({"type": "board.watch"})
        end = time.perf_counter() + seconds
        requests: list[asyncio.Task[None]] = []

        async def every(interval: float, work: Any) -> None:
            next_at = time.perf_counter()
            while next_at < end:
                requests.append(asyncio.create_task(work()))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        names = itertools.cycle(signers)

        sign_in_ms: list[float] = []

        async def sign_in() -> None:
            body = {"username": next(names), "password": DEMO_PASSWORD}
            started = time.perf_counter()
            async with others.post(f"{base}/api/v1/auth/login", json=body) as response:
                response.raise_for_status()
            sign_in_ms.append((time.perf_counter() - started) * 1000)

        async def report() -> None:
            for path in ("/reports", "/api/v1/reports?by=day,item"):
                async with supervisor.get(base + path) as response:
                    response.raise_for_status()
                    await response.read()
            counts["reports"] += 1

        async def export() -> None:
            first = (utcnow() - timedelta(days=60)).date().isoformat()
            path = f"/api/v1/reports?from={first}&by=day,station&format=xlsx"
            async with supervisor.get(base + path) as response:
                response.raise_for_status()
                await response.read()
            counts["exports"] += 1

        started = time.perf_counter()
        await asyncio.gather(
            load.run(10, seconds),
            every(1 / 20, sign_in),
            every(1.0, report),
            every(2.0, export),
        )
        await asyncio.gather(*requests)  # the last requests finish; any failure is raised
        window = round(time.perf_counter() - started)
        async with others.get(f"{base}/api/v1/health?window={min(60, window)}") as response:
            lag = (await response.json())["event_loop"]
        await board.close()
    return {
        "loop_lag_p50_ms": lag["lag_p50_ms"],
        "loop_lag_p99_ms": lag["lag_p99_ms"],
        "loop_lag_max_ms": lag["lag_max_ms"],
        "mixed_seconds": seconds,
        "mixed_sign_ins": len(sign_in_ms),
        "mixed_sign_in_p50_ms": round(statistics.median(sign_in_ms)),
        "mixed_sign_in_max_ms": round(max(sign_in_ms)),
        "mixed_report_loads": counts["reports"],
        "mixed_excel_exports": counts["exports"],
    }


async def call_setup(base: str, credentials: list[str], token: str) -> list[float]:
    """Ticket taken → both aiortc peers connected, one call at a time (ms)."""
    import aioice.ice

    from cloudhelp.media.peer import CallPeer, SignalingClient

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # loopback only
    times: list[float] = []
    async with aiohttp.ClientSession() as http:
        staff = SignalingClient(base, http)
        await staff.connect({"kind": "staff", "token": token})
        await staff.send({"type": "staff.status", "status": "available"})
        for credential in credentials:
            kiosk = SignalingClient(base, http)
            await kiosk.connect({"kind": "kiosk", "credential": credential})
            kiosk_peer, staff_peer = CallPeer(kiosk), CallPeer(staff)
            started = time.perf_counter()
            await kiosk.send({"type": "ticket.take", "item": ITEM})
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
        await staff.close()
    return times


async def churn(base: str, pid: int, credential: str, token: str, sizes: Sizes) -> float:
    """Whole calls one after another; the server's RSS growth per call (KiB) after a warm-up
    of ``warmup_calls`` and at least the snapshot gate's memory span."""
    async with aiohttp.ClientSession() as http:
        staff = await hello(http, base, {"kind": "staff", "token": token})
        await staff.send({"type": "staff.status", "status": "available"})

        async def whole_call() -> None:
            kiosk = await hello(http, base, {"kind": "kiosk", "credential": credential})
            await kiosk.send({"type": "ticket.take", "item": ITEM})
            ring = await staff.next("ring", timeout=30)
            await staff.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
            await staff.next("joined")
            await kiosk.next("joined")
            for side in (kiosk, staff, kiosk, staff):
                await side.ws.send_str(side.chat(0.0))
            await kiosk.send({"type": "call.hangup"})
            await staff.next("wrapup", timeout=10)
            await staff.send({"type": "wrapup.done"})
            while (await staff.next("presence"))["state"] != "available":
                pass
            await kiosk.close()
            while not staff.frames.empty():  # what is not awaited here is not kept
                staff.frames.get_nowait()

        # Warm-up: caches fill, and the snapshot gate reaches its steady size (it forgets a
        # key unused for SNAPSHOT_IDLE_SECONDS), so what grows after it is what calls leave.
        warm_until = time.monotonic() + SNAPSHOT_IDLE_SECONDS + 5
        calls = 0
        while calls < sizes.warmup_calls or time.monotonic() < warm_until:
            await whole_call()
            calls += 1
        await asyncio.sleep(2.0)
        before = rss_kib(pid)
        for _ in range(sizes.churn_calls):
            await whole_call()
        await asyncio.sleep(2.0)
        after = rss_kib(pid)
        await staff.close()
    return (after - before) / sizes.churn_calls


async def measure_cloudhelp(url: str, seeded: Seeded, sizes: Sizes) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idle_end = sizes.idle
    burst_end = idle_end + sizes.calls
    setup_end = burst_end + sizes.setups
    env = RATE_LIMIT_ENV | {"CLOUDHELP_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "cloudhelp", "serve", "--db", url, "--port", str(port)]
    probe = os.environ.get("BENCH_LOOP_PROBE")  # a file: the server runs under loop_probe
    if probe:
        command[1:3] = ["-m", "benchmarks.loop_probe", probe]
    with process(command, env) as server:
        assert server.stdout is not None
        server.stdout.readline()
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        kiosks = [{"kind": "kiosk", "credential": c} for c in seeded.kiosks[:idle_end]]
        async with idle_elsewhere(server.pid, {"base": base, "auths": kiosks}) as idle:
            idle_sessions, rss_per_idle = idle
            full_pass_ms = await next_full_pass(http, base)
            load, rings = await burst(
                http, base, seeded.kiosks[idle_end:burst_end], seeded.staff[: sizes.calls]
            )
            if os.environ.get("BENCH_VERBOSE"):
                print("burst", round(max(rings)), file=sys.stderr)

            def mark(name: str) -> None:
                if probe and name == "cloudhelp":
                    os.kill(server.pid, signal.SIGUSR1)

            async with acknowledging(load.clients):
                # The burst's calls are set up before the relay (the pings keep the CPU up).
                await settled(server.pid, busy=SETTLED_WITH_PINGS)
                async with bare_relay(sizes) as bare:

                    async def settle() -> None:
                        for pid in (server.pid, bare.pid):
                            await settled(pid, busy=SETTLED_WITH_PINGS)

                    loads = {"cloudhelp": load, "bare": bare.load}
                    relay = await relay_figures(loads, sizes, settle, mark)
                # The search's last steps overload the server: the mixed load starts once it
                # has caught up, as every phase does.
                await settled(server.pid, busy=SETTLED_WITH_PINGS)
                mixed = await mixed_load(base, load, sizes.mixed_seconds, seeded.signers)
            await load.close()  # (and http)
        await settled(server.pid)  # the 5,000 idle sessions have ended (their byes)
        setup = await call_setup(
            base, seeded.kiosks[burst_end:setup_end], seeded.staff[sizes.calls]
        )
        growth = await churn(
            base, server.pid, seeded.kiosks[setup_end], seeded.staff[sizes.calls + 1], sizes
        )
    return {
        "idle_sessions": idle_sessions,
        "rss_per_idle_session_kib": round(rss_per_idle, 1),
        "gc_full_pass_with_idle_sessions_ms": round(full_pass_ms),
        "burst_tickets": len(rings),
        "burst_ring_p50_ms": round(statistics.median(rings)),
        "burst_ring_p99_ms": round(percentile(rings, 0.99)),
        "burst_ring_max_ms": round(max(rings)),
        "relay_calls": sizes.calls,
        **relay_keys("", relay["cloudhelp"]),
        "baseline_rss_per_idle_socket_kib": round(bare.rss_per_idle, 1),
        **relay_keys("baseline_", relay["bare"]),
        **mixed,
        "call_setup_calls": len(setup),
        "call_setup_p50_ms": round(statistics.median(setup), 1),
        "call_setup_p95_ms": round(percentile(setup, 0.95), 1),
        "churn_calls": sizes.churn_calls,
        "rss_growth_per_call_kib": round(growth, 2),
    }


@dataclass
class Bare:
    pid: int
    rss_per_idle: float  # KiB per idle socket
    load: RelayLoad  # its calls: pairs of clients in a room


@contextlib.asynccontextmanager
async def bare_relay(sizes: Sizes) -> AsyncIterator[Bare]:
    """The bare relay with ``sizes.idle`` idle sockets from a process of their own (RSS per
    socket) and ``sizes.calls`` rooms of two clients of this process, pinging as pages do."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process([sys.executable, "-m", "benchmarks.bare_relay", str(port)]) as relay_process:
        assert relay_process.stdout is not None
        relay_process.stdout.readline()
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        spec = {"base": base, "sockets": sizes.idle}
        async with idle_elsewhere(relay_process.pid, spec) as (_count, rss_per_idle):
            clients = []
            for n in range(sizes.calls):
                pair = [
                    BenchClient(await http.ws_connect(f"{base}/ws?room={n}", heartbeat=None))
                    for _ in range(2)
                ]
                pair[0].peer, pair[1].peer = "b", "a"  # as protocol.js sends it; ignored here
                clients += pair
            async with acknowledging(clients):
                yield Bare(relay_process.pid, rss_per_idle, RelayLoad(http, clients))
            for client in clients:
                client.reader.cancel()
                await client.ws.close()
            await http.close()


async def run(sizes: Sizes) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="cloudhelp-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    load_demo(url, sizes.history_days)
    seeded = await seed(url, sizes.idle + sizes.calls + sizes.setups + 1, sizes.calls + 2)
    # The load generator holds as many sockets as the servers, under the same GC policy.
    tune_gc()
    young = young_passes()
    results: dict[str, Any] = {
        "quick": sizes is QUICK,
        "traffic": "pages",
        "cloudhelp_rate_limit_per_s": float(RATE_LIMIT_ENV["CLOUDHELP_RATE_PER_SECOND"]),
        "baseline_rate_limit_per_s": None,
        "gc": "both servers and the load generator: gcpolicy.tune_gc (gc.freeze, thresholds "
        "7000/50/no automatic full pass), gcpolicy.YoungPasses (a young pass every 0.1 s, a "
        "middle one every 0.2 s); the servers: gcpolicy.FullPasses (a full pass when no call is "
        "in progress, >= 60 s apart, or after 600 s whatever the load); the generator collects "
        "fully before each relay window",
        "pings": f"every client, idle or in a call, every {PING_SECONDS:g} s",
    }
    results |= await measure_cloudhelp(url, seeded, sizes)
    if young is not None:
        await young.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller N, a few minutes")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(QUICK if args.quick else FULL)), indent=1))


if __name__ == "__main__":
    main()
