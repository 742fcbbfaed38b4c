"""The call core end to end: real server, real WebSockets, real aiortc peers.

Each test reads as a conversation between a kiosk, staff members and the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from cloudhelp.models import Department, Ticket, TicketEvent
from cloudhelp.peer import CallPeer, SignalingClient
from tests.callkit import CallServer, running_server

pytestmark = pytest.mark.usefixtures("loopback_ice")


async def until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)


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
        try:
            ticket = await take_ticket(kiosk, "NYNC-002")
            assert ticket["number"] == "B001" and ticket["item"]["code"] == "NYNC-002"
            assert ticket["status"] in ("waiting", "offered")

            offer = await answer(staff)
            assert offer["ticket"]["id"] == ticket["id"] and offer["ring_seconds"] == 20
            joined_kiosk = await kiosk.expect("joined")
            joined_staff = await staff.expect("joined")
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

            await kiosk.send({"type": "app", "data": {"chat": "您好，请看材料"}})
            chat = await staff.expect("app")
            assert chat["data"] == {"chat": "您好，请看材料"} and chat["from"] == kiosk.session_id

            await kiosk.send({"type": "call.hangup"})
            assert (await staff.expect("left"))["reason"] == "kiosk_hangup"
            await kiosk.expect("left")
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
