"""The call core end to end: real server, real WebSockets, real aiortc peers.

Each test reads as a conversation between a kiosk, staff members and the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Any

import pytest
from sqlalchemy import select, update

from cloudhelp.callcenter.watchers import REVOCATION_CHECK_SECONDS
from cloudhelp.domain import accounts
from cloudhelp.media.peer import CallPeer, SignalingClient
from cloudhelp.store.models import Department, StaffPresence, Ticket, TicketEvent
from tests.callkit import CallServer, picked_at_once, running_server, turn_server, until

pytestmark = pytest.mark.usefixtures("loopback_ice")


async def ticket_row(server: CallServer, ticket_id: int) -> Ticket:
    async with server.state.db.read() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket


async def events_of(server: CallServer, ticket_id: int) -> list[str]:
    async with server.state.db.read() as session:
        rows = await session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return [e.kind for e in rows.all()]


async def take_ticket(kiosk: SignalingClient, item: str) -> dict:
    await kiosk.send({"type": "ticket.take", "item": item})
    return (await kiosk.expect("ticket"))["ticket"]


async def answer(staff: SignalingClient) -> dict:
    ring = await staff.expect("ring")
    await staff.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
    return ring


async def test_a_call_from_ticket_to_wrapup(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        staff = await server.staff("zhaogang")  # handles 区农业农村局 (fishing licences)
        kiosk = await server.kiosk("QG-01")
        kiosk_peer, staff_peer = CallPeer(kiosk), CallPeer(staff)
        center = server.state.callcenter
        try:
            # Nothing ringing, nobody in a call, once the staff member's arrival has been
            # dispatched: a full GC pass may run.
            await until(center.quiet, what="the call centre to be quiet")
            ticket = await take_ticket(kiosk, "NYNC-002")
            assert ticket["number"] == "B001" and ticket["item"]["code"] == "NYNC-002"
            assert ticket["status"] in ("waiting", "offered")

            offer = await staff.expect("ring")
            assert not center.quiet()  # a ring is pending
            await staff.send({"type": "ring.accept", "ticket": offer["ticket"]["id"]})
            assert offer["ticket"]["id"] == ticket["id"] and offer["ring_seconds"] == 20
            joined_kiosk = await kiosk.expect("joined")
            joined_staff = await staff.expect("joined")
            assert not center.quiet()  # a call in progress
            assert joined_kiosk["initiator"] is True and joined_staff["initiator"] is False
            assert joined_kiosk["peers"][0]["role"] == "staff"
            assert joined_staff["peers"][0]["kiosk"] == "QG-01"

            await asyncio.wait_for(kiosk_peer.connected.wait(), 20)
            await asyncio.wait_for(staff_peer.connected.wait(), 20)
            await until(lambda: kiosk_peer.frames_of(0) >= 10, what="kiosk receives camera")
            await until(lambda: staff_peer.frames_of(0) >= 10, what="staff receives camera")

            await staff_peer.share_screen()
            await until(lambda: kiosk_peer.frames_of(1) >= 5, what="kiosk receives the screen")

            document = os.urandom(2 * 1024 * 1024)
            ack = await kiosk_peer.send_file("营业执照.jpg", document)
            assert ack["ok"] is True
            received = await asyncio.wait_for(staff_peer.files.get(), 10)
            assert received.ok and received.data == document
            assert received.sha256 == hashlib.sha256(document).hexdigest()

            await kiosk.send({"type": "app", "data": {"kind": "chat", "text": "您好，请看材料"}})
            chat = await staff.expect("app")
            assert chat["data"]["text"] == "您好，请看材料" and chat["from"] == kiosk.session_id

            await kiosk.send({"type": "call.hangup"})
            assert (await staff.expect("left"))["reason"] == "kiosk_hangup"
            await kiosk.expect("left")
            await until(center.quiet, what="quiet after the call")
            wrapup = await staff.expect("wrapup")
            assert wrapup["ticket"] == ticket["id"] and wrapup["seconds"] == 60
            await staff.expect("presence", state="wrapup")
            await staff.send({"type": "wrapup.done", "outcome": "resolved", "note": "材料齐全"})
            await staff.expect("presence", state="available")
        finally:
            await kiosk_peer.close()
            await staff_peer.close()

        row = await ticket_row(server, ticket["id"])
        assert row.status == "completed" and row.outcome == "resolved"
        assert row.enqueued_at <= row.offered_at <= row.connected_at <= row.ended_at  # type: ignore[operator]
        assert row.ended_at <= row.wrapup_done_at == row.closed_at  # type: ignore[operator]
        assert row.end_reason == "kiosk_hangup"
        assert await events_of(server, ticket["id"]) == [
            "enqueued", "offered", "connected", "ended", "wrapup_done",
        ]  # fmt: skip
        async with server.state.db.read() as session:
            ended = await session.scalar(
                select(TicketEvent).where(
                    TicketEvent.ticket_id == ticket["id"], TicketEvent.kind == "ended"
                )
            )
        assert ended is not None and ended.detail["chats"] == 1 and ended.detail["screen"] == []


async def set_department(server: CallServer, code: str, **values: int) -> None:
    async with server.state.db.write() as session:
        await session.execute(update(Department).where(Department.code == code).values(**values))


async def test_second_kiosk_waits_and_sees_its_position_and_estimate(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("liumei")  # 住建, 城管
        first = await server.kiosk("QG-01")
        second = await server.kiosk("TL-01", "DLW-TL")
        third = await server.kiosk("WJ-01", "GJZ-WJ")
        await take_ticket(first, "ZJJ-001")
        await answer(staff)
        await first.expect("joined")
        t2 = await take_ticket(second, "ZJJ-002")
        assert t2["number"] == "C002" and t2["status"] == "waiting"
        assert t2["position"] == 1 and t2["staff_on_duty"] == 1
        assert t2["estimated_wait_seconds"] == 300  # no history yet: the default handling time
        t3 = await take_ticket(third, "ZJJ-003")
        assert t3["position"] == 2 and t3["estimated_wait_seconds"] == 600

        await first.send({"type": "call.hangup"})
        await staff.expect("wrapup")
        await staff.send({"type": "wrapup.done"})
        ring = await staff.expect("ring")
        assert ring["ticket"]["id"] == t2["id"]  # the oldest ticket first
        await second.expect_where("ticket", lambda f: f["ticket"]["status"] == "offered")
        await staff.send({"type": "ring.accept", "ticket": t2["id"]})
        connected = await second.expect_where(
            "ticket", lambda f: f["ticket"]["status"] == "connected"
        )
        assert "position" not in connected["ticket"]
        moved_up = await third.expect_where("ticket", lambda f: f["ticket"]["position"] == 1)
        # One finished call is not yet history enough (3 needed): the default time still holds.
        assert moved_up["ticket"]["estimated_wait_seconds"] == 300


async def test_ring_timeout_moves_on_and_autopauses(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        await set_department(server, "SCJG", ring_seconds=1)
        wangli = await server.staff("wangli")  # 市场监管
        chenjing = await server.staff("chenjing")  # handles SCJG-001 and SCJG-003 only
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "SCJG-001")
        # Longest idle first: wangli became available first.
        ring = await wangli.expect("ring")
        assert ring["ticket"]["id"] == ticket["id"]
        assert (await wangli.expect("ring.cancelled"))["reason"] == "timeout"
        await chenjing.expect("ring")  # the next one
        await chenjing.expect("ring.cancelled")
        # Back to wangli (fewest offers of this ticket, then longest idle): second miss → away.
        await wangli.expect("ring")
        await wangli.expect("ring.cancelled")
        await wangli.expect_where(
            "presence", lambda f: f["state"] == "away" and f["missed_offers"] == 2
        )
        await chenjing.expect("ring")
        await chenjing.expect("ring.cancelled")
        await chenjing.expect_where("presence", lambda f: f["state"] == "away")
        kinds = await events_of(server, ticket["id"])
        assert kinds.count("offered") == 4 and kinds.count("offer_timeout") == 4
        assert kinds.count("staff_autopaused") == 2
        assert (await ticket_row(server, ticket["id"])).status == "waiting"


async def test_decline_goes_to_the_next_staff_member(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        wangli = await server.staff("wangli")
        chenjing = await server.staff("chenjing")
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "SCJG-003")
        ring = await wangli.expect("ring")
        await wangli.send({"type": "ring.decline", "ticket": ring["ticket"]["id"]})
        assert (await wangli.expect("ring.cancelled"))["reason"] == "declined"
        await wangli.expect_where("presence", lambda f: f["state"] == "available")
        assert (await chenjing.expect("ring"))["ticket"]["id"] == ticket["id"]
        await wangli.send({"type": "ring.decline", "ticket": ticket["id"]})
        assert (await wangli.expect("error"))["code"] == "not_your_offer"


async def test_cancel_while_ringing(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "JTJ-001")
        await staff.expect("ring")
        await kiosk.send({"type": "ticket.cancel"})
        cancelled = await kiosk.expect_where(
            "ticket", lambda f: f["ticket"]["status"] == "cancelled"
        )
        assert cancelled["ticket"]["end_reason"] == "resident_cancelled"
        assert (await staff.expect("ring.cancelled"))["reason"] == "resident_cancelled"
        await staff.expect_where("presence", lambda f: f["state"] == "available")
        row = await ticket_row(server, ticket["id"])
        assert row.status == "cancelled" and row.closed_at is not None
        await kiosk.send({"type": "ticket.cancel"})
        assert (await kiosk.expect("error"))["code"] == "no_ticket"


async def test_transfer_keeps_the_enqueue_time(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        zhaogang = await server.staff("zhaogang")
        liumei = await server.staff("liumei", available=False)
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "JTJ-004")
        await answer(zhaogang)
        await kiosk.expect("joined")
        await zhaogang.send({"type": "ticket.transfer", "department": "ZJJ"})
        assert (await kiosk.expect("left"))["reason"] == "transferred"
        back = await kiosk.expect_where("ticket", lambda f: f["ticket"]["status"] == "waiting")
        assert back["ticket"]["department"]["code"] == "ZJJ"
        assert back["ticket"]["enqueued_at"] == ticket["enqueued_at"]
        queue = await liumei.expect_where("queue", lambda f: len(f["tickets"]) == 1)
        assert queue["tickets"][0]["id"] == ticket["id"]
        await liumei.send({"type": "ticket.pick", "ticket": ticket["id"]})
        await liumei.expect("joined")
        await kiosk.expect("joined")
        row = await ticket_row(server, ticket["id"])
        assert row.status == "connected" and row.department.code == "ZJJ"
        assert await events_of(server, ticket["id"]) == [
            "enqueued", "offered", "connected", "transferred", "picked",
        ]  # fmt: skip
        await zhaogang.send({"type": "ticket.transfer", "department": "NOPE"})
        assert (await zhaogang.expect("error"))["code"] == "no_such_department"


async def test_the_initiators_offer_never_reaches_the_peer_before_its_joined(
    demo_url: str,
) -> None:
    """The kiosk (the initiator) sends its offer the moment it has joined; the console still
    gets its own ``joined`` first, even when keeping the call's cards in the broker is slow (a
    Redis round trip on a busy machine). The other way round the console had no call yet,
    dropped the offer, and the call never had media (seen in Chromium under load)."""
    async with running_server(demo_url) as server:
        hub = server.state.callcenter.hub
        real_keep_card = hub._keep_card

        async def slow_keep_card(session: Any) -> None:
            await asyncio.sleep(0.3)
            await real_keep_card(session)

        hub._keep_card = slow_keep_card  # type: ignore[method-assign]
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        seen: list[str] = []
        staff.listeners.append(lambda frame: seen.append(frame["type"]))

        async def offer_at_once(frame: dict[str, Any]) -> None:
            if frame["type"] == "joined":
                to = frame["peers"][0]["session"]
                await kiosk.send({"type": "offer", "sdp": "v=0\r\n", "to": to})

        kiosk.listeners.append(offer_at_once)
        await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await staff.expect("offer")
        assert seen.index("joined") < seen.index("offer"), seen


async def test_a_transferred_call_rings_saying_who_sent_it_on(demo_url: str) -> None:
    """The ring after a transfer names the staff member who transferred the call and their
    department, also when the rung console is reloaded while it rings."""
    async with running_server(demo_url, grace_seconds=10) as server:
        zhaogang = await server.staff("zhaogang")
        liumei = await server.staff("liumei")
        kiosk = await server.kiosk()
        await take_ticket(kiosk, "JTJ-004")
        first = await zhaogang.expect("ring")
        assert first["transferred_by"] is None
        await zhaogang.send({"type": "ring.accept", "ticket": first["ticket"]["id"]})
        await kiosk.expect("joined")
        await zhaogang.send({"type": "ticket.transfer", "department": "ZJJ"})
        ring = await liumei.expect("ring")
        by = {"name": "赵刚", "department": "区交通运输局"}
        assert ring["ticket"]["id"] == first["ticket"]["id"] and ring["transferred_by"] == by
        await liumei.drop()
        await liumei.resume(reloaded=True)
        assert (await liumei.expect("ring"))["transferred_by"] == by


async def test_resume_after_a_dropped_socket_mid_call(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, grace_seconds=10) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        kiosk_peer, staff_peer = CallPeer(kiosk), CallPeer(staff)
        try:
            await take_ticket(kiosk, "NYNC-002")
            await answer(staff)
            await asyncio.wait_for(kiosk_peer.connected.wait(), 20)
            await kiosk.drop()
            # While the kiosk is away, staff keep talking: nothing may be lost.
            for n in range(5):
                await staff.send({"type": "app", "data": {"chat": f"第{n}条"}})
            welcome = await kiosk.resume()
            assert welcome["session"] == kiosk.session_id
            for n in range(5):
                assert (await kiosk.expect("app"))["data"] == {"chat": f"第{n}条"}
            # The call itself never stopped.
            frames = kiosk_peer.frames_of(0)
            await until(lambda: kiosk_peer.frames_of(0) > frames + 5, what="media keeps flowing")
            await kiosk.send({"type": "app", "data": {"chat": "我回来了"}})
            assert (await staff.expect("app"))["data"] == {"chat": "我回来了"}
        finally:
            await kiosk_peer.close()
            await staff_peer.close()


async def test_what_a_socket_swallowed_is_sent_again_and_handled_once(
    sqlite_demo_url: str,
) -> None:
    """A client numbers its messages (``cseq``); the server says what it has (``received``)
    in pongs and in the welcome of a resume, and drops a message it already handled."""
    async with running_server(sqlite_demo_url, grace_seconds=10) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        await kiosk.send({"type": "app", "data": "一", "cseq": 1})
        await kiosk.send({"type": "app", "data": "二", "cseq": 2})
        assert (await staff.expect("app"))["data"] == "一"
        assert (await staff.expect("app"))["data"] == "二"
        await kiosk.send({"type": "ping", "id": "p1"})
        assert (await kiosk.expect("pong", id="p1"))["received"] == 2

        # The hang-up (cseq 3) went to a socket that died: the server never saw it.
        await kiosk.drop()
        welcome = await kiosk.resume()
        assert welcome["received"] == 2
        # The client sends again what is past 2; a late copy of 2 is dropped.
        await kiosk.send({"type": "app", "data": "二", "cseq": 2})
        await kiosk.send({"type": "app", "data": "三", "cseq": 3})
        assert (await staff.expect("app"))["data"] == "三"

        # A reloaded page lost its numbering: it starts again from 1.
        welcome = await kiosk.resume(reloaded=True)
        assert welcome["received"] == 0
        await kiosk.send({"type": "app", "data": "四", "cseq": 1})
        assert (await staff.expect("app"))["data"] == "四"
        for bad in (0, -1, "3", 1.5, True, 2**53 + 1):
            await kiosk.send({"type": "call.hangup", "cseq": bad})
            error = await kiosk.expect("error")
            assert (error["code"], error["ref"]) == ("bad_message", "call.hangup"), bad
        await kiosk.send({"type": "call.hangup", "cseq": 2})
        await staff.expect("left")
        await kiosk.expect("left")


async def test_a_message_being_handled_when_its_client_resumes_elsewhere_is_handled(
    sqlite_demo_url: str,
) -> None:
    """The server counted a message received (``received`` in the resumed welcome) while its
    handler waited for the database; the client resumes on a new socket, which closes the old
    one. The handler goes on to the end: the client, told the message arrived, never sends it
    again. (aiohttp's TestServer cancels a handler whose connection is lost; the tests' server
    runs as ``cloudhelp serve`` does: tests/callkit.AppServer.)"""
    async with running_server(sqlite_demo_url, grace_seconds=10) as server:
        hub = server.state.callcenter.hub
        kiosk = await server.kiosk()
        session = hub.sessions[kiosk.welcome["session"]]
        async with server.state.db.write():  # the server's writes wait for this one
            await kiosk.send({"type": "ticket.take", "item": "NYNC-002", "cseq": 1})
            await until(lambda: session.received == 1, what="the server to receive cseq 1")
            welcome = await kiosk.resume()
            assert welcome["received"] == 1  # the client will not send it again
        ticket = await kiosk.expect("ticket")
        assert ticket["ticket"]["status"] == "waiting"
        async with server.state.db.read() as s:
            assert await s.scalar(select(Ticket.status)) == "waiting"


async def test_a_second_console_mid_call_is_refused_and_the_call_goes_on(
    sqlite_demo_url: str,
) -> None:
    """zhaogang's console is in a call; the console opened again (a second window) is refused
    with console_busy, through the call and its wrap-up, and the call carries on (replacing the
    console cut the resident off). His board is no console: welcome. Once the wrap-up is done,
    a new console replaces the old one, answering calls as the old one did (rung at once); one
    that replaces a console set away is away."""
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk("QG-01")
        ticket = await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        await staff.expect("joined")
        token = await server.staff_token("zhaogang")
        console = {"kind": "staff", "token": token, "purpose": "console"}

        with pytest.raises(Exception, match="console_busy"):
            await SignalingClient(server.base_url, server.http).connect(console)
        chat = {"kind": "chat", "text": "还在吗"}
        await kiosk.send({"type": "app", "to": staff.session_id, "data": chat})
        assert (await staff.expect("app"))["data"] == chat
        board = await server.connect({**console, "purpose": "board"})
        assert board.session_id

        await kiosk.send({"type": "call.hangup"})
        await staff.expect("wrapup")
        with pytest.raises(Exception, match="console_busy"):
            await SignalingClient(server.base_url, server.http).connect(console)
        await staff.send({"type": "wrapup.done", "outcome": "resolved", "note": ""})
        await staff.expect("presence", state="available")

        newer = await server.connect(console)
        await newer.expect("presence", state="available")
        await asyncio.wait_for(staff.closed.wait(), 10)
        assert staff.close_code == 4009  # replaced, now that nothing is cut off
        row = await ticket_row(server, ticket["id"])
        assert row.end_reason == "kiosk_hangup" and row.outcome == "resolved"
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        rung = (await newer.expect("ring"))["ticket"]
        assert rung["id"] != ticket["id"] and rung["item"]["code"] == "NYNC-002"
        await kiosk.send({"type": "ticket.cancel"})
        await newer.expect("ring.cancelled")
        await newer.send({"type": "staff.status", "status": "away"})
        await newer.expect("presence", state="away")
        newest = await server.connect(console)
        await newest.expect("presence", state="away")


async def test_a_console_whose_call_session_no_node_holds_is_replaced(
    sqlite_demo_url: str,
) -> None:
    """The row says in a call, but no node holds that console's session (the server restarted
    mid-call, and the page's resume found nothing): its new console is welcome, not refused as
    busy — nobody else is in that call."""
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        async with server.state.db.write() as session:
            await session.execute(
                update(StaffPresence)
                .where(StaffPresence.staff_id == int(staff.welcome["principal"]["id"]))
                .values(state="in_call", session_id="a-session-of-a-server-before-its-restart")
            )
        await staff.drop()
        token = await server.staff_token("zhaogang")
        again = await server.connect({"kind": "staff", "token": token})  # welcomed
        assert again.welcome["principal"]["id"] == staff.welcome["principal"]["id"]


async def test_a_second_kiosk_page_mid_call_is_refused_and_the_call_goes_on(
    sqlite_demo_url: str,
) -> None:
    """QG-01 is in a call; the kiosk page opened again (a second window: the same credential)
    is refused with kiosk_busy, and the call carries on (replacing the kiosk's session cut the
    resident off). Once the call is over, a new page replaces the old one. A call whose session
    no node holds (a server restarted mid-call) refuses nothing."""
    async with running_server(sqlite_demo_url) as server:
        auth = {"kind": "kiosk", "credential": await server.kiosk_credential("QG-01")}
        kiosk = await server.connect(auth)
        staff = await server.staff("zhaogang")
        ticket = await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        await staff.expect("joined")

        with pytest.raises(Exception, match="kiosk_busy"):
            await SignalingClient(server.base_url, server.http).connect(auth)
        chat = {"kind": "chat", "text": "请把证件放在镜头下"}
        await staff.send({"type": "app", "to": kiosk.session_id, "data": chat})
        assert (await kiosk.expect("app"))["data"] == chat
        assert (await ticket_row(server, ticket["id"])).status == "connected"

        await kiosk.send({"type": "call.hangup"})
        await staff.expect("wrapup")
        newer = await server.connect(auth)  # nothing to cut off now: welcomed
        await asyncio.wait_for(kiosk.closed.wait(), 10)
        assert kiosk.close_code == 4009  # replaced
        assert (await ticket_row(server, ticket["id"])).end_reason == "kiosk_hangup"

        async with server.state.db.write() as session:
            await session.execute(
                update(Ticket)
                .where(Ticket.id == ticket["id"])
                .values(status="connected", session_id="a-session-of-a-server-before-its-restart")
            )
        again = await server.connect(auth)  # nobody is in that call: welcomed
        assert again.welcome["principal"]["id"] == newer.welcome["principal"]["id"]


async def test_unknown_or_stale_resume_is_refused(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        kiosk = await server.kiosk()
        stranger = SignalingClient(server.base_url, server.http)
        stranger.welcome = {"session": kiosk.session_id, "token": "wrong", "resumed": False}
        with pytest.raises(Exception, match="no_such_session"):
            await stranger.resume()
        stranger.welcome = {"session": "nobody", "token": "x"}
        with pytest.raises(Exception, match="no_such_session"):
            await stranger.resume()
        # A token that is not ASCII is a wrong one too, not an internal error.
        stranger.welcome = {"session": kiosk.session_id, "token": "令牌", "resumed": False}
        with pytest.raises(Exception, match="no_such_session"):
            await stranger.resume()


async def test_abandon_after_the_grace_period(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, grace_seconds=1) as server:
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "NYNC-002")  # nobody on duty
        assert ticket["estimated_wait_seconds"] is None and ticket["staff_on_duty"] == 0
        await kiosk.drop()
        # The server's grace timer decides when; wait for its outcome, not a guessed interval.
        deadline = time.monotonic() + 15
        while (row := await ticket_row(server, ticket["id"])).status != "abandoned":
            assert time.monotonic() < deadline, row.status
            await asyncio.sleep(0.05)
        assert row.end_reason == "kiosk_gone"
        with pytest.raises(Exception, match="no_such_session"):
            await kiosk.resume()


async def test_server_restart_keeps_waiting_tickets(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        credential = await server.kiosk_credential("QG-01")
        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        ticket = await take_ticket(kiosk, "RSJ-009")
    async with running_server(sqlite_demo_url, grace_seconds=5) as server:
        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        again = (await kiosk.expect("ticket"))["ticket"]
        assert again["id"] == ticket["id"] and again["number"] == ticket["number"]
        assert again["status"] == "waiting" and again["position"] == 1
        staff = await server.staff("chenjing")
        assert (await staff.expect("ring"))["ticket"]["id"] == ticket["id"]


async def test_relay_outside_the_call_is_refused(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        outsider = await server.kiosk("TL-01", "DLW-TL")
        await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        await outsider.send({"type": "offer", "sdp": "v=0", "to": staff.session_id})
        refused = await outsider.expect("error")
        assert refused["code"] == "not_in_call" and refused["ref"] == "offer"
        await kiosk.send({"type": "app", "data": "x", "to": outsider.session_id})
        assert (await kiosk.expect("error"))["code"] == "not_in_call"
        await kiosk.send({"type": "app", "data": "hello", "to": staff.session_id})
        assert (await staff.expect("app"))["data"] == "hello"
        assert outsider.drain("app") == []
        await outsider.send({"type": "ring.accept", "ticket": 1})
        assert (await outsider.expect("error"))["code"] == "forbidden"


async def test_revoked_kiosk_is_refused_at_once(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        credential = await server.kiosk_credential("QG-01")
        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        admin_token = await server.staff_token("admin")
        async with server.http.post(
            "/api/v1/admin/kiosks/QG-01/revoke", cookies={"cloudhelp_session": admin_token}
        ) as response:
            assert response.status == 200, await response.text()
        await asyncio.wait_for(kiosk.closed.wait(), 5)
        assert kiosk.close_code == 4003
        with pytest.raises(Exception, match=r"auth_failed|revoked"):
            await server.connect({"kind": "kiosk", "credential": credential})


async def test_a_kiosk_revoked_elsewhere_is_disconnected_by_the_periodic_check(
    sqlite_demo_url: str,
) -> None:
    """Revoked outside this server (``cloudhelp kiosk revoke``, or another node): the check
    every REVOCATION_CHECK_SECONDS closes the kiosk's socket (4003); other kiosks stay."""
    async with running_server(sqlite_demo_url) as server:
        revoked = await server.connect(
            {"kind": "kiosk", "credential": await server.kiosk_credential("QG-01")}
        )
        other = await server.kiosk("TL-01", "DLW-TL")
        async with server.state.db.write() as session:
            await accounts.revoke_kiosk(session, "QG-01")
        await asyncio.wait_for(revoked.closed.wait(), REVOCATION_CHECK_SECONDS + 5)
        assert revoked.close_code == 4003
        await other.send({"type": "ping", "id": "still-here"})
        assert (await other.expect("pong"))["id"] == "still-here"


async def test_bad_messages_get_errors_while_a_call_carries_on(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        kiosk_peer, staff_peer = CallPeer(kiosk), CallPeer(staff)
        try:
            await take_ticket(kiosk, "NYNC-002")
            await answer(staff)
            await asyncio.wait_for(staff_peer.connected.wait(), 20)

            vandal = await server.kiosk("TL-01", "DLW-TL")
            assert vandal.ws is not None
            cases = [
                ("not json", "bad_message"),
                ("[1,2]", "bad_message"),
                ('{"type": 5}', "bad_message"),
                ('{"type": "teleport"}', "unknown_type"),
                ('{"type": "ticket.take"}', "bad_message"),
                ('{"type": "ticket.take", "item": "NOPE"}', "no_such_item"),
                ('{"type": "ticket.take", "item": "SCJG-014"}', "not_cloud"),
                ('{"type": "hello", "v": 1}', "already_authenticated"),
                ('{"type": "candidate", "candidate": {"candidate": 7}}', "bad_message"),
                ('{"type": "staff.status", "status": "available"}', "forbidden"),
                ('{"type": "call.hangup"}', "not_in_call"),
                ('{"type": "app", "data": "' + "x" * 70_000 + '"}', "too_large"),
            ]
            for text, code in cases:
                await vandal.ws.send_str(text)
                error = await vandal.expect("error")
                assert error["code"] == code, (text[:40], error)
                assert error["message"]
            await vandal.ws.send_bytes(b"\x00\x01")
            assert (await vandal.expect("error"))["code"] == "bad_message"

            # A flood closes only the flooder's connection, with a clear close code.
            for _ in range(400):
                await vandal.ws.send_str('{"type": "ping"}')
            await asyncio.wait_for(vandal.closed.wait(), 10)
            assert vandal.close_code == 4008

            frames = staff_peer.frames_of(0)
            await until(lambda: staff_peer.frames_of(0) > frames + 10, what="call carries on")
            await kiosk.send({"type": "app", "data": "still here"})
            assert (await staff.expect("app"))["data"] == "still here"
        finally:
            await kiosk_peer.close()
            await staff_peer.close()


async def test_two_servers_never_give_one_ticket_to_two_staff(demo_url: str) -> None:
    from signaling.broker import InProcessBroker

    broker = InProcessBroker()
    async with (
        running_server(demo_url, broker=broker) as one,
        running_server(demo_url, broker=broker) as two,
    ):
        kiosk = await one.kiosk()
        wangli = await one.staff("wangli", available=False)
        chenjing = await two.staff("chenjing", available=False)
        ticket = await take_ticket(kiosk, "SCJG-001")
        results = await picked_at_once([wangli, chenjing], ticket["id"])
        assert results.count("joined") == 1, results
        assert any("ticket_taken" in r for r in results), results
        # The kiosk, on server one, joins the winner even if the winner is on server two.
        joined = await kiosk.expect("joined")
        assert joined["peers"][0]["role"] == "staff"


async def test_relay_only_call_through_coturn(sqlite_demo_url: str) -> None:
    url, secret = turn_server()
    async with running_server(sqlite_demo_url, turn_urls=[url], turn_secret=secret) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        (ice,) = kiosk.welcome["ice_servers"]
        expiry, name = ice["username"].split(":")
        assert name == kiosk.session_id and int(expiry) > time.time()
        kiosk_peer = CallPeer(kiosk, relay_only=True)
        staff_peer = CallPeer(staff, relay_only=True)
        try:
            await take_ticket(kiosk, "NYNC-001")
            await answer(staff)
            await asyncio.wait_for(kiosk_peer.connected.wait(), 30)
            await until(lambda: staff_peer.frames_of(0) >= 5, what="video through TURN")
            for peer in (kiosk_peer, staff_peer):
                transport = peer.pc.getTransceivers()[0].sender.transport.transport
                kinds = {c.type for c in transport.iceGatherer.getLocalCandidates()}
                assert kinds == {"relay"}
                pair = transport._connection._nominated[1]
                assert pair.local_candidate.type == "relay"
        finally:
            await kiosk_peer.close()
            await staff_peer.close()


async def test_a_call_whose_media_failed_records_why(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        await kiosk.send({"type": "call.hangup", "reason": "media_failed"})
        assert (await staff.expect("left"))["reason"] == "media_failed"
        row = await ticket_row(server, ticket["id"])
        assert row.end_reason == "media_failed"
        await kiosk.send({"type": "call.hangup", "reason": "bored"})
        assert (await kiosk.expect("error"))["code"] == "bad_message"
