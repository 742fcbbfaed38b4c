"""Scale-out benchmark: three ``cloudhelp serve`` nodes on one PostgreSQL and one Redis.

    python -m benchmarks.scaleout [--quick]

Prints one JSON object. PostgreSQL and Redis are throwaway servers of this run on loopback
(tests/pgcluster.py and tests/rediskit.py: Debian's initdb, pg_ctl and redis-server, no
persistence), the database is the demo's (``cloudhelp demo``) plus bench kiosks and staff
(benchmarks/signaling.seed). Nodes A, B and C are ``cloudhelp serve`` processes with the same
settings but their node id and port. The relay's clients talk to each node's own port (nginx in
front would add the same hop to both relays); whatever is on node C is reached through nginx
(deploy/nginx/cloudhelp.conf as tests/nginxkit.py runs it, over TLS), C its server and A its
backup, so the failover is nginx's own: after the kill the clients connect through nginx again
and it sends them to A. The load comes from this process, as in benchmarks/signaling.py (the
same client, chat line and interpreter settings).

Phases:

1. relay: ``pairs`` calls with the kiosk and the staff member on node A (same node), and
   ``pairs`` with the kiosk on A and the staff member on B (across nodes: each message goes
   on the link between the nodes, docs/scaling.md "Links between nodes"; through Redis with
   ``CLOUDHELP_NODE_LINKS=false`` in the environment). ``cross_node_frames_on_links``: how many
   relayed messages went on links during the phase, from A's and B's /metrics. Calls are set
   up one at a time (one staff member available, one kiosk takes a ticket, the ring is
   accepted). Each side of every call sends a
   chat line (``app`` with ``to``, as protocol.js) 10 times a second, both groups at once;
   latency at the receiver over RELAY_WINDOWS windows pooled, p99 per group.
2. failover: on node C, ``timers`` staff members are rung for tickets of kiosks on A (not
   answering), ``timers`` more have just hung up a call with a kiosk on A (in wrap-up), and
   ``waiting`` kiosks take a ticket (every other staff member is in a call, so they wait). The
   item's department rings for RING_SECONDS and wraps up for WRAPUP_SECONDS; ``calls`` kiosks
   on C (through nginx) are in calls with staff members on A. C is SIGKILLed.
   Each waiting kiosk does what protocol.js does when its socket closes: resume through nginx
   (on node A now), which finds the holder dead (Redis dropped its alive channel) and answers
   ``no_such_session`` at once; then ``hello`` again, and the queue gives it its ticket back.
   ``failover_resume_*``: from the socket found closed to the ticket back, on A. Each kiosk in
   a call resumes through nginx on A too, where its session is re-created from its card:
   ``failover_call_resume_*`` from the socket found closed to ``welcome`` with ``resumed``;
   then both sides chat for a window, and a call not resumed or where a side hears nothing
   counts in ``failover_calls_failed``.
   Then the run waits ORPHANS_SECONDS:
   C's rings time out and its wrap-ups close on A or B, and C's consoles are ended there
   (docs/scaling.md, "A dead node's sessions").
3. drain: node B gets SIGTERM while its staff are in the cross-node calls. Each socket closes
   with 1001 and resumes on A (B hands the session over, docs/scaling.md): from the socket
   found closed to ``welcome`` with ``resumed``. Then one more relay window on those calls:
   a call with no chat line arriving either way counts in ``failed_calls``.
4. the ledger, from the database: ``tickets_lost`` (a waiting kiosk whose ticket after the
   failover is not the one it took, or a waiting or rung ticket no longer waiting),
   ``duplicate_offers`` (a ticket offered while an offer of it was open), ``timers_fired_twice``
   (a ring timed out with no offer open, a wrap-up closed or a ticket abandoned twice),
   ``wrapups_not_closed`` and ``dead_consoles_online`` (C's staff not offline).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from benchmarks.signaling import (
    ITEM,
    RATE_LIMIT_ENV,
    RELAY_WINDOWS,
    BenchClient,
    RelayLoad,
    acknowledging,
    free_port,
    hello,
    load_demo,
    percentile,
    seed,
)
from cloudhelp.core.gcpolicy import tune_gc, young_passes
from cloudhelp.domain import catalog
from cloudhelp.store import db
from cloudhelp.store.models import Department, Staff, StaffPresence, Ticket, TicketEvent
from tests.nginxkit import https_client, nginx_in_front
from tests.pgcluster import private_cluster
from tests.rediskit import private_redis
from tests.tlskit import TestCA

NODES = ("a", "b", "c")
RING_SECONDS = 10  # the item's department's, for this run
WRAPUP_SECONDS = 10
# After the kill: the dead node's registrations expire (topic_ttl, 15 s), then two orphan
# checks 5 s apart end its consoles.
ORPHANS_SECONDS = 32.0


@dataclass(frozen=True)
class Sizes:
    pairs: int  # calls in each relay group
    waiting: int  # kiosks waiting on the node that is killed
    timers: int  # rings, and wrap-ups, pending on the node that is killed
    calls: int  # calls in progress whose kiosk is on the node that is killed
    seconds: float  # one relay window
    history_days: int


QUICK = Sizes(pairs=10, waiting=10, timers=3, calls=3, seconds=3.0, history_days=2)
FULL = Sizes(pairs=50, waiting=50, timers=10, calls=10, seconds=6.0, history_days=14)


@dataclass
class Node:
    name: str
    process: subprocess.Popen[str]
    base: str
    port: int


@contextlib.contextmanager
def serving(name: str, url: str, redis_url: str, folder: Path) -> Iterator[Node]:
    """``cloudhelp serve`` as node ``name``; stopped (SIGTERM, then SIGKILL) at the end."""
    port = free_port()
    env = {
        **os.environ,
        **RATE_LIMIT_ENV,
        "CLOUDHELP_REDIS_URL": redis_url,
        "CLOUDHELP_NODE_ID": f"bench-{name}",
        "CLOUDHELP_SECRET_KEY": "the-same-on-every-node-0123456789",
        "CLOUDHELP_DATA_DIR": str(folder / "data"),
        "CLOUDHELP_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "cloudhelp", "serve", "--db", url, "--port", str(port)]
    log = (folder / f"node-{name}.log").open("w")
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith("CloudHelp is running"):
            raise RuntimeError(f"node {name} did not start: {first!r}, see {log.name}")
        yield Node(name, process, f"http://127.0.0.1:{port}", port)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()


@dataclass
class District:
    url: str  # the database's
    nodes: dict[str, Node]
    seeded: Any  # what benchmarks.signaling.seed made
    front: str  # nginx's base URL: node C, with node A as its backup
    proxied: aiohttp.ClientSession  # a client trusting nginx's certificate


@contextlib.asynccontextmanager
async def district(sizes: Sizes) -> AsyncIterator[District]:
    """PostgreSQL and Redis of this run, the demo database with bench accounts, three nodes,
    and nginx (deploy/nginx/cloudhelp.conf, tests/nginxkit.py) in front of node C with node A
    as its backup: where the clients of the failover connect, and come back after C dies."""
    folder = Path(tempfile.mkdtemp(prefix="cloudhelp-scaleout-"))
    with private_cluster() as cluster, private_redis() as redis:
        url = cluster.url
        await asyncio.to_thread(load_demo, url, sizes.history_days)
        staff = 2 * sizes.pairs + 2 * sizes.timers + sizes.calls
        seeded = await seed(url, staff + sizes.waiting, staff, signers=0)
        await short_timers(url)
        ca = TestCA.create(folder / "pki")
        with contextlib.ExitStack() as stack:
            nodes = {n: stack.enter_context(serving(n, url, redis.url, folder)) for n in NODES}
            c, a = nodes["c"].port, nodes["a"].port
            async with (
                nginx_in_front(c, folder / "nginx", ca, backup_ports=[a]) as nginx,
                https_client(ca) as proxied,
            ):
                yield District(url, nodes, seeded, nginx.base_url, proxied)


async def short_timers(url: str) -> None:
    """The item's department rings for RING_SECONDS and wraps up for WRAPUP_SECONDS."""
    engine = db.create_engine(url)
    try:
        async with db.session_factory(engine)() as s, s.begin():
            item = await catalog.get_item(s, ITEM)
            assert item is not None
            await s.execute(
                update(Department)
                .where(Department.id == item.department_id)
                .values(ring_seconds=RING_SECONDS, wrapup_seconds=WRAPUP_SECONDS)
            )
    finally:
        await engine.dispose()


async def ringing(
    http: aiohttp.ClientSession, kiosk_base: str, staff_base: str, credential: str, token: str
) -> tuple[BenchClient, BenchClient, int]:
    """A kiosk's ticket ringing a staff member, the only one available, who has not answered
    yet: (kiosk, staff, ticket)."""
    staff = await hello(http, staff_base, {"kind": "staff", "token": token})
    await staff.send({"type": "staff.status", "status": "available"})
    while (await staff.next("presence"))["state"] != "available":
        pass
    kiosk = await hello(http, kiosk_base, {"kind": "kiosk", "credential": credential})
    await kiosk.send({"type": "ticket.take", "item": ITEM})
    ring = await staff.next("ring", timeout=30)
    return kiosk, staff, int(ring["ticket"]["id"])


async def wrapping_up(
    http: aiohttp.ClientSession, kiosk_base: str, staff_base: str, credential: str, token: str
) -> tuple[BenchClient, BenchClient, int]:
    """A call the staff member just hung up: in wrap-up. (kiosk, staff, ticket)."""
    kiosk, staff = await one_call(http, kiosk_base, staff_base, credential, token)
    await staff.send({"type": "call.hangup"})
    return kiosk, staff, int((await staff.next("wrapup"))["ticket"])


async def one_call(
    http: aiohttp.ClientSession, kiosk_base: str, staff_base: str, credential: str, token: str
) -> tuple[BenchClient, BenchClient]:
    """A call between a kiosk on one node and a staff member on another (or the same): the
    staff member is the only one available when the kiosk takes its ticket."""
    kiosk, staff, ticket = await ringing(http, kiosk_base, staff_base, credential, token)
    await staff.send({"type": "ring.accept", "ticket": ticket})
    await staff.next("joined")
    await kiosk.next("joined")
    return kiosk, staff


async def relay(groups: dict[str, RelayLoad], seconds: float) -> dict[str, list[float]]:
    """RELAY_WINDOWS windows of every group at 10 msg/s per side, at once: each group's
    latencies pooled."""
    pooled: dict[str, list[float]] = {name: [] for name in groups}
    for _ in range(RELAY_WINDOWS):
        results = await asyncio.gather(*(load.run(10, seconds) for load in groups.values()))
        for name, result in zip(groups, results, strict=True):
            pooled[name] += result["latencies"]
    return pooled


async def come_back(
    http: aiohttp.ClientSession, base: str, client: BenchClient, auth: dict[str, Any]
) -> tuple[BenchClient, dict[str, Any]]:
    """What protocol.js does once its socket closed: resume the session at ``base``; refused
    (``no_such_session``), say hello again. The new client and its ``welcome``."""
    ws = await http.ws_connect(f"{base}/ws", heartbeat=None, max_msg_size=0)
    resume = {"session": client.session_id, "token": client.token, "last_seq": client.last_seq}
    await ws.send_json({"type": "hello", "v": 1, "resume": resume})
    answer = json.loads((await ws.receive(timeout=30)).data)
    if answer["type"] == "error" and answer.get("code") == "no_such_session":
        await ws.send_json({"type": "hello", "v": 1, "auth": auth})
        answer = json.loads((await ws.receive(timeout=30)).data)
    if answer["type"] != "welcome":
        raise RuntimeError(f"could not come back: {answer}")
    back = BenchClient(ws, answer["session"], answer["token"])
    back.peer, back.last_seq = client.peer, client.last_seq if answer.get("resumed") else 0
    back.sent = client.sent if answer.get("resumed") else 0
    return back, answer


async def closed(client: BenchClient, timeout: float = 30) -> float:
    """When the client found its socket closed (perf_counter)."""
    await asyncio.wait_for(client.gone.wait(), timeout)
    assert client.closed_at is not None
    return client.closed_at


async def failover(
    http: aiohttp.ClientSession,
    front: str,
    nodes: dict[str, Node],
    credentials: list[str],
    calls: list[tuple[BenchClient, str]],
) -> tuple[list[float], dict[str, int], dict[str, int], list[BenchClient], list[float],
           list[BenchClient | None]]:  # fmt: skip
    """Kiosks waiting on node C, and kiosks in calls with staff on A, all through nginx
    (``front``); C SIGKILLed; each comes back through nginx, which sends it to A. The times
    (ms) from the socket found closed to the ticket back, each waiting kiosk's ticket before
    and after (credential → ticket id), the waiting kiosks on A (still waiting: closing them
    says ``bye``); for the kiosks in calls, the times from the socket found closed to
    ``welcome`` with ``resumed`` (the session re-created from its card), and the resumed
    kiosks in the calls' order (None for one that was not resumed)."""
    victim = nodes["c"]
    kiosks = [await hello(http, front, {"kind": "kiosk", "credential": c}) for c in credentials]
    took: dict[str, int] = {}
    for kiosk, credential in zip(kiosks, credentials, strict=True):
        await kiosk.send({"type": "ticket.take", "item": ITEM})
        took[credential] = (await kiosk.next("ticket"))["ticket"]["id"]
    victim.process.kill()
    times: list[float] = []
    again: dict[str, int] = {}

    async def back(kiosk: BenchClient, credential: str) -> BenchClient:
        lost_at = await closed(kiosk)
        auth = {"kind": "kiosk", "credential": credential}
        client, _welcome = await come_back(http, front, kiosk, auth)
        again[credential] = (await client.next("ticket", timeout=30))["ticket"]["id"]
        times.append((time.perf_counter() - lost_at) * 1000)
        return client

    call_times: list[float | None] = []

    async def resume_call(kiosk: BenchClient, credential: str) -> BenchClient | None:
        lost_at = await closed(kiosk)
        auth = {"kind": "kiosk", "credential": credential}
        client, welcome = await come_back(http, front, kiosk, auth)
        resumed = bool(welcome.get("resumed"))
        call_times.append((time.perf_counter() - lost_at) * 1000 if resumed else None)
        return client if resumed else None

    pairs = zip(kiosks, credentials, strict=True)
    back_on_a, in_calls = await asyncio.gather(
        asyncio.gather(*(back(k, c) for k, c in pairs)),
        asyncio.gather(*(resume_call(k, c) for k, c in calls)),
    )
    return times, took, again, list(back_on_a), [t for t in call_times if t], list(in_calls)


async def drain(
    http: aiohttp.ClientSession, nodes: dict[str, Node], staff: list[BenchClient]
) -> tuple[list[float], list[BenchClient], list[int]]:
    """Node B (holding ``staff``) gets SIGTERM; each comes back on A. The times (ms) from the
    socket found closed to ``welcome`` resumed, the clients on A (in order), the close codes."""
    nodes["b"].process.send_signal(signal.SIGTERM)
    times: list[float] = []
    codes: list[int] = []

    async def back(client: BenchClient) -> BenchClient:
        lost_at = await closed(client)
        codes.append(client.ws.close_code or 0)
        new, welcome = await come_back(http, nodes["a"].base, client, {})
        if not welcome.get("resumed"):
            raise RuntimeError(f"a drained session was not resumed: {welcome}")
        times.append((time.perf_counter() - lost_at) * 1000)
        return new

    return times, list(await asyncio.gather(*(back(c) for c in staff))), codes


async def send_for(client: BenchClient, seconds: float) -> None:
    """A chat line to the peer 10 times a second for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        with contextlib.suppress(aiohttp.ClientError, ConnectionError):
            await client.ws.send_str(client.chat(time.perf_counter()))
        await asyncio.sleep(0.1)


async def silent_calls(kiosks: list[BenchClient], staff: list[BenchClient], seconds: float) -> int:
    """Both sides of these calls (kiosk n with staff member n) chat for ``seconds``: the number
    of calls in which a side heard nothing."""
    clients = kiosks + staff
    for client in clients:
        client.latencies = []  # one list each: what each one heard
    await asyncio.gather(*(send_for(c, seconds) for c in clients))
    await asyncio.sleep(0.5)
    heard = {id(c): len(c.latencies or []) for c in clients}
    for client in clients:
        client.latencies = None
    pairs = zip(kiosks, staff, strict=True)
    return sum(1 for k, s in pairs if not heard[id(k)] or not heard[id(s)])


async def ledger(
    url: str, waiting: set[int], rung: set[int], wrapped: set[int], dead_staff: list[str]
) -> dict[str, int]:
    """From the database: tickets that should wait and do not, wrap-ups not closed, duplicate
    offers, timers fired twice (see the module's docstring), dead consoles still online."""
    engine = db.create_engine(url)
    try:
        async with db.session_factory(engine)() as s:
            ordered = select(TicketEvent.ticket_id, TicketEvent.kind).order_by(TicketEvent.id)
            events = (await s.execute(ordered)).all()
            mine = select(Ticket.id, Ticket.status).where(Ticket.id.in_(waiting | rung | wrapped))
            statuses = {ticket_id: status for ticket_id, status in (await s.execute(mine))}
            online = (
                select(func.count())
                .select_from(StaffPresence)
                .join(Staff, Staff.id == StaffPresence.staff_id)
                .where(Staff.username.in_(dead_staff), StaffPresence.state != "offline")
            )
            dead_online = int(await s.scalar(online) or 0)
    finally:
        await engine.dispose()
    offer_open: dict[int, bool] = {}
    ended: dict[tuple[int, str], int] = {}
    duplicates = twice = 0
    for ticket_id, kind in events:
        if kind == "offered":
            duplicates += offer_open.get(ticket_id, False)
            offer_open[ticket_id] = True
            continue
        if kind == "offer_timeout" and not offer_open.get(ticket_id, False):
            twice += 1
        if kind in ("wrapup_done", "abandoned"):
            twice += ended.get((ticket_id, kind), 0) > 0
            ended[(ticket_id, kind)] = ended.get((ticket_id, kind), 0) + 1
        if kind.startswith("offer_") or kind in ("connected", "picked", "abandoned", "closed"):
            offer_open[ticket_id] = False
    fired = [(t, kind) for t, kind in events if (t in rung and kind == "offer_timeout")
             or (t in wrapped and kind == "wrapup_done")]  # fmt: skip
    return {
        "rings_timed_out": sum(1 for _t, kind in fired if kind == "offer_timeout"),
        "wrapups_closed": sum(1 for _t, kind in fired if kind == "wrapup_done"),
        "not_waiting": sum(1 for t in waiting | rung if statuses.get(t) != "waiting"),
        "wrapups_not_closed": sum(1 for t in wrapped if statuses.get(t) != "completed"),
        "duplicate_offers": duplicates,
        "timers_fired_twice": twice,
        "dead_consoles_online": dead_online,
    }


async def link_frames(http: aiohttp.ClientSession, base: str) -> int:
    """The node's ``cloudhelp_node_link_frames_total`` (0 with links off)."""
    async with http.get(f"{base}/metrics") as response:
        response.raise_for_status()
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cloudhelp_node_link_frames_total":
                return int(sample.value)
    return 0


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 2), "p99": round(percentile(values, 0.99), 2)}


async def run(sizes: Sizes) -> dict[str, Any]:
    tune_gc()  # the load generator under the servers' GC policy, as in benchmarks.signaling
    young = young_passes()
    async with district(sizes) as place:
        url, nodes, seeded, front, proxied = (
            place.url,
            place.nodes,
            place.seeded,
            place.front,
            place.proxied,
        )
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        a, b = nodes["a"].base, nodes["b"].base
        kiosks, tokens = seeded.kiosks, seeded.staff
        same = [await one_call(http, a, a, kiosks[n], tokens[n]) for n in range(sizes.pairs)]
        cross = [
            await one_call(http, a, b, kiosks[n], tokens[n])
            for n in range(sizes.pairs, 2 * sizes.pairs)
        ]
        same_clients = [c for pair in same for c in pair]
        cross_kiosks, cross_staff = [k for k, _s in cross], [s for _k, s in cross]
        async with acknowledging(same_clients + cross_kiosks + cross_staff):
            groups = {
                "same": RelayLoad(http, same_clients),
                "cross": RelayLoad(http, cross_kiosks + cross_staff),
            }
            await asyncio.gather(*(load.run(10, 1.0) for load in groups.values()))  # warm up
            on_links = -sum([await link_frames(http, base) for base in (a, b)])
            pooled = await relay(groups, sizes.seconds)
            on_links += sum([await link_frames(http, base) for base in (a, b)])
            # Pending on node C when it dies: wrap-ups, then rings (each staff member busy).
            # Whatever is on C is reached through nginx (proxied: C, then A as its backup).
            first, c = 2 * sizes.pairs, front
            on_c = range(first, first + 2 * sizes.timers)
            wraps = [
                await wrapping_up(proxied, a, c, kiosks[n], tokens[n]) for n in on_c[: sizes.timers]
            ]
            rings = [
                await ringing(proxied, a, c, kiosks[n], tokens[n]) for n in on_c[sizes.timers :]
            ]
            in_call = range(on_c.stop, on_c.stop + sizes.calls)  # kiosk on C, staff on A
            calls = [await one_call(proxied, c, a, kiosks[n], tokens[n]) for n in in_call]
            waiting = kiosks[in_call.stop : in_call.stop + sizes.waiting]
            call_kiosks = [(k, kiosks[n]) for (k, _s), n in zip(calls, in_call, strict=True)]
            failover_ms, took, again, back_on_a, calls_ms, resumed = await failover(
                proxied, front, nodes, waiting, call_kiosks
            )
            # The calls whose kiosk was on C go on: both sides heard by the other, as in drain.
            going_on = [(k, s) for k, (_k, s) in zip(resumed, calls, strict=True) if k]
            call_staff = [staff for _k, staff in calls]
            calls_failed = await silent_calls(
                [k for k, _s in going_on], [s for _k, s in going_on], sizes.seconds
            )
            await asyncio.sleep(ORPHANS_SECONDS)  # C's timers fire elsewhere, its consoles end
            drain_ms, moved, codes = await drain(http, nodes, cross_staff)
            failed = await silent_calls(cross_kiosks, moved, sizes.seconds)
        book = await ledger(
            url,
            set(took.values()),
            {ticket for _k, _s, ticket in rings},
            {ticket for _k, _s, ticket in wraps},
            [f"bench{n}" for n in on_c],
        )
        kiosks_on_a = [kiosk for kiosk, _s, _t in wraps + rings]
        closing = same_clients + cross_kiosks + moved + back_on_a + kiosks_on_a
        for client in closing + [k for k, _s in going_on] + call_staff:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await client.close()
        await http.close()
    if young is not None:
        await young.stop()
    changed = sum(1 for credential, ticket in took.items() if again.get(credential) != ticket)
    return {
        "quick": sizes is QUICK,
        "nodes": len(NODES),
        "calls_per_relay_group": sizes.pairs,
        "same_node_relay_p50_ms": summary(pooled["same"])["p50"],
        "same_node_relay_p99_ms": summary(pooled["same"])["p99"],
        "cross_node_relay_p50_ms": summary(pooled["cross"])["p50"],
        "cross_node_relay_p99_ms": summary(pooled["cross"])["p99"],
        "cross_node_frames_on_links": on_links,
        "failover_kiosks": len(took),
        "failover_resume_p50_ms": summary(failover_ms)["p50"],
        "failover_resume_p99_ms": summary(failover_ms)["p99"],
        "failover_calls": len(calls_ms),
        "failover_call_resume_p50_ms": summary(calls_ms)["p50"],
        "failover_call_resume_p99_ms": summary(calls_ms)["p99"],
        "failover_calls_failed": calls_failed + sizes.calls - len(going_on),
        "drain_sessions": len(drain_ms),
        "drain_close_codes": sorted(set(codes)),
        "drain_resume_p50_ms": summary(drain_ms)["p50"],
        "drain_resume_p99_ms": summary(drain_ms)["p99"],
        "failed_calls": failed,
        "rings_and_wrapups_on_the_dead_node": 2 * sizes.timers,
        "rings_timed_out": book["rings_timed_out"],  # each ring's offers, on any node
        "wrapups_closed": book["wrapups_closed"],
        "tickets_lost": changed + book["not_waiting"],
        "wrapups_not_closed": book["wrapups_not_closed"],
        "dead_consoles_online": book["dead_consoles_online"],
        "duplicate_offers": book["duplicate_offers"],
        "timers_fired_twice": book["timers_fired_twice"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (a few minutes)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(QUICK if args.quick else FULL)), indent=1))


if __name__ == "__main__":
    main()
