"""Queue core: one ticket numbering for history and live tickets, sessions of one person in
several roles, snapshot order, and a call that survives a page reload. Real server, real
WebSockets, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import func, insert, select

from cloudhelp import history
from cloudhelp.models import Kiosk, ServiceItem, Ticket, TicketCounter, utcnow
from cloudhelp.queue import LOCAL_TZ, local_day
from tests.callkit import running_server


async def test_a_live_ticket_follows_todays_history(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        db = server.state.db
        today = local_day(utcnow())
        end_of_today = datetime.combine(
            datetime.fromisoformat(today).date(), time(23, 59), LOCAL_TZ
        )
        made = await history.generate(db, 1, tickets_per_day=200, until=end_of_today)
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
