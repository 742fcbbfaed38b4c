"""A burst of tickets against as many available staff, and the relay of what the pages send
(with ``to``), over a real server and real WebSockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

from sqlalchemy import func, select

from cloudhelp.domain import accounts, catalog
from cloudhelp.media.peer import SignalingClient
from cloudhelp.store.models import Staff, StaffLogin, StaffSkill, Station, TicketEvent, utcnow
from tests.callkit import CallServer, running_server

ITEM = "SCJG-001"


async def signed_in_staff(server: CallServer, count: int) -> list[SignalingClient]:
    """``count`` new staff members who handle ITEM's department, each with a console open and
    available."""
    tokens = [secrets.token_urlsafe(24) for _ in range(count)]
    async with server.state.db.write() as s:
        hall = await s.scalar(select(Station).where(Station.code == "GJZ-HALL"))
        item = await catalog.get_item(s, ITEM)
        assert hall is not None and item is not None
        for n, token in enumerate(tokens):
            person = Staff(username=f"burst{n}", display_name=f"值班{n}", station_id=hall.id)
            person.skills = [StaffSkill(department_id=item.department_id)]
            s.add(person)
            await s.flush()
            expires = utcnow() + timedelta(hours=1)
            s.add(StaffLogin(token_hash=accounts.token_hash(token), staff_id=person.id,
                             expires_at=expires))  # fmt: skip
    consoles = [await server.connect({"kind": "staff", "token": t}) for t in tokens]
    for console in consoles:
        await console.expect("presence", state="away")
        await console.send({"type": "staff.status", "status": "available"})
        await console.expect("presence", state="available")
    return consoles


async def test_a_burst_of_tickets_rings_each_available_staff_member_once(demo_url: str) -> None:
    count = 12
    async with running_server(demo_url) as server:
        consoles = await signed_in_staff(server, count)
        kiosks = [await server.kiosk(f"BURST-{n}") for n in range(count)]
        # Every kiosk takes a ticket at once; no console says anything back yet.
        await asyncio.gather(*(k.send({"type": "ticket.take", "item": ITEM}) for k in kiosks))
        taken = [await k.expect("ticket") for k in kiosks]
        rings = await asyncio.gather(*(c.expect("ring", timeout=20) for c in consoles))

        rung = sorted(r["ticket"]["id"] for r in rings)
        assert rung == sorted(t["ticket"]["id"] for t in taken), "every ticket rang someone"
        await asyncio.sleep(0.5)
        assert [c.drain("ring") for c in consoles] == [[]] * count, "nobody rang twice"
        async with server.state.db.read() as s:
            offered = await s.scalar(
                select(func.count()).where(
                    TicketEvent.kind == "offered", TicketEvent.ticket_id.in_(rung)
                )
            )
        assert offered == count, "each ticket was offered exactly once"

        # Every ring is answered: each kiosk is in a call with the one who answered.
        for console, ring in zip(consoles, rings, strict=True):
            await console.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        for console in consoles:  # an `error` frame (say, not_your_offer) raises here
            await console.expect("joined")
        for kiosk in kiosks:
            await kiosk.expect("joined")


async def test_a_relayed_message_keeps_to_and_gets_the_real_sender_and_seq(
    demo_url: str,
) -> None:
    async with running_server(demo_url) as server:
        [console] = await signed_in_staff(server, 1)
        kiosk = await server.kiosk("RELAY-1")
        await kiosk.send({"type": "ticket.take", "item": ITEM})
        ring = await console.expect("ring")
        await console.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        await kiosk.expect("joined")
        await console.expect("joined")
        kiosk.drain("ticket")

        # A page that forges the sender, the sequence number or a snapshot key is refused.
        for field, value in (("from", "forged-sender"), ("seq", 999_999), ("_key", "ticket")):
            forged = {"type": "app", "data": {"kind": "chat", "text": "?"},
                      "to": kiosk.session_id, field: value}  # fmt: skip
            await console.send(forged)
            refused = await console.expect("error")
            assert refused["code"] == "bad_message" and refused["ref"] == "app", refused
        # Without data, or ``to`` not a session id: refused, the field named.
        for bad, field in (
            ({"type": "app"}, "data"),
            ({"type": "app", "data": 1, "to": 7}, "to"),
            ({"type": "app", "data": 1, "to": ""}, "to"),
            ({"type": "app", "data": 1, "to": "x" * 65}, "to"),
        ):
            await console.send(bad)
            refused = await console.expect("error")
            assert refused["code"] == "bad_message", refused
            assert refused["message"].startswith(f"Field {field}"), refused

        # What protocol.js sends: ``to`` names the receiver and stays; ``from`` is added.
        sent = {"type": "app", "data": {"kind": "chat", "text": "您好"}, "to": kiosk.session_id}
        await console.send(sent)
        chat = await kiosk.expect("app")
        assert chat == sent | {"from": console.session_id, "seq": chat["seq"]}

        # Without ``to`` it goes to every other member of the call, numbered next.
        await console.send({"type": "app", "data": {"kind": "chat", "text": "第二条"}})
        second = await kiosk.expect("app")
        assert second["seq"] == chat["seq"] + 1 and "to" not in second
        assert kiosk.drain("app") == [], "the forged frames were not relayed"


async def test_a_refused_take_in_a_burst_fails_alone(demo_url: str) -> None:
    """Takes that arrive together are read and written in one transaction: one that is
    refused (this kiosk already has a ticket, no such item, an item not handled by video)
    fails on its own, the others are written."""
    async with running_server(demo_url) as server:
        kiosks = [await server.kiosk(f"BATCH-{n}") for n in range(6)]
        unknown, hall_only = await server.kiosk("BATCH-X"), await server.kiosk("BATCH-Y")
        await kiosks[0].send({"type": "ticket.take", "item": ITEM})
        first = await kiosks[0].expect("ticket")
        # The same kiosk again, with five others and two refused items, all at once.
        await asyncio.gather(
            *(k.send({"type": "ticket.take", "item": ITEM}) for k in kiosks),
            unknown.send({"type": "ticket.take", "item": "NOPE-404"}),
            hall_only.send({"type": "ticket.take", "item": "SCJG-014"}),
        )
        refused = await kiosks[0].expect("error")
        assert refused["code"] == "ticket_open" and refused["ref"] == "ticket.take"
        assert (await unknown.expect("error"))["code"] == "no_such_item"
        assert (await hall_only.expect("error"))["code"] == "not_cloud"
        taken = [(await k.expect("ticket"))["ticket"] for k in kiosks[1:]]
        numbers = [t["number"] for t in taken]
        assert len(set(numbers)) == 5 and first["ticket"]["number"] not in numbers
        assert all(t["status"] == "waiting" for t in taken)
