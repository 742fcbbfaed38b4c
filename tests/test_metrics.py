"""Metric formulas against a hand-computed fixture: abandons, a transfer, a call across midnight."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from cloudhelp import metrics
from cloudhelp.db import Database
from cloudhelp.models import Kiosk, Rating, ServiceItem, Staff, Station, Ticket, TicketEvent
from cloudhelp.queue import LOCAL_TZ

DAY = date(2026, 11, 23)  # a Monday


def at(hh: int, mm: int, ss: int = 0, days: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=LOCAL_TZ) + timedelta(
        days=days
    )


async def test_formulas_match_a_hand_computed_day(demo_engine) -> None:
    database = Database(demo_engine)
    async with database.write() as s:
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
        station = await s.scalar(select(Station).where(Station.code == "DLW-QG"))
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        staff = await s.scalar(select(Staff).where(Staff.username == "zhaogang"))
        assert item and station and kiosk and staff

        def ticket(n: int, status: str, enqueued: datetime, **times: datetime | None) -> Ticket:
            row = Ticket(
                day=DAY.isoformat(), number=f"B{n:03d}", item_id=item.id,
                department_id=item.department_id, station_id=station.id, kiosk_id=kiosk.id,
                status=status, enqueued_at=enqueued,
                staff_id=staff.id if "connected_at" in times else None, **times,
            )  # fmt: skip
            s.add(row)
            return row

        t1 = ticket(1, "completed", at(9, 0), connected_at=at(9, 1), ended_at=at(9, 11),
                    wrapup_done_at=at(9, 12), closed_at=at(9, 12))  # fmt: skip
        t2 = ticket(2, "completed", at(9, 5), connected_at=at(9, 9), ended_at=at(9, 19),
                    wrapup_done_at=at(9, 20), closed_at=at(9, 20))  # fmt: skip
        ticket(3, "abandoned", at(9, 10), closed_at=at(9, 15))
        ticket(4, "cancelled", at(9, 20), closed_at=at(9, 20, 5))  # a short abandon
        # Across midnight: counted on the day it was enqueued.
        ticket(5, "completed", at(23, 58), connected_at=at(0, 3, days=1),
               ended_at=at(0, 13, days=1), wrapup_done_at=at(0, 14, days=1),
               closed_at=at(0, 14, days=1))  # fmt: skip
        # Transferred once: the wait runs from the original enqueue to the final answer.
        ticket(6, "completed", at(10, 0), connected_at=at(10, 10), ended_at=at(10, 20),
               wrapup_done_at=at(10, 21), closed_at=at(10, 21))  # fmt: skip
        await s.flush()
        s.add_all([
            TicketEvent(ticket_id=t1.id, kind="offered", at=at(9, 0, 30)),
            TicketEvent(ticket_id=t2.id, kind="offered", at=at(9, 6)),
            Rating(ticket_id=t1.id, level=5), Rating(ticket_id=t2.id, level=2),
        ])  # fmt: skip
    async with database.read() as s:
        facts = await metrics.ticket_facts(s, DAY, DAY)

    assert len(facts) == 6
    (day,) = metrics.report(facts, "day")
    assert day["day"] == "2026-11-23"
    assert (day["tickets"], day["answered"], day["abandoned"], day["short_abandons"]) == (
        6,
        4,
        1,
        1,
    )
    assert day["abandon_rate"] == 1 / 5
    # waits: 60, 240, 300 (midnight), 600 (transfer)
    assert day["wait_mean_s"] == 300 and day["wait_p90_s"] == 600
    assert day["handling_mean_s"] == 660 and day["handling_p90_s"] == 660
    assert day["service_level"] == 1 / 4
    assert (day["ratings"], day["good_rate"], day["rating_response_rate"]) == (2, 0.5, 0.5)
    by_id = {f.ticket_id: f for f in facts}
    assert by_id[t1.id].answer_delay == 30 and by_id[t2.id].answer_delay == 180

    (department,) = metrics.report(facts, "department")
    assert department["department"] == "NYNC" and department["tickets"] == 6
    grid = metrics.peak_hours(facts)
    assert grid[0][9] == 4 and grid[0][10] == 1 and grid[0][23] == 1 and sum(map(sum, grid)) == 6
    assert metrics.hot_items(facts) == [("NYNC-002", 6)]
    assert metrics.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9


async def test_report_api_and_csv_export_agree(sqlite_demo_url: str) -> None:
    import csv
    import io

    import pytest

    from tests.callkit import running_server
    from tests.test_call_core import answer, take_ticket

    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        await kiosk.send({"type": "call.hangup"})
        await staff.expect("wrapup")
        await staff.send({"type": "wrapup.done", "outcome": "resolved"})
        await staff.expect("presence", state="available")
        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}
        async with server.http.get("/api/v1/reports?by=item", cookies=supervisor) as r:
            body = await r.json()
        (row,) = body["rows"]
        assert row["item"] == "NYNC-002" and row["tickets"] == 1 and row["answered"] == 1
        assert body["hot_items"][0]["name"] == "渔业捕捞许可证换发（延续）"
        async with server.http.get("/api/v1/reports?by=item&format=csv", cookies=supervisor) as r:
            table = list(csv.DictReader(io.StringIO(await r.text())))
        assert table[0]["item"] == "NYNC-002" and table[0]["tickets"] == "1"
        assert float(table[0]["handling_mean_s"]) == pytest.approx(row["handling_mean_s"])
        async with server.http.get("/api/v1/reports?by=moon", cookies=supervisor) as r:
            assert r.status == 400
        staff_only = {"cloudhelp_session": await server.staff_token("wangli")}
        async with server.http.get("/api/v1/reports", cookies=staff_only) as r:
            assert r.status == 403
