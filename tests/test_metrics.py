"""Metric formulas against hand-computed fixtures: abandons, a transfer, a call across midnight,
cases with and without corrections, week and month groups."""

from __future__ import annotations

import asyncio
import bisect
import csv
import functools
import io
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select, update

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.devtools import history
from cloudhelp.domain import metrics
from cloudhelp.http import report_routes
from cloudhelp.store.db import Database
from cloudhelp.store.models import (
    HISTOGRAM_EDGES,
    Case,
    CaseEvent,
    CorrectionNotice,
    Kiosk,
    Rating,
    ServiceItem,
    Staff,
    StaffSkill,
    Station,
    Ticket,
    TicketEvent,
    utcnow,
)
from cloudhelp.store.rollups import daily_stats
from tests.callkit import running_server
from tests.test_call_core import answer, take_ticket

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
        t6 = ticket(6, "completed", at(10, 0), connected_at=at(10, 10), ended_at=at(10, 20),
               wrapup_done_at=at(10, 21), closed_at=at(10, 21))  # fmt: skip
        # Two days later, same week and month: counted in those groups, not in the day.
        ticket(7, "abandoned", at(15, 0, days=2), closed_at=at(15, 2, days=2))
        await s.flush()
        s.add_all([
            TicketEvent(ticket_id=t1.id, kind="offered", at=at(9, 0, 30)),
            TicketEvent(ticket_id=t2.id, kind="offered", at=at(9, 6)),
            Rating(ticket_id=t1.id, level=5), Rating(ticket_id=t2.id, level=2),
            Rating(ticket_id=t6.id, level=None),  # skipped: not a rating
        ])  # fmt: skip

        # Cases: one passes pre-review after one correction notice, one at the first try
        # and is concluded the same day, one is opened and still in pre-review.
        def case(n: int, opened: datetime, **fields: object) -> Case:
            row = Case(
                number=f"T{n}", item_id=item.id, station_id=station.id, staff_id=staff.id,
                applicant_name="张三", applicant_phone="13800000000",
                applicant_id_number="11010519491231002X", created_at=opened, **fields,
            )  # fmt: skip
            s.add(row)
            return row

        corrected = case(1, at(9, 0, days=-1), status="awaiting_acceptance", rounds=2)
        first_try = case(2, at(9, 1), status="concluded", concluded_at=at(16, 0))
        case(3, at(11, 0), status="pre_review")
        await s.flush()
        s.add_all([
            CorrectionNotice(case_id=corrected.id, round=1, issued_at=at(9, 5, days=-1),
                             issued_by="zhaogang", items=[]),
            CaseEvent(case_id=corrected.id, from_state="pre_review",
                      to_state="awaiting_acceptance", actor="zhaogang", at=at(9, 30)),
            CaseEvent(case_id=first_try.id, from_state="pre_review",
                      to_state="awaiting_acceptance", actor="zhaogang", at=at(9, 20)),
        ])  # fmt: skip

    assert await metrics.refresh(database, DAY, DAY + timedelta(days=4)) == 5
    async with database.read() as s:
        facts = await metrics.ticket_facts(s, DAY, DAY)
        (day,) = await metrics.table(s, DAY, DAY, "day")
        (department,) = await metrics.table(s, DAY, DAY, "department")
        (week,) = await metrics.table(s, DAY, DAY + timedelta(days=6), "week")
        (month,) = await metrics.table(s, DAY, DAY + timedelta(days=6), "month")
        total = await metrics.total(s, DAY, DAY + timedelta(days=6))
        grid = await metrics.peak_hours(s, DAY, DAY)
        hot = await metrics.hot_items(s, DAY, DAY)

    assert len(facts) == 6
    assert day["day"] == "2026-11-23"
    assert (day["tickets"], day["answered"], day["abandoned"], day["short_abandons"]) == (
        6,
        4,
        1,
        1,
    )
    assert day["abandon_rate"] == 1 / 5
    # waits: 60, 240, 300 (midnight), 600 (transfer); the 90th-percentile rank (3.6 of 4)
    # lies 0.6 of the way into the bucket (480, 600], which holds one wait.
    assert day["wait_mean_s"] == 300 and day["wait_p90_s"] == pytest.approx(480 + 120 * 0.6)
    # handling: 660 each; the bucket (600, 720] ends at the largest value seen.
    assert day["handling_mean_s"] == 660
    assert day["handling_p90_s"] == pytest.approx(600 + 60 * 3.6 / 4)
    assert day["service_level"] == 1 / 4
    assert (day["ratings"], day["good_rate"], day["rating_response_rate"]) == (2, 0.5, 0.5)
    assert day["trips_saved"] == 4
    assert (day["cases_opened"], day["cases_concluded"], day["cases_passed_pre_review"]) == (
        2,
        1,
        2,
    )
    assert day["correction_rounds_per_case"] == 1 / 2 and day["first_pass_rate"] == 1 / 2
    by_id = {f.ticket_id: f for f in facts}
    assert by_id[t1.id].answer_delay == 30 and by_id[t2.id].answer_delay == 180

    assert department["department"] == "NYNC" and department["tickets"] == 6
    assert week["week"] == "2026-11-23" and week["tickets"] == 7 and week["abandoned"] == 2
    assert month["month"] == "2026-11-01" and month["tickets"] == 7
    assert total["tickets"] == 7 and total["cases_opened"] == 2  # the first case opened on the 22nd
    assert grid[0][9] == 4 and grid[0][10] == 1 and grid[0][23] == 1 and sum(map(sum, grid)) == 6
    assert hot == [{"code": "NYNC-002", "name": item.name, "tickets": 6}]


def test_percentile_from_histogram_interpolates_inside_its_bucket() -> None:
    counts = [0] * (len(HISTOGRAM_EDGES) + 1)
    for seconds in range(1, 101):  # 1 … 100 s, spread evenly: the reading is exact
        counts[bisect.bisect_left(HISTOGRAM_EDGES, seconds)] += 1
    assert metrics.percentile_from_histogram(counts, 100, 0.9) == 90  # on an edge
    assert metrics.percentile_from_histogram(counts, 100, 0.5) == 50  # inside (45, 60]
    assert metrics.percentile_from_histogram([0] * len(counts), 0, 0.9) is None
    # Ten waits of 8-9 minutes and one of 20: p90 falls in (480, 600], not on its edge.
    counts = [0] * (len(HISTOGRAM_EDGES) + 1)
    counts[bisect.bisect_left(HISTOGRAM_EDGES, 500)] = 10
    counts[bisect.bisect_left(HISTOGRAM_EDGES, 1200)] = 1
    p90 = metrics.percentile_from_histogram(counts, 1200, 0.9)
    assert p90 == pytest.approx(480 + 120 * 9.9 / 10)
    # Capped by the largest value seen: one wait of 95 s reads 95, not the edge 120.
    counts = [0] * (len(HISTOGRAM_EDGES) + 1)
    counts[bisect.bisect_left(HISTOGRAM_EDGES, 95)] = 1
    assert metrics.percentile_from_histogram(counts, 95, 0.9) == pytest.approx(90 + 5 * 0.9)
    counts = [0] * (len(HISTOGRAM_EDGES) + 1)
    counts[-1] = 3  # beyond the last edge: the bucket ends at the largest value
    assert metrics.percentile_from_histogram(counts, 9000, 0.9) == pytest.approx(7200 + 1800 * 0.9)


async def _one_waiting_ticket_on_day(database: Database) -> tuple[ServiceItem, Kiosk]:
    """Ticket B001 for NYNC-002 at kiosk QG-01, waiting since 09:00 on DAY; returns both."""
    async with database.write() as s:
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        assert item and kiosk
        s.add(Ticket(day=DAY.isoformat(), number="B001", item_id=item.id,
                     department_id=item.department_id, station_id=kiosk.station_id,
                     kiosk_id=kiosk.id, status="waiting", enqueued_at=at(9, 0)))  # fmt: skip
    return item, kiosk


async def test_a_day_is_final_only_when_over_and_its_tickets_closed(demo_engine) -> None:
    database = Database(demo_engine)
    await _one_waiting_ticket_on_day(database)
    assert await metrics.refresh(database, DAY, DAY) == 1
    assert await metrics.refresh(database, DAY, DAY) == 0  # fresh enough: not rebuilt
    assert await metrics.refresh(database, DAY, DAY, max_age=timedelta(0)) == 1  # still open
    async with database.write() as s:
        ticket = await s.scalar(select(Ticket).where(Ticket.number == "B001"))
        assert ticket
        ticket.status, ticket.closed_at = "abandoned", at(9, 30)
    assert await metrics.refresh(database, DAY, DAY, max_age=timedelta(0)) == 1
    assert await metrics.refresh(database, DAY, DAY, max_age=timedelta(0)) == 0  # final now
    async with database.read() as s:
        (row,) = await metrics.table(s, DAY, DAY, "station")
    assert row["station"] == "DLW-QG" and row["abandoned"] == 1 and row["abandon_rate"] == 1


async def test_days_before_anything_was_recorded_are_not_built_until_something_is(
    demo_engine,
) -> None:
    """A range reaching back before the first ticket builds only from that ticket's day; a
    case opened earlier later (data brought in) reaches back, and those days are built then."""
    database = Database(demo_engine)
    item, kiosk = await _one_waiting_ticket_on_day(database)
    year_before = DAY - timedelta(days=365)
    now = at(12, 0, days=1)
    assert await metrics.refresh(database, year_before, DAY, now=now) == 1  # DAY alone
    async with database.read() as s:
        assert [row["day"] for row in await metrics.table(s, year_before, DAY, "day")] == [
            DAY.isoformat()
        ]
    async with database.write() as s:
        s.add(Case(number="T1", item_id=item.id, station_id=kiosk.station_id,
                   applicant_name="张三", applicant_phone="13800000000",
                   applicant_id_number="11010519491231002X",
                   created_at=at(10, 0, days=-3)))  # fmt: skip
    assert await metrics.refresh(database, year_before, DAY, now=now) == 3  # DAY-3 to DAY-1
    async with database.read() as s:
        (opened,) = [
            row
            for row in await metrics.table(s, year_before, DAY, "day")
            if row["day"] == (DAY - timedelta(days=3)).isoformat()
        ]
    assert opened["cases_opened"] == 1


async def test_report_api_and_csv_export_agree(sqlite_demo_url: str) -> None:

    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang", available=False)
        kiosk = await server.kiosk()
        taken = await take_ticket(kiosk, "NYNC-002")
        # The kiosk's socket drops while it waits; the resumed session keeps its ticket.
        await kiosk.drop()
        await asyncio.sleep(0.3)
        await kiosk.resume()
        await staff.send({"type": "staff.status", "status": "available"})
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
        async with server.state.db.read() as s:
            ticket = await s.get(Ticket, taken["id"])
            assert ticket and ticket.connected_at
            waited = (ticket.connected_at - ticket.enqueued_at).total_seconds()
        assert waited > 0.3 and row["wait_mean_s"] == pytest.approx(waited)
        assert body["hot_items"][0]["name"] == "渔业捕捞许可证换发（延续）"
        async with server.http.get("/api/v1/reports?by=item&format=csv", cookies=supervisor) as r:
            text = await r.text()
        assert text.startswith("\ufeff")  # Excel reads the Chinese names as UTF-8
        # Headed in the reader's language (zh-CN by default), figures rounded as in the workbook.
        table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert table[0]["事项编码"] == "NYNC-002" and table[0]["取号"] == "1"
        assert table[0]["名称"] == row["name"] == "渔业捕捞许可证换发（延续）"
        assert float(table[0]["平均办理（秒）"]) == round(row["handling_mean_s"], 1)
        assert table[0]["放弃率"] == "0.0%" and table[0]["60 秒接通率"] == "100.0%"
        url = "/api/v1/reports?by=item&format=csv&lang=en"
        async with server.http.get(url, cookies=supervisor) as r:
            english = list(csv.DictReader(io.StringIO((await r.text()).lstrip("\ufeff"))))
        assert english[0]["Abandon rate"] == "0.0%" and english[0]["Item code"] == "NYNC-002"
        for name, first_cell in (("peak_hours", "周一"), ("hot_items", "NYNC-002")):
            url = f"/api/v1/reports?format=csv&table={name}"
            async with server.http.get(url, cookies=supervisor) as r:
                lines = list(csv.reader(io.StringIO((await r.text()).lstrip("\ufeff"))))
            assert len(lines) > 1 and first_cell in {line[0] for line in lines[1:]}
        (hot,) = [line for line in lines if line[0] == "NYNC-002"]
        assert hot == ["NYNC-002", "渔业捕捞许可证换发（延续）", "1"]
        async with server.http.get("/api/v1/reports?by=moon", cookies=supervisor) as r:
            assert r.status == 400
        async with server.http.get("/api/v1/reports?format=pdf", cookies=supervisor) as r:
            assert r.status == 400 and "xlsx" in (await r.json())["error"]["message"]
        staff_only = {"cloudhelp_session": await server.staff_token("wangli")}
        async with server.http.get("/api/v1/reports", cookies=staff_only) as r:
            assert r.status == 403


async def test_the_district_sets_short_abandons_and_the_service_level(demo_engine) -> None:
    database = Database(demo_engine)
    async with database.write() as s:
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        assert item and kiosk
        common = {"day": DAY.isoformat(), "item_id": item.id, "department_id": item.department_id,
                  "station_id": kiosk.station_id, "kiosk_id": kiosk.id}  # fmt: skip
        s.add(Ticket(number="B001", status="cancelled", enqueued_at=at(9, 0),
                     closed_at=at(9, 0, 5), **common))  # fmt: skip
        s.add(Ticket(number="B002", status="completed", enqueued_at=at(9, 0),
                     connected_at=at(9, 1, 30), ended_at=at(9, 5), closed_at=at(9, 5),
                     **common))  # fmt: skip

    await metrics.refresh(database, DAY, DAY)  # final with the defaults (10 s, 60 s) …
    async with database.read() as s:
        (default,) = await metrics.table(s, DAY, DAY, "day")
    assert (default["short_abandons"], default["abandoned"], default["service_level"]) == (1, 0, 0)
    # … and a final day is not recounted; a district's own rules apply to days summed afresh.
    async with database.write() as s:
        await metrics.build_day(s, DAY, utcnow(), metrics.Rules(3, 120))
    async with database.read() as s:
        (strict,) = await metrics.table(s, DAY, DAY, "day")
    assert (strict["short_abandons"], strict["abandoned"], strict["service_level"]) == (0, 1, 1)
    # A final day stays as it was summed.
    assert await metrics.refresh(database, DAY, DAY, timedelta(0), metrics.Rules(30, 30)) == 0


async def _stored_rows(database: Database, day: date) -> list[dict]:
    """A day's stored rollup rows, as a full rebuild must equal them (not when they were made)."""
    async with database.read() as s:
        rows = (
            await s.execute(
                select(daily_stats)
                .where(daily_stats.c.day == day)
                .order_by(daily_stats.c.dimension, daily_stats.c.key)
            )
        ).mappings()
        return [{k: v for k, v in r.items() if k not in ("id", "computed_at")} for r in rows]


async def test_generated_history_numbers_each_cases_notices_by_its_own_rounds(demo_engine) -> None:
    """The demo's history: a case's correction notices are its rounds 1, 2, … (not a count
    across cases), its ``rounds`` is 1 + the corrected materials it got back, and a case
    waiting for correction has the notice of its current round (else the board shows a false
    补正告知超时)."""
    database = Database(demo_engine)
    await history.generate(database, 20, tickets_per_day=160, until=at(15, 0))
    async with database.read() as s:
        cases = list((await s.scalars(select(Case))).all())
        notices = list((await s.scalars(select(CorrectionNotice))).all())
    rounds: dict[int, list[int]] = {}
    for notice in notices:
        rounds.setdefault(notice.case_id, []).append(notice.round)
    corrected = [case for case in cases if case.id in rounds]
    assert len(corrected) > 20, "the history has cases with corrections"
    for case in corrected:
        issued = sorted(rounds[case.id])
        assert issued == list(range(1, len(issued) + 1)), (case.number, issued)
        waiting = case.status == "correction_needed"
        assert case.rounds == len(issued) + (0 if waiting else 1), (case.number, case.status)
    assert any(case.status == "correction_needed" for case in corrected)
    # What staff do to a case happens while the hall is open: a correction back for review (in
    # the resident's correction session), a pass, an acceptance, a conclusion — on a working
    # day in office hours (the reports showed passes on Sundays without a ticket).
    staff_steps = {("correction_needed", "pre_review"), ("pre_review", "awaiting_acceptance"),
                   ("awaiting_acceptance", "accepted"), ("accepted", "concluded")}  # fmt: skip
    async with database.read() as s:
        events = (await s.scalars(select(CaseEvent))).all()
    moved = [e for e in events if (e.from_state, e.to_state) in staff_steps]
    assert len(moved) > 100
    for event in moved:
        local = event.at.astimezone(LOCAL_TZ)
        assert workdays.is_working_day(local.date())[0], (event.case_id, event.to_state, local)
        assert (8, 30) <= (local.hour, local.minute) and local.hour < 19, (event.case_id, local)
    # Each case is linked to the session it was opened in, and that session's rating to it.
    async with database.read() as s:
        opened_in = dict((await s.execute(select(Ticket.case_id, Ticket.id).where(
            Ticket.case_id.is_not(None)))).all())  # fmt: skip
        rated = (await s.execute(select(Rating.case_id, Rating.ticket_id).where(
            Rating.case_id.is_not(None)))).all()  # fmt: skip
    assert set(opened_in) == {case.id for case in cases}
    assert rated and all(opened_in[case_id] == ticket_id for case_id, ticket_id in rated)
    # Each answered ticket was answered by someone whose skills cover its item (a skill for
    # one item of a department does not make its holder answer the whole department).
    async with database.read() as s:
        answered = (await s.execute(
            select(Ticket.staff_id, ServiceItem.id, ServiceItem.department_id)
            .join(ServiceItem, ServiceItem.id == Ticket.item_id)
            .where(Ticket.staff_id.is_not(None))
        )).all()  # fmt: skip
        skills = (await s.execute(
            select(StaffSkill.staff_id, StaffSkill.item_id, StaffSkill.department_id)
        )).all()  # fmt: skip
    assert answered and any(item is not None for _, item, _ in skills)
    for staff_id, item_id, department_id in answered:
        assert any(
            who == staff_id and (item == item_id or department == department_id)
            for who, item, department in skills
        ), (staff_id, item_id)


async def test_an_open_day_is_rebuilt_from_its_changed_tickets_as_a_full_build_would(
    demo_engine,
) -> None:
    database = Database(demo_engine)
    await history.generate(database, 0, tickets_per_day=160, until=at(15, 0))
    now = at(15, 0).astimezone(UTC)
    assert await metrics.refresh(database, DAY, DAY, now=now) == 1
    async with database.read() as s:
        tickets = list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())
    assert len(tickets) > 50 and metrics.facts_read(database) == len(tickets)

    # What happens between two builds, written as domain/queue.py writes it (version bumped).
    async with database.write() as s:
        rated = {r for (r,) in (await s.execute(select(Rating.ticket_id))).all()}
        served = [t for t in tickets if t.connected_at is not None and t.ended_at is not None]
        # The longest wait of the day is transferred back to a queue: its wait is gone, and the
        # maxima of every row it counted in must be found again.
        longest = max(served, key=lambda t: t.connected_at - t.enqueued_at)
        other = await s.scalar(select(ServiceItem).where(ServiceItem.code == "SCJG-001"))
        assert other
        await s.execute(
            update(Ticket)
            .where(Ticket.id == longest.id)
            .values(status="waiting", department_id=other.department_id, staff_id=None,
                    connected_at=None, ended_at=None, wrapup_done_at=None, closed_at=None,
                    version=Ticket.version + 1)
        )  # fmt: skip
        unrated = [t for t in served if t.id not in rated and t.id != longest.id][:3]
        levels = zip(unrated, (1, 5, 2), strict=True)
        s.add_all([Rating(ticket_id=t.id, level=level) for t, level in levels])
        late = tickets[-1]
        s.add_all([
            Ticket(day=DAY.isoformat(), number=f"N{n:03d}", item_id=late.item_id,
                   department_id=late.department_id, station_id=late.station_id,
                   kiosk_id=late.kiosk_id, status=status, enqueued_at=at(15, n),
                   closed_at=at(15, n, 4) if status == "abandoned" else None)
            for n, status in ((1, "waiting"), (2, "abandoned"))
        ])  # fmt: skip
    changed = 1 + len(unrated) + 2

    later = now + timedelta(minutes=5)
    assert await metrics.refresh(database, DAY, DAY, timedelta(0), now=later) == 1
    assert metrics.facts_read(database) == changed  # only the changed tickets were read
    incremental = await _stored_rows(database, DAY)
    async with database.write() as s:
        await metrics.build_day(s, DAY, later)
    assert await _stored_rows(database, DAY) == incremental
    by_key = {(r["dimension"], r["key"]): r for r in incremental}
    assert by_key["all", ""]["tickets"] == len(tickets) + 2


def _gated_xlsx(gate: str, body: dict[str, Any], groups: list[str], lang: str) -> bytes:
    """xlsx_bytes once the test lets it go (a file ``go`` in ``gate``, at most 10 s); says the
    process it runs in (a file ``pid``)."""
    (Path(gate) / "pid").write_text(str(os.getpid()))
    deadline = time.monotonic() + 10
    while not (Path(gate) / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return report_routes.xlsx_bytes(body, groups, lang)


async def test_the_excel_workbook_is_made_off_the_loop(
    sqlite_demo_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """While the workbook is being made (held until the test lets it go), the server answers
    another report: the workbook is made in a worker process (core/workers.py), whose GIL is
    not the loop's."""
    monkeypatch.setattr(report_routes, "xlsx_bytes", functools.partial(_gated_xlsx, str(tmp_path)))
    async with running_server(sqlite_demo_url) as server:
        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}

        async def export() -> bytes:
            url = "/api/v1/reports?by=day,station&format=xlsx"
            async with server.http.get(url, cookies=supervisor) as r:
                assert r.status == 200
                return await r.read()

        exporting = asyncio.create_task(export())
        for _ in range(500):  # the worker process has started on it
            if (tmp_path / "pid").exists():
                break
            await asyncio.sleep(0.02)
        async with server.http.get("/api/v1/reports?by=item", cookies=supervisor) as r:
            assert r.status == 200
        assert not exporting.done()
        (tmp_path / "go").touch()
        book = openpyxl.load_workbook(io.BytesIO(await exporting))
    assert int((tmp_path / "pid").read_text()) != os.getpid()
    assert len(book.sheetnames) == 2 + len(report_routes.TABLES) - 1
