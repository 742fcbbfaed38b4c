"""Time-out warnings (超时预警): each fires and clears at the right moment, on a clock the tests
control; they reach the board and the staff member concerned live, and are acknowledged."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ, local_date
from cloudhelp.domain import timeouts
from cloudhelp.store.db import Database
from cloudhelp.store.models import (
    Case,
    CorrectionNotice,
    FollowUp,
    Kiosk,
    Rating,
    ServiceItem,
    Staff,
    Ticket,
    TimeoutWarning,
    utcnow,
)
from tests.callkit import running_server
from tests.test_call_core import answer, take_ticket

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=LOCAL_TZ)  # a Monday morning


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def morning(day: date) -> datetime:
    return datetime.combine(day, time(9), LOCAL_TZ)


# These tests run in late 2026, when the calendar lacks 2027: that warning is tested in
# tests/test_workcalendar.py and left out here.
CALENDAR = "calendar_missing"


async def kinds_at(database: Database, now: datetime) -> tuple[set[str], set[str]]:
    """(raised, cleared) kinds of one evaluation at ``now``, the calendar's warning aside."""
    async with database.write() as s:
        changes = await timeouts.evaluate(s, now)
    return (
        {w.kind for w in changes.raised} - {CALENDAR},
        {w.kind for w in changes.cleared} - {CALENDAR},
    )


async def test_call_warnings_fire_and_clear_on_time(demo_engine) -> None:
    database = Database(demo_engine)
    async with database.write() as s:
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        staff = await s.scalar(select(Staff).where(Staff.username == "zhaogang"))
        assert item and kiosk and staff
        ticket = Ticket(day="2026-11-23", number="B001", item_id=item.id,
                        department_id=item.department_id, station_id=kiosk.station_id,
                        kiosk_id=kiosk.id, status="waiting", enqueued_at=T0)  # fmt: skip
        s.add(ticket)

    assert await kinds_at(database, seconds(300)) == (set(), set())  # at the threshold: not yet
    assert await kinds_at(database, seconds(301)) == ({"ticket_wait"}, set())
    assert await kinds_at(database, seconds(302)) == (set(), set())  # raised once, not again

    async with database.write() as s:
        row = await s.get(Ticket, ticket.id)
        assert row
        row.status, row.staff_id, row.connected_at = "connected", staff.id, seconds(400)
    assert await kinds_at(database, seconds(400)) == (set(), {"ticket_wait"})
    assert await kinds_at(database, seconds(400 + 1800)) == (set(), set())
    assert await kinds_at(database, seconds(400 + 1801)) == ({"call_long"}, set())
    async with database.read() as s:
        (mine,) = await timeouts.active(s, staff.id)
    assert mine.kind == "call_long" and mine.detail["ticket"] == "B001"

    async with database.write() as s:
        row = await s.get(Ticket, ticket.id)
        assert row
        row.status, row.ended_at = "wrapup", seconds(3000)
    assert await kinds_at(database, seconds(3000)) == (set(), {"call_long"})
    assert await kinds_at(database, seconds(3000 + 181)) == ({"wrapup_long"}, set())
    async with database.write() as s:
        row = await s.get(Ticket, ticket.id)
        assert row
        row.status, row.wrapup_done_at, row.closed_at = "completed", seconds(3200), seconds(3200)
    assert await kinds_at(database, seconds(3200)) == (set(), {"wrapup_long"})


async def test_the_most_specific_threshold_applies(demo_engine) -> None:
    assert sorted(timeouts.SEVERITY) == sorted(timeouts.KINDS)  # the board can order each kind
    database = Database(demo_engine)
    async with database.write() as s:
        await timeouts.set_threshold(s, "ticket_wait", 120, department="NYNC")
        await timeouts.set_threshold(s, "ticket_wait", 60, item="NYNC-002")
        await timeouts.set_threshold(s, "ticket_wait", 600)  # district-wide
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        assert kiosk
        for number, code in (("B001", "NYNC-002"), ("B002", "NYNC-001"), ("A001", "SCJG-001")):
            item = await s.scalar(select(ServiceItem).where(ServiceItem.code == code))
            assert item
            s.add(Ticket(day="2026-11-23", number=number, item_id=item.id,
                         department_id=item.department_id, station_id=kiosk.station_id,
                         kiosk_id=kiosk.id, status="waiting", enqueued_at=T0))  # fmt: skip
    async with database.write() as s:
        raised = [w for w in (await timeouts.evaluate(s, seconds(61))).raised if w.kind != CALENDAR]
        assert [(w.detail["ticket"], w.threshold) for w in raised] == [("B001", 60)]
        raised = (await timeouts.evaluate(s, seconds(121))).raised
        assert [(w.detail["ticket"], w.threshold) for w in raised] == [("B002", 120)]
        raised = (await timeouts.evaluate(s, seconds(601))).raised
        assert [(w.detail["ticket"], w.threshold) for w in raised] == [("A001", 600)]
        with pytest.raises(timeouts.WarningError) as bad:
            await timeouts.set_threshold(s, "coffee_break", 1)
        assert bad.value.code == "unknown_kind"
        await timeouts.set_threshold(s, "ticket_wait", None, item="NYNC-002")  # removed
        limits = await timeouts.Thresholds.load(s)
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
        assert item and limits.value("ticket_wait", item.department_id, item.id) == 120


async def add_case(database: Database, item_code: str, **fields: object) -> Case:
    async with database.write() as s:
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == item_code))
        staff = await s.scalar(select(Staff).where(Staff.username == "zhaogang"))
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        assert item and staff and kiosk
        case = Case(number=f"C-{item_code}", item_id=item.id, station_id=kiosk.station_id,
                    staff_id=staff.id, applicant_name="张三", applicant_phone="13800000000",
                    applicant_id_number="11010519491231002X", created_at=T0, **fields)  # fmt: skip
        s.add(case)
    return case


async def test_case_due_soon_then_overdue(demo_engine) -> None:
    database = Database(demo_engine)
    case = await add_case(database, "SCJG-014", status="accepted", accepted_at=T0)  # 15 days
    due = workdays.add_working_days(T0.date(), 15).day
    soon_from = due - timedelta(days=1)
    while workdays.add_working_days(soon_from - timedelta(days=1), 2).day >= due:
        soon_from -= timedelta(days=1)  # the first day on which due ≤ today + 2 working days
    assert await kinds_at(database, morning(soon_from - timedelta(days=1))) == (set(), set())
    assert await kinds_at(database, morning(soon_from)) == ({"case_due_soon"}, set())
    assert await kinds_at(database, morning(due)) == (set(), set())  # still due, not late
    assert await kinds_at(database, morning(due + timedelta(days=1))) == (
        {"case_overdue"},
        {"case_due_soon"},
    )
    async with database.write() as s:
        row = await s.get(Case, case.id)
        assert row
        row.status = "concluded"
    assert await kinds_at(database, morning(due + timedelta(days=2))) == (set(), {"case_overdue"})


async def test_late_correction_notice_and_follow_up(demo_engine) -> None:
    database = Database(demo_engine)
    waiting = await add_case(database, "NYNC-002", status="correction_needed", rounds=1)
    assert await kinds_at(database, T0 + timedelta(days=5)) == (set(), set())
    assert await kinds_at(database, T0 + timedelta(days=5, minutes=1)) == ({"notice_late"}, set())
    async with database.read() as s:
        late = await s.scalar(select(TimeoutWarning).where(TimeoutWarning.kind == "notice_late"))
    # The board shows when the notice was due (five days after the case opened), not how long
    # the warning has been up.
    assert late is not None and late.detail["due"] == local_date(T0 + timedelta(days=5)).isoformat()
    async with database.write() as s:
        s.add(CorrectionNotice(case_id=waiting.id, round=1, issued_by="zhaogang", items=[]))
        # The frequent ticket-only check leaves case warnings alone …
        quick = await timeouts.evaluate(s, T0 + timedelta(days=5, minutes=2), every_kind=False)
        assert not quick
    # … the full check clears it.
    assert await kinds_at(database, T0 + timedelta(days=5, minutes=2)) == (set(), {"notice_late"})

    async with database.write() as s:
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        staff = await s.scalar(select(Staff).where(Staff.username == "zhaogang"))
        supervisor = await s.scalar(select(Staff).where(Staff.username == "sunhua"))
        assert item and kiosk and staff and supervisor
        ticket = Ticket(day="2026-11-23", number="B009", item_id=item.id,
                        department_id=item.department_id, station_id=kiosk.station_id,
                        kiosk_id=kiosk.id, status="completed", enqueued_at=T0,
                        closed_at=seconds(600))  # fmt: skip
        s.add(ticket)
        await s.flush()
        rating = Rating(ticket_id=ticket.id, staff_id=staff.id, level=1)
        s.add(rating)
        await s.flush()
        s.add(FollowUp(rating_id=rating.id, assignee_id=supervisor.id, due_date=date(2026, 11, 30)))
    assert await kinds_at(database, morning(date(2026, 11, 30))) == (set(), set())
    assert await kinds_at(database, morning(date(2026, 12, 1))) == ({"follow_up_late"}, set())
    async with database.write() as s:
        (late,) = [w for w in await timeouts.active(s) if w.kind != CALENDAR]
        assert late.staff_id == supervisor.id and late.detail["ticket"] == "B009"
        with pytest.raises(timeouts.WarningError) as refused:
            await timeouts.acknowledge(s, late.id, staff, utcnow())  # not his
        assert refused.value.code == "not_yours"
        acked = await timeouts.acknowledge(s, late.id, supervisor, utcnow())
        assert acked.acked_by == "孙华" and acked.acked_at is not None
        follow_up = await s.scalar(select(FollowUp))
        assert follow_up
        follow_up.closed_at = utcnow()
    assert await kinds_at(database, morning(date(2026, 12, 2))) == (set(), {"follow_up_late"})


@pytest.mark.usefixtures("loopback_ice")
async def test_board_and_staff_hear_warnings_live(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, warning_check_seconds=3600) as server:
        cookies = {"cloudhelp_session": await server.staff_token("sunhua")}
        calendar_only_when_late = {"kind": CALENDAR, "value": 0}  # 2027 is missing in late 2026
        async with server.http.put(
            "/api/v1/warning-thresholds", json=calendar_only_when_late, cookies=cookies
        ) as r:
            assert r.status == 200
        supervisor = await server.staff("sunhua", available=False)
        await supervisor.send({"type": "board.watch"})
        board = await supervisor.expect("board")
        assert board["warnings"] == [] and {d["code"] for d in board["departments"]} >= {"NYNC"}

        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        board = await supervisor.expect_where("board", lambda b: len(b["calls"]) == 1)
        assert board["calls"][0]["staff"] == "赵刚" and board["calls"][0]["station"]

        callcenter = server.state.callcenter
        assert await callcenter.check_warnings(utcnow() + timedelta(seconds=1900))
        (warning,) = (await staff.expect_where("warnings", lambda m: m["warnings"]))["warnings"]
        assert warning["kind"] == "call_long" and warning["label"] == "通话超时"
        board = await supervisor.expect_where("board", lambda b: b["warnings"])
        assert board["warnings"][0]["id"] == warning["id"]

        await staff.send({"type": "warning.ack", "warning": warning["id"]})
        board = await supervisor.expect_where(
            "board", lambda b: b["warnings"] and b["warnings"][0]["acked_by"] == "赵刚"
        )
        # The acknowledgement is audited, once (a second 知悉 changes nothing, writes nothing).
        await staff.send({"type": "warning.ack", "warning": warning["id"]})
        async with server.http.post(f"/api/v1/warnings/{warning['id']}/ack", cookies=cookies) as r:
            assert r.status == 200
        async with server.http.get(
            "/api/v1/audit?action=warning.acknowledged", cookies=cookies
        ) as r:
            (acked,) = (await r.json())["events"]
        assert acked["actor"]["name"] == "zhaogang"
        assert acked["subject"] == {"kind": "warning", "id": str(warning["id"])}
        assert acked["detail"]["kind"] == "call_long" and acked["detail"]["ticket_number"]
        await kiosk.send({"type": "call.hangup"})
        await staff.expect("wrapup")
        assert await callcenter.check_warnings(utcnow())
        assert (await staff.expect_where("warnings", lambda m: not m["warnings"]))["warnings"] == []
        await supervisor.expect_where("board", lambda b: not b["warnings"])

        cookies = {"cloudhelp_session": await server.staff_token("sunhua")}
        # The warning was raised 1900 s ahead: near midnight that is tomorrow, district time.
        raised_on = local_date(utcnow() + timedelta(seconds=1900))
        days = f"from={local_date(utcnow())}&to={raised_on}"
        async with server.http.get(f"/api/v1/warnings?state=all&{days}", cookies=cookies) as r:
            (history,) = (await r.json())["warnings"]
        assert history["acked_by"] == "赵刚" and history["cleared_at"] is not None

        # Plain staff cannot watch the board, nor change thresholds; bad input gets a reason.
        other = await server.staff("wangli", available=False)
        await other.send({"type": "board.watch"})
        assert (await other.expect("error"))["code"] == "forbidden"
        body = {"kind": "ticket_wait", "value": 90, "department": "NYNC"}
        async with server.http.put("/api/v1/warning-thresholds", json=body, cookies=cookies) as r:
            kinds = {k["kind"]: k for k in (await r.json())["kinds"]}
        assert kinds["ticket_wait"]["overrides"] == [
            {"department": "NYNC", "item": None, "value": 90}
        ]
        async with server.http.put(
            "/api/v1/warning-thresholds", json={"kind": "nap", "value": 1}, cookies=cookies
        ) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "unknown_kind"
        for not_a_number in (False, True, "90"):  # never read as 0, 1 or 90 (schemathesis)
            refused = {"kind": "ticket_wait", "value": not_a_number}
            async with server.http.put(
                "/api/v1/warning-thresholds", json=refused, cookies=cookies
            ) as r:
                assert r.status == 400, (not_a_number, await r.text())
        staff_cookies = {"cloudhelp_session": await server.staff_token("wangli")}
        async with server.http.put(
            "/api/v1/warning-thresholds", json=body, cookies=staff_cookies
        ) as r:
            assert r.status == 403
        async with server.http.post("/api/v1/warnings/999/ack", cookies=cookies) as r:
            assert r.status == 404
