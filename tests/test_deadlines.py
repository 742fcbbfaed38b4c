"""Deadlines kept in the database (cloudhelp.domain.deadlines, callcenter/expiries.py): a ring's
time-out, a wrap-up's end and an abandon after grace fire once, whichever server process sees
them due, and survive the process that set them (docs/scaling.md, "Timers").

Two-node tests use one PostgreSQL database and the shared redis-server (tests/rediskit.py);
node A is a real ``cloudhelp serve`` child process where it must die (SIGKILL), node B a
server in this process. No mocks.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from sqlalchemy import select, update

from cloudhelp.domain import deadlines
from cloudhelp.media.peer import SignalingClient
from cloudhelp.store.models import Staff, StaffPresence, Ticket, TicketEvent, utcnow
from tests.callkit import CallServer, running_server, until
from tests.helpers import serve_and_read_url, start_cli
from tests.rediskit import shared_redis_url
from tests.test_call_core import set_department, take_ticket, ticket_row
from tests.test_correction_session import LAST4, also_handles_fishing, case_needing_correction
from tests.test_redis_broker import node, pg_demo_url, two_nodes  # noqa: F401  (a fixture)


async def events(server: CallServer, ticket_id: int) -> list[TicketEvent]:
    async with server.state.db.read() as s:
        stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
        return list((await s.scalars(stmt.order_by(TicketEvent.id))).all())


async def count(server: CallServer, ticket_id: int, kind: str) -> int:
    return [e.kind for e in await events(server, ticket_id)].count(kind)


async def presence_of(server: CallServer, username: str) -> StaffPresence:
    async with server.state.db.read() as s:
        staff_id = await s.scalar(select(Staff.id).where(Staff.username == username))
        row = await s.get(StaffPresence, staff_id)
        assert row is not None
        return row


@asynccontextmanager
async def serve_node(
    tmp_path: Path, database_url: str, node_id: str, **env: str
) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    """``cloudhelp serve`` as a child process (node A): yields (process, base URL) once it
    serves; the process is SIGKILLed on exit if it still runs."""
    settings = {
        "CLOUDHELP_DATABASE_URL": database_url,
        "CLOUDHELP_REDIS_URL": shared_redis_url(),
        "CLOUDHELP_NODE_ID": node_id,
        "CLOUDHELP_DATA_DIR": str(tmp_path),
        "CLOUDHELP_WARNING_CHECK_SECONDS": "0",
        **env,
    }
    process = start_cli("serve", "--host", "127.0.0.1", "--port", "0", env=settings)
    try:
        # Read in a thread: node B, in this event loop, keeps serving meanwhile.
        yield process, (await asyncio.to_thread(serve_and_read_url, process)).rstrip("/")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def sigkill(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """Kill the node at once (nothing runs after: no shutdown, no cleanup); its log lines."""
    process.kill()
    process.wait(timeout=10)
    assert process.stderr is not None
    lines = process.stderr.read().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]


@asynccontextmanager
async def clients_of(base_url: str) -> AsyncIterator[Any]:
    """A factory of signaling clients connected to another node than B."""
    async with ClientSession() as http:
        made: list[SignalingClient] = []

        async def connect(credential: str) -> SignalingClient:
            client = SignalingClient(base_url, http)
            await client.connect({"kind": "kiosk", "credential": credential})
            made.append(client)
            return client

        try:
            yield connect
        finally:
            for client in made:
                await client.drop()


async def test_a_dead_nodes_ring_wrapup_and_abandon_fire_once_on_another_node(
    tmp_path: Path,
    pg_demo_url: str,  # noqa: F811
) -> None:
    url = shared_redis_url()
    async with running_server(pg_demo_url, redis_url=url, node_id=node("b")) as b:
        # Long enough that neither fires on node A before the kill on a loaded machine (a CI
        # run beside other tests found the 4-s ring timed out already).
        await set_department(b, "NYNC", ring_seconds=10)
        await set_department(b, "SCJG", wrapup_seconds=12)
        zhaogang = await b.staff("zhaogang")  # NYNC-001
        wangli = await b.staff("wangli")  # SCJG-002
        credentials = [
            await b.kiosk_credential(code, station)
            for code, station in (("QG-01", "DLW-QG"), ("TL-01", "DLW-TL"), ("WJ-01", "GJZ-WJ"))
        ]
        # Node B's sweep is held while node A works, so that every offer below is node A's.
        await b.state.callcenter._tasks.stop_loops()

        node_a = node("a")
        async with serve_node(tmp_path, pg_demo_url, node_a) as (process, a_url):
            async with clients_of(a_url) as kiosk_on_a:
                # A call on node A's kiosk with wangli on B ends on node A: wrap-up armed on A.
                talking = await kiosk_on_a(credentials[0])
                called = await take_ticket(talking, "SCJG-002")
                ring = await wangli.expect("ring")
                await wangli.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
                await talking.expect("joined")
                await talking.send({"type": "call.hangup"})
                await wangli.expect("wrapup")
                # A ticket on node A rings zhaogang on B: the ring armed on A.
                ringing = await kiosk_on_a(credentials[1])
                rung = await take_ticket(ringing, "NYNC-001")
                assert (await zhaogang.expect("ring"))["ticket"]["id"] == rung["id"]
                # A ticket that waits (nobody on duty for 卫健), for the second act.
                waiting = await take_ticket(await kiosk_on_a(credentials[2]), "WJJ-001")
                log = sigkill(process)
                killed_at = utcnow()
        offered_by_a = {e["ticket"] for e in log if e.get("event") == "ticket.offered"}
        assert offered_by_a == {called["id"], rung["id"]}, "both rings were node A's"
        ring_row, wrapup_row = await ticket_row(b, rung["id"]), await presence_of(b, "wangli")
        assert ring_row.ring_deadline is not None and killed_at < ring_row.ring_deadline
        assert wrapup_row.wrapup_deadline is not None and killed_at < wrapup_row.wrapup_deadline

        # Node B's sweep fires both, once: the ring times out and zhaogang is rung again.
        b.state.callcenter.expiries.start()
        cancelled = await zhaogang.expect("ring.cancelled", timeout=25)
        assert cancelled["ticket"] == rung["id"] and cancelled["reason"] == "timeout"
        again = await zhaogang.expect("ring")
        assert again["ticket"]["id"] == rung["id"]
        await zhaogang.send({"type": "ring.accept", "ticket": rung["id"]})
        await zhaogang.expect_where("presence", lambda f: f["state"] == "in_call")
        # … and wangli's wrap-up closes by itself: available again.
        await wangli.expect_where("presence", lambda f: f["state"] == "available", timeout=25)
        kinds = [e.kind for e in await events(b, rung["id"])]
        assert kinds.count("offered") == 2 and kinds.count("offer_timeout") == 1
        assert kinds.count("connected") == 1
        finished = [e for e in await events(b, called["id"]) if e.kind == "wrapup_done"]
        assert [e.detail["reason"] for e in finished] == ["timeout"]
        assert (await ticket_row(b, called["id"])).status == "completed"
        assert (await presence_of(b, "wangli")).wrapup_deadline is None

        # Second act: node A starts again under its id; its recovery finds the waiting
        # ticket's kiosk gone and gives it the grace time (5 s), then node A dies again.
        async with serve_node(tmp_path, pg_demo_url, node_a, CLOUDHELP_GRACE_SECONDS="5") as (
            process,
            _a_url,
        ):
            abandon_at = (await ticket_row(b, waiting["id"])).abandon_deadline
            sigkill(process)
            killed_at = utcnow()
        assert abandon_at is not None and killed_at < abandon_at, "node A died before it"
        row = await ticket_row(b, waiting["id"])
        assert row.status == "waiting" and row.session_id is None

        async def abandoned() -> bool:
            """the waiting ticket abandoned by node B"""
            return (await ticket_row(b, waiting["id"])).status == "abandoned"

        try:
            await until(abandoned)
        except TimeoutError:  # seen once under load: say where node B's sweep was
            row = await ticket_row(b, waiting["id"])
            where = io.StringIO()
            for task in b.state.callcenter._tasks.loops():
                if task.get_name() == "deadlines.sweep":
                    task.print_stack(file=where)
            raise AssertionError(
                f"not abandoned: {row.status=} {row.abandon_deadline=} {row.session_id=} "
                f"now={utcnow()}; node B's sweep:\n{where.getvalue()}"
            ) from None
        row = await ticket_row(b, waiting["id"])
        assert row.end_reason == "kiosk_gone" and row.abandon_deadline is None
        assert row.closed_at is not None and row.closed_at >= abandon_at
        assert await count(b, waiting["id"], "abandoned") == 1
        # The connected call's kiosk was on node A: its ticket is not abandoned.
        assert (await ticket_row(b, rung["id"])).status == "connected"


async def test_a_deadline_claimed_by_two_nodes_at_once_fires_once(
    pg_demo_url: str,  # noqa: F811
) -> None:
    async with two_nodes(pg_demo_url) as (a, b):
        centers = a.state.callcenter, b.state.callcenter
        # Deadlines far off, so that nothing fires until the test makes them due.
        await set_department(a, "NYNC", ring_seconds=600)
        await set_department(a, "SCJG", wrapup_seconds=600)
        zhaogang = await a.staff("zhaogang")
        wangli = await b.staff("wangli")
        # A ring (node A), a wrap-up (node B), a queued ticket without its kiosk.
        ring = await take_ticket(await a.kiosk("QG-01"), "NYNC-001")
        await zhaogang.expect("ring")
        talking = await b.kiosk("TL-01", "DLW-TL")
        called = await take_ticket(talking, "SCJG-002")
        await wangli.expect("ring")
        await wangli.send({"type": "ring.accept", "ticket": called["id"]})
        await talking.expect("joined")
        await wangli.send({"type": "call.hangup"})
        await wangli.expect("wrapup")
        left = await take_ticket(await a.kiosk("WJ-01", "GJZ-WJ"), "WJJ-001")
        wangli_id = (await presence_of(a, "wangli")).staff_id
        # The nodes' own sweeps stop: from here the test fires the deadlines itself.
        for center in centers:
            await center._tasks.stop_loops()

        # The claim itself: eight transactions at once on a due deadline, one wins.
        past = utcnow() - timedelta(seconds=1)
        async with a.state.db.write() as s:
            await s.execute(
                update(Ticket).where(Ticket.id == ring["id"]).values(ring_deadline=past)
            )

        async def claim_ring() -> bool:
            async with a.state.db.write() as s:
                return await deadlines.claim(s, "ring", ring["id"], utcnow())

        claims = await asyncio.gather(*(claim_ring() for _ in range(8)))
        assert claims.count(True) == 1, claims
        assert (await ticket_row(a, ring["id"])).status == "offered", "a claim alone does nothing"

        # All three fall due; both nodes fire each of them three times at once, and sweep.
        async with a.state.db.write() as s:
            await s.execute(
                update(Ticket).where(Ticket.id == ring["id"]).values(ring_deadline=past)
            )
            await s.execute(
                update(Ticket)
                .where(Ticket.id == left["id"])
                .values(session_id=None, abandon_deadline=past)
            )
            await s.execute(
                update(StaffPresence)
                .where(StaffPresence.staff_id == wangli_id)
                .values(wrapup_deadline=past)
            )
        due = {("ring", ring["id"]), ("wrapup", wangli_id), ("abandon", left["id"])}
        await asyncio.gather(
            *(c.expiries.fire(kind, key) for c in centers for kind, key in due for _ in range(3)),
            *(c.expiries.sweep() for c in centers),
        )
        assert await count(a, ring["id"], "offer_timeout") == 1
        rung = await zhaogang.expect("ring", timeout=20)
        assert rung["ticket"]["id"] == ring["id"], "rung again"
        assert await count(a, ring["id"], "offered") == 2, "one re-offer, however many passes"

        finished = [e for e in await events(a, called["id"]) if e.kind == "wrapup_done"]
        assert [e.detail["reason"] for e in finished] == ["timeout"]
        await wangli.expect_where("presence", lambda f: f["state"] == "available")
        assert await count(a, left["id"], "abandoned") == 1
        async with a.state.db.read() as s:
            assert await deadlines.due(s, utcnow()) == []
        # The timeout was told at most once, older than the new ring: a ring.cancelled from the
        # node that released the ring can arrive after the re-offer's ring from another node (or
        # from this one's dispatch, woken meanwhile by the wrap-up or the abandon, when the gate
        # drops the stale cancel); the console ignores one older than the ring it shows
        # (docs/protocol.md, `ring`).
        cancels = zhaogang.drain("ring.cancelled")
        assert len(cancels) <= 1, cancels
        for cancel in cancels:
            assert cancel["reason"] == "timeout" and cancel["version"] < rung["ticket"]["version"]


async def test_one_sqlite_process_keeps_its_deadlines_with_the_rows(sqlite_demo_url: str) -> None:
    """The single process on SQLite: each deadline is set with the change that starts it and
    cleared by the one that ends it; its own timer fires it; the sweep finds nothing left."""
    async with running_server(sqlite_demo_url) as server:
        await set_department(server, "SCJG", ring_seconds=20, wrapup_seconds=1)
        wangli = await server.staff("wangli")
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "SCJG-002")
        await wangli.expect("ring")
        row = await ticket_row(server, ticket["id"])
        assert row.offered_at is not None
        assert row.ring_deadline == row.offered_at + timedelta(seconds=20)
        await wangli.send({"type": "ring.accept", "ticket": ticket["id"]})
        await kiosk.expect("joined")
        assert (await ticket_row(server, ticket["id"])).ring_deadline is None

        # The sweep stops: what fires from here is the process's own timer.
        await server.state.callcenter._tasks.stop_loops()
        await kiosk.send({"type": "call.hangup"})
        wrapup = await wangli.expect("wrapup")
        deadline = (await presence_of(server, "wangli")).wrapup_deadline
        ended_at = (await ticket_row(server, ticket["id"])).ended_at
        assert deadline is not None and ended_at is not None
        assert deadline == ended_at + timedelta(seconds=1)
        assert wrapup["seconds"] == 1
        await wangli.expect_where("presence", lambda f: f["state"] == "available", timeout=5)
        done = [e for e in await events(server, ticket["id"]) if e.kind == "wrapup_done"]
        assert [e.detail["reason"] for e in done] == ["timeout"]
        assert done[0].at >= deadline, "not before its deadline"
        assert (await presence_of(server, "wangli")).wrapup_deadline is None
        async with server.state.db.read() as s:
            assert await deadlines.due(s, utcnow() + timedelta(days=1)) == []


async def test_a_preference_window_whose_timer_is_lost_ends_at_a_sweep(
    sqlite_demo_url: str,
) -> None:
    """The reviewer-preference window has no column: its end is a dispatch, and each sweep
    runs one, so a window whose in-process timer is gone (its process died) still ends."""
    # A window long enough that its timer is still armed when the test cancels it, on a busy
    # machine too (1 s was not: it had fired, and rung, before the test looked).
    async with running_server(sqlite_demo_url, prefer_reviewer_seconds=4) as server:
        await also_handles_fishing(server, "wangli")
        reviewer_token = await server.staff_token("zhaogang")  # the reviewer stays away
        number, _ = await case_needing_correction(server, {"cloudhelp_session": reviewer_token})
        other = await server.staff("wangli")
        kiosk, take = await server.correction_kiosk(number, LAST4, "TL-01", "DLW-TL")
        await kiosk.send(take)
        ticket = (await kiosk.expect("ticket"))["ticket"]
        timers = server.state.callcenter._timers
        assert ("prefer_window", ticket["id"]) in timers
        timers.cancel("prefer_window", ticket["id"])
        ring = await other.expect("ring")
        assert ring["ticket"]["id"] == ticket["id"]
