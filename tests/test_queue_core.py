"""Queue core: one ticket numbering for history and live tickets, sessions of one person in
several roles, snapshot order, and a call that survives a page reload. Real server, real
WebSockets, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from cloudhelp.callcenter import SnapshotGate
from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ, local_day
from cloudhelp.devtools import history
from cloudhelp.domain import queue
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.media.peer import ProtocolError, SignalingClient
from cloudhelp.store.models import (
    Kiosk,
    ServiceItem,
    Staff,
    StaffPresence,
    Ticket,
    TicketCounter,
    TicketEvent,
    utcnow,
)
from signaling.hub import Hub, Principal, Session
from tests.callkit import CallServer, first_send_held, running_server

OTHER_DEPARTMENT_ITEM = "SCJG-001"  # an item of a department zhaogang does not handle


async def test_a_live_ticket_follows_todays_history(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        db = server.state.db
        today = local_day(utcnow())
        end_of_today = datetime.combine(
            datetime.fromisoformat(today).date(), time(23, 59), LOCAL_TZ
        )
        # On a rest day the hall has no history: today is made a working day (调休上班) here.
        calendar = workdays.current()
        day = datetime.fromisoformat(today).date()
        exceptions = {**calendar.exceptions, day: True}
        workdays.install(
            replace(calendar, years=calendar.years | {day.year}, exceptions=exceptions)
        )
        try:
            made = await history.generate(db, 1, tickets_per_day=200, until=end_of_today)
        finally:
            workdays.install(calendar)
        assert made > 0
        async with db.read() as s:
            numbers = set((await s.scalars(select(Ticket.number).where(Ticket.day == today))).all())
            fishing = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
            assert fishing is not None
            letter = fishing.category.letter
            counter = await s.scalar(
                select(TicketCounter.last).where(
                    TicketCounter.day == today, TicketCounter.category_id == fishing.category_id
                )
            )
        generated_today = sorted(n for n in numbers if n.startswith(letter))
        # Today's history (none on a rest day) used the same counter the kiosk draws from.
        assert (counter or 0) == len(generated_today)
        assert generated_today == [f"{letter}{n:03d}" for n in range(1, len(generated_today) + 1)]

        kiosk = await server.kiosk("QG-01")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        assert ticket["number"] == f"{letter}{len(generated_today) + 1:03d}"
        assert ticket["number"] not in numbers


async def test_tickets_written_without_the_counter_are_not_numbered_again(demo_url: str) -> None:
    """A database filled by an older history generator (today's tickets, no counter row)."""
    async with running_server(demo_url) as server:
        db = server.state.db
        today = local_day(utcnow())
        async with db.write() as s:
            fishing = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
            kiosk_row = await s.scalar(select(Kiosk).limit(1))
            assert fishing is not None and kiosk_row is not None
            letter = fishing.category.letter
            assert await s.scalar(select(func.count()).select_from(TicketCounter)) == 0
            earlier = utcnow() - timedelta(minutes=30)
            await s.execute(
                insert(Ticket),
                [
                    {"day": today, "number": f"{letter}{n:03d}", "item_id": fishing.id,
                     "department_id": fishing.department_id, "station_id": kiosk_row.station_id,
                     "kiosk_id": kiosk_row.id, "status": "completed", "enqueued_at": earlier,
                     "closed_at": earlier, "offer_count": 0, "note": ""}
                    for n in (1, 2, 7)
                ],
            )  # fmt: skip
        kiosk = await server.kiosk("QG-01")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        assert (await kiosk.expect("ticket"))["ticket"]["number"] == f"{letter}008"


async def test_tickets_taken_together_are_numbered_in_order_within_each_category(
    demo_url: str,
) -> None:
    """queue.take_many: one counter bump per category, numbers in the order taken."""
    async with running_server(demo_url) as server:
        async with server.state.db.write() as s:
            items = [
                await s.scalar(select(ServiceItem).where(ServiceItem.code == code))
                for code in ("NYNC-002", "SCJG-001", "NYNC-002", "SCJG-001", "NYNC-002")
            ]
            kiosk_row = await s.scalar(select(Kiosk).limit(1))
            assert kiosk_row is not None and all(items)
            letters = {item.code: item.category.letter for item in items if item is not None}
            assert len(set(letters.values())) == 2, "two categories"
            taken = await queue.take_many(
                s,
                [
                    queue.NewTicket(item, kiosk_row.id, kiosk_row.station_id, f"together-{n}")
                    for n, item in enumerate(items)
                    if item is not None
                ],
            )
        fishing, licence = letters["NYNC-002"], letters["SCJG-001"]
        assert [t.number[0] for t in taken] == [fishing, licence, fishing, licence, fishing]
        sequence = [int(t.number[1:]) for t in taken]
        assert sequence[2:5:2] == [sequence[0] + 1, sequence[0] + 2]
        assert sequence[3] == sequence[1] + 1
        assert [t.session_id for t in taken] == [f"together-{n}" for n in range(5)]
        async with server.state.db.read() as s:
            enqueued = await s.scalars(
                select(TicketEvent.ticket_id).where(TicketEvent.kind == "enqueued")
            )
            assert {t.id for t in taken} <= set(enqueued.all())


# ---------------------------------------------------------------------------- item 8: purposes


async def test_a_supervisor_board_never_closes_their_console_in_a_call(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        async with server.state.db.write() as s:
            await s.execute(
                update(Staff).where(Staff.username == "zhaogang").values(role="supervisor")
            )
        console = await server.staff("zhaogang")
        kiosk = await server.kiosk("QG-01")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ring = await console.expect("ring")
        await console.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        await console.expect("joined")
        await kiosk.expect("joined")

        token = await server.staff_token("zhaogang")
        board = await server.connect({"kind": "staff", "token": token, "purpose": "board"})
        await board.send({"type": "board.watch"})
        snapshot = await board.expect("board")
        assert any(c["staff"] == "赵刚" for c in snapshot["calls"])
        # A board session may not act as the console.
        await board.send({"type": "staff.status", "status": "away"})
        assert (await board.expect("error"))["code"] == "forbidden"
        # A second board (the wall screen's, then the laptop's) replaces nothing: both follow.
        board2 = await server.connect({"kind": "staff", "token": token, "purpose": "board"})
        await board2.send({"type": "board.watch"})
        await board2.expect("board")
        await board.send({"type": "ping", "id": "still-there"})
        assert (await board.expect("pong"))["id"] == "still-there"
        assert not board.closed.is_set()
        assert not console.closed.is_set() and not kiosk.closed.is_set()
        # The call goes on: chat is relayed both ways, and it ends normally.
        await kiosk.send({"type": "app", "data": {"kind": "chat", "text": "还在吗"}})
        assert (await console.expect("app"))["data"]["text"] == "还在吗"
        await console.send({"type": "call.hangup"})
        assert (await kiosk.expect("left"))["reason"] == "staff_hangup"
        # Closing the board leaves the console's presence alone.
        await board2.close()
        await asyncio.sleep(0.3)
        async with server.state.db.read() as s:
            presence = await s.scalar(
                select(StaffPresence).join(Staff).where(Staff.username == "zhaogang")
            )
            assert presence is not None and presence.state == "wrapup"
            assert presence.session_id == console.session_id
        bad = SignalingClient(server.base_url, server.http)
        with pytest.raises(ProtocolError) as refused:
            await bad.connect({"kind": "staff", "token": token, "purpose": "spy"})
        assert refused.value.code == "bad_message"


def test_finding_a_principal_s_sessions_does_not_scan_every_session() -> None:
    hub = Hub(_NoApplication())
    sessions = [Session(Principal("kiosk", str(n))) for n in range(1000)]
    console = Session(Principal("staff", "7", purpose="console"))
    board = Session(Principal("staff", "7", purpose="board"))
    for session in [*sessions, console, board]:
        hub.sessions[session.id] = session
        hub._index(session)
    assert hub.find_sessions("staff", "7", "board") == [board]
    assert set(hub.find_sessions("staff", "7")) == {console, board}
    assert hub.find_sessions("kiosk", "999") == [sessions[999]]
    hub._unindex(board)
    assert hub.find_sessions("staff", "7") == [console]
    assert ("staff", "8") not in hub._by_principal and hub.find_sessions("staff", "8") == []


class _NoApplication:
    """A hub needs an application only to talk to clients; this test talks to none."""


# ---------------------------------------------------------------------------- item 8b: order


async def test_a_stale_queue_snapshot_never_follows_the_call(demo_url: str) -> None:
    """_push_all reads the queue, then awaits a send per ticket; meanwhile a call starts. The
    snapshot it read before (ringing) must not reach the kiosk after the connected one."""
    async with running_server(demo_url) as server:
        center = server.state.callcenter
        staff = await server.staff("zhaogang")  # handles 区农业农村局 only
        first = await server.kiosk("QG-01")
        second = await server.kiosk("QG-02")
        await first.send({"type": "ticket.take", "item": OTHER_DEPARTMENT_ITEM})
        ahead = (await first.expect("ticket"))["ticket"]  # waits: nobody handles it
        await second.send({"type": "ticket.take", "item": "NYNC-002"})
        ring = await staff.expect("ring")
        ticket_id = ring["ticket"]["id"]
        await second.expect_where("ticket", lambda f: f["ticket"]["status"] == "offered")
        seen: list[dict] = []
        second.listeners.append(seen.append)

        # Hold the queue push at its first send (to the first kiosk), after it read the queue.
        def is_ticket(message: dict) -> bool:
            return message["type"] == "ticket"

        with first_send_held(center.hub, first.session_id, is_ticket) as (held, release):
            center._gate.reset(f"ticket:{ahead['id']}")  # so the first kiosk is sent one again
            push = asyncio.create_task(center._push_all())
            await asyncio.wait_for(held.wait(), 5)
            await staff.send({"type": "ring.accept", "ticket": ticket_id})
            await second.expect("joined")
            release.set()
            await push
        await asyncio.sleep(0.3)
        statuses = [f["ticket"]["status"] for f in seen if f["type"] == "ticket"]
        types = [f["type"] for f in seen]
        assert statuses == ["connected"], seen
        assert types.index("ticket") < types.index("joined")
        versions = [f["ticket"]["version"] for f in seen if f["type"] == "ticket"]
        assert versions[0] > ring["ticket"]["version"]


async def test_a_ring_never_arrives_after_its_cancellation(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        center = server.state.callcenter
        staff = await server.staff("zhaogang", available=False)
        kiosk = await server.kiosk("QG-01")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        await kiosk.expect("ticket")
        held, release = asyncio.Event(), asyncio.Event()
        real_announce = center._announce_offers

        async def slow_announce(pairs: Sequence[tuple[int, int]]) -> None:
            held.set()
            await release.wait()  # the ring is about to be announced; the resident cancels
            await real_announce(pairs)

        center._announce_offers = slow_announce  # type: ignore[method-assign]
        await staff.send({"type": "staff.status", "status": "available"})
        await asyncio.wait_for(held.wait(), 5)
        await kiosk.send({"type": "ticket.cancel"})
        await kiosk.expect_where("ticket", lambda f: f["ticket"]["status"] == "cancelled")
        cancelled = await staff.expect("ring.cancelled")
        release.set()
        await staff.expect("presence", state="available")
        await asyncio.sleep(0.3)
        assert staff.drain("ring") == [], "a ring arrived after its cancellation"
        assert cancelled["reason"] == "resident_cancelled" and cancelled["version"] >= 3


async def test_a_missed_rings_cancellation_is_not_held_back_by_the_next_ring_elsewhere(
    demo_url: str,
) -> None:
    """zhaogang misses a ring; before his ring.cancelled goes out, the ticket is offered to
    liumei and her ring sent (a dispatch that ran in between: forced here). The two consoles'
    rings are gated apart: his cancel still reaches him (with one gate key per ticket it was
    dropped as older than her ring, and his console rang on for a ticket no longer his)."""
    from tests.test_call_core import set_department
    from tests.test_correction_session import also_handles_fishing

    async with running_server(demo_url) as server:
        center = server.state.callcenter
        await set_department(server, "NYNC", ring_seconds=1)
        await also_handles_fishing(server, "liumei")
        zhaogang = await server.staff("zhaogang")
        liumei = await server.staff("liumei", available=False)
        kiosk = await server.kiosk("QG-01")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ring = await zhaogang.expect("ring")
        await liumei.send({"type": "staff.status", "status": "available"})
        await liumei.expect("presence", state="available")
        real_send_staff = center.pushes.send_staff

        async def dispatch_first(
            staff_id: int, message: dict[str, Any], gate: tuple[str, Any] | None = None
        ) -> None:
            if message["type"] == "ring.cancelled":
                await center.routing.dispatch()  # the ticket's next ring goes out first
            await real_send_staff(staff_id, message, gate)

        center.pushes.send_staff = dispatch_first  # type: ignore[method-assign]
        rung = await liumei.expect("ring")
        cancelled = await zhaogang.expect("ring.cancelled")
        assert rung["ticket"]["id"] == ring["ticket"]["id"] == cancelled["ticket"]
        assert cancelled["reason"] == "timeout"
        assert cancelled["version"] < rung["ticket"]["version"]


# ---------------------------------------------------------------------------- item 9: reload


async def _in_a_call(server: CallServer) -> tuple[SignalingClient, SignalingClient, int]:
    staff = await server.staff("zhaogang")
    kiosk = await server.kiosk("QG-01")
    await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
    ring = await staff.expect("ring")
    await staff.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
    await kiosk.expect("joined")
    await staff.expect("joined")
    return kiosk, staff, ring["ticket"]["id"]


async def test_a_kiosk_reloaded_mid_call_resumes_the_same_call(demo_url: str) -> None:
    async with running_server(demo_url, grace_seconds=3.0) as server:
        kiosk, staff, ticket_id = await _in_a_call(server)
        await kiosk.drop()  # the page goes away (reload)
        away = await staff.expect("peer_reconnecting")
        assert away["session"] == kiosk.session_id and away["room"].startswith("call-")

        await kiosk.resume(reloaded=True)  # the new page, with the session and token it kept
        back = await staff.expect("peer_back")
        assert back["session"] == kiosk.session_id and back["reloaded"] is True
        ticket = (await kiosk.expect("ticket"))["ticket"]
        assert ticket["id"] == ticket_id and ticket["status"] == "connected"
        joined = await kiosk.expect("joined")
        assert joined["resumed"] is True and joined["initiator"] is True
        assert joined["peers"][0]["session"] == staff.session_id
        await asyncio.sleep(3.5)  # past the grace period: the call is still on
        assert staff.drain("left") == []
        await kiosk.send({"type": "offer", "sdp": "v=0 renegotiated"})
        assert (await staff.expect("offer"))["sdp"] == "v=0 renegotiated"
        await staff.send({"type": "app", "data": {"kind": "chat", "text": "看到您了"}})
        assert (await kiosk.expect("app"))["data"]["text"] == "看到您了"
        await kiosk.send({"type": "call.hangup"})
        assert (await staff.expect("left"))["reason"] == "kiosk_hangup"


async def test_a_staff_console_reloaded_mid_call_gets_its_call_back(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        kiosk, staff, ticket_id = await _in_a_call(server)
        await staff.drop()
        assert (await kiosk.expect("peer_reconnecting"))["session"] == staff.session_id
        await staff.resume(reloaded=True)
        assert (await kiosk.expect("peer_back"))["reloaded"] is True
        presence = await staff.expect("presence")
        assert presence["state"] == "in_call" and presence["ticket"] == ticket_id
        joined = await staff.expect("joined")
        assert joined["initiator"] is False and joined["peers"][0]["role"] == "kiosk"


async def test_a_dropped_socket_resumed_is_back_and_one_not_resumed_ends_the_call(
    demo_url: str,
) -> None:
    async with running_server(demo_url, grace_seconds=1.5) as server:
        kiosk, staff, ticket_id = await _in_a_call(server)
        await kiosk.drop()
        await staff.expect("peer_reconnecting")
        await kiosk.resume()  # a network blip: the page kept its call
        assert (await staff.expect("peer_back"))["reloaded"] is False
        assert kiosk.drain("joined") == []
        await kiosk.drop()
        await staff.expect("peer_reconnecting")
        assert (await staff.expect("left"))["reason"] == "peer_gone"
        async with server.state.db.read() as s:
            row = await s.get(Ticket, ticket_id)
            assert row is not None and row.end_reason == "peer_gone"


async def test_a_kept_console_session_is_not_resumed_by_someone_else(demo_url: str) -> None:
    """A tab keeps its session for a reload; whoever signs in next in it does not get it."""
    async with running_server(demo_url, grace_seconds=10.0) as server:
        staff = await server.staff("zhaogang")
        # Signed in before the drop: a sign-in (argon2) on a loaded machine must not eat the
        # grace the resume is tried in.
        cookies = {
            name: f"{STAFF_COOKIE}={await server.staff_token(name)}"
            for name in ("wangli", "zhaogang")
        }
        await staff.drop()
        kept = {"session": staff.session_id, "token": staff.welcome["token"], "reloaded": True}
        for username, answer in (("wangli", "error"), ("zhaogang", "welcome")):
            cookie = cookies[username]
            async with server.http.ws_connect(
                f"{server.base_url}/ws", headers={"Cookie": cookie}
            ) as ws:
                await ws.send_json({"type": "hello", "v": 1, "resume": kept})
                frame = await ws.receive_json(timeout=5)
                assert frame["type"] == answer, frame
                if answer == "error":
                    assert frame["code"] == "no_such_session"


def test_the_snapshot_gate_sends_nothing_older_or_unchanged() -> None:
    gate = SnapshotGate()
    early, late = gate.read(), gate.read()
    assert gate.admit("presence:1", late, {"state": "in_call"})
    assert not gate.admit("presence:1", early, {"state": "ringing"})  # read before: never after
    assert not gate.admit("presence:1", gate.read(), {"state": "in_call"})  # unchanged
    assert gate.sent_after("presence:1", early) and not gate.sent_after("presence:1", late)
    gate.reset("presence:1")  # a new session: the same snapshot goes again, older ones still not
    assert not gate.admit("presence:1", early, {"state": "ringing"})
    assert gate.admit("presence:1", gate.read(), {"state": "in_call"})
    # Tickets: the version first, so a newer state read earlier still wins over an older one.
    assert gate.admit("ticket:5", (3, 10), {"status": "connected"})
    assert not gate.admit("ticket:5", (2, 11), {"status": "offered"})
    assert gate.admit("ticket:5", (3, 12), {"status": "connected", "position": None})


async def test_reloaded_pages_get_their_waiting_ticket_and_their_ring_back(demo_url: str) -> None:
    async with running_server(demo_url, grace_seconds=10.0) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk("QG-01")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ring = await staff.expect("ring")
        await kiosk.drop()
        await kiosk.resume(reloaded=True)
        ticket = (await kiosk.expect("ticket"))["ticket"]
        assert ticket["id"] == ring["ticket"]["id"] and ticket["status"] == "offered"
        assert ticket["version"] >= ring["ticket"]["version"]
        await staff.drop()
        await staff.resume(reloaded=True)
        assert (await staff.expect("presence"))["state"] == "ringing"
        again = await staff.expect("ring")
        assert again["ticket"]["id"] == ticket["id"] and 1 <= again["ring_seconds"] <= 20
        await staff.send({"type": "ring.accept", "ticket": ticket["id"]})
        await kiosk.expect("joined")
        await staff.expect("joined")


async def test_a_transferred_kiosk_is_sent_its_new_place_after_left(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        kiosk, staff, _ticket_id = await _in_a_call(server)
        seen: list[dict] = []
        kiosk.listeners.append(seen.append)
        await staff.send({"type": "ticket.transfer", "department": "ZJJ"})
        await kiosk.expect("left")
        waiting = await kiosk.expect_where(
            "ticket", lambda f: f["ticket"]["department"]["code"] == "ZJJ"
        )
        assert waiting["ticket"]["status"] == "waiting" and waiting["ticket"]["position"] == 1
        types = [f["type"] for f in seen]
        assert types.index("left") < types.index("ticket"), types
