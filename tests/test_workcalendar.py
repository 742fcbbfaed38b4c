"""The working-day calendar in the database: seeded from chinesecalendar, a new year imported from
a file, days edited from the command line, due dates recomputed and recorded, the board warned
from 1 November when next year is missing. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from sqlalchemy import select

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import cases, timeouts, workcalendar
from cloudhelp.store.db import Database
from cloudhelp.store.models import (
    CalendarYear,
    Case,
    DueDateChange,
    FollowUp,
    Kiosk,
    Rating,
    ServiceItem,
    Staff,
    Ticket,
)
from cloudhelp.views import warning_labels
from tests.helpers import run_cli

# A 2027 calendar for the tests (NOT the State Council's: that is imported when published).
# New Year's Day falls on Friday 1 January and the holiday runs to Monday 4 January (a date no
# estimate can know: only 1 January is fixed); Saturday 9 January is made an adjusted working day.
TEST_2027 = {
    "year": 2027,
    "days": [
        {"date": "2027-01-01", "kind": "holiday", "name": "元旦"},
        {"date": "2027-01-02", "kind": "holiday", "name": "元旦"},
        {"date": "2027-01-03", "kind": "holiday", "name": "元旦"},
        {"date": "2027-01-04", "kind": "holiday", "name": "元旦"},
        {"date": "2027-01-09", "kind": "workday", "name": "元旦"},
    ],
}
FOLLOW_UP_DAYS = 3


def local(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), LOCAL_TZ)


async def installed(database: Database) -> None:
    async with database.read() as s:
        await workcalendar.refresh(s)


async def test_the_seed_is_chinesecalendar_and_arithmetic_reads_the_database(engine) -> None:
    database = Database(engine)
    await installed(database)
    calendar = workdays.current()
    assert min(calendar.years) == 2004 and max(calendar.years) == 2026
    day = date(2004, 1, 1)
    while day.year <= 2026:
        assert calendar.is_working_day(day) == (chinese_calendar.is_workday(day), False), day
        day += timedelta(days=1)
    # The arithmetic follows the database, not the package: make 13 Feb 2026 a holiday.
    assert workdays.add_working_days(date(2026, 2, 12), 1).day == date(2026, 2, 13)
    async with database.write() as s:
        await workcalendar.set_day(s, date(2026, 2, 13), "holiday", "测试", actor="test",
                                   follow_up_days=FOLLOW_UP_DAYS)  # fmt: skip
    assert workdays.add_working_days(date(2026, 2, 12), 1).day == date(2026, 2, 14)  # 调休 Sat
    # A process that did not make the change picks it up from the database's revision.
    workdays.install(workdays.Calendar())
    assert workdays.add_working_days(date(2026, 2, 12), 1).estimated
    async with database.read() as s:
        assert await workcalendar.refresh(s)
        assert not await workcalendar.refresh(s)  # unchanged: no reload
    assert workdays.add_working_days(date(2026, 2, 12), 1) == workdays.DueDate(
        date(2026, 2, 14), False
    )


async def add_accepted_case_and_follow_up(database: Database) -> tuple[int, int]:
    """Food-production licence (promised 5, statutory 20 working days) accepted Wed 30 Dec 2026,
    and a bad rating of 31 Dec with its follow-up due as the calendar then said."""
    async with database.write() as s:
        item = await s.scalar(select(ServiceItem).where(ServiceItem.code == "SCJG-008"))
        kiosk = await s.scalar(select(Kiosk).where(Kiosk.code == "QG-01"))
        staff = await s.scalar(select(Staff).where(Staff.username == "zhaogang"))
        assert item and kiosk and staff
        accepted = local(date(2026, 12, 30))
        case = Case(number="C-2027", item_id=item.id, station_id=kiosk.station_id,
                    staff_id=staff.id, applicant_name="张三", applicant_phone="13800000000",
                    applicant_id_number="11010519491231002X", created_at=accepted,
                    status="accepted", accepted_at=accepted)  # fmt: skip
        rated = local(date(2026, 12, 31), 10)
        ticket = Ticket(day="2026-12-31", number="B001", item_id=item.id,
                        department_id=item.department_id, station_id=kiosk.station_id,
                        kiosk_id=kiosk.id, status="completed", enqueued_at=rated,
                        connected_at=rated, ended_at=rated, closed_at=rated)  # fmt: skip
        s.add_all([case, ticket])
        await s.flush()
        rating = Rating(ticket_id=ticket.id, staff_id=staff.id, level=1, created_at=rated)
        s.add(rating)
        await s.flush()
        due = workdays.add_working_days(rated.date(), FOLLOW_UP_DAYS)
        follow_up = FollowUp(rating_id=rating.id, due_date=due.day, due_estimated=due.estimated)
        s.add(follow_up)
        await s.flush()
        return case.id, follow_up.id


async def test_a_2027_due_date_is_exact_once_2027_is_imported(demo_engine) -> None:
    database = Database(demo_engine)
    await installed(database)
    case_id, follow_up_id = await add_accepted_case_and_follow_up(database)
    async with database.read() as s:
        case = await s.get(Case, case_id)
        assert case
        before = cases.limits_of(case.accepted_at, 5, 20, [], date(2026, 12, 30))
        follow_up = await s.get(FollowUp, follow_up_id)
        assert follow_up
    # 31 Dec, then Mon–Fri in 2027 as a guess, but for New Year's Day: 4, 5, 6, 7 January.
    assert (before.promised_due, before.estimated) == (date(2027, 1, 7), True)
    assert (follow_up.due_date, follow_up.due_estimated) == (date(2027, 1, 6), True)

    entries = workcalendar.parse(json.dumps(TEST_2027), ".json")
    async with database.write() as s:
        outcome = await workcalendar.import_entries(
            s, entries, actor="sunhua", follow_up_days=FOLLOW_UP_DAYS, now=local(date(2026, 12, 31))
        )
    assert outcome.years == [2027]
    # 31 Dec, (1-4 Jan a holiday), 5, 6, 7, 8 January: exact now.
    async with database.read() as s:
        case = await s.get(Case, case_id)
        assert case
        after = cases.limits_of(case.accepted_at, 5, 20, [], date(2026, 12, 31))
        follow_up = await s.get(FollowUp, follow_up_id)
        assert follow_up
        changes = (await s.scalars(select(DueDateChange).order_by(DueDateChange.id))).all()
        year = await s.get(CalendarYear, 2027)
    assert (after.promised_due, after.estimated) == (date(2027, 1, 8), False)
    assert (follow_up.due_date, follow_up.due_estimated) == (date(2027, 1, 7), False)
    assert year and year.source == "import" and year.loaded_by == "sunhua"
    recorded = {c.subject: c for c in changes}
    assert set(recorded) == {f"case:{case_id}", f"follow_up:{follow_up_id}"}
    moved = recorded[f"case:{case_id}"]
    assert (moved.old_due, moved.new_due) == (date(2027, 1, 7), date(2027, 1, 8))
    assert moved.old_estimated and not moved.new_estimated
    assert moved.reason == "calendar import 2027" and moved.detail["case"] == "C-2027"
    assert workcalendar.change_json(moved)["new_due"] == "2027-01-08"

    # An adjusted working day on Saturday 9 Jan moves nothing due before it; importing the
    # same year again records nothing new.
    async with database.write() as s:
        again = await workcalendar.import_entries(
            s, entries, actor="sunhua", follow_up_days=FOLLOW_UP_DAYS
        )
    assert again.moved == []


async def test_the_board_warns_from_1_november_when_next_year_is_missing(demo_engine) -> None:
    database = Database(demo_engine)

    async def calendar_warnings(now: datetime) -> tuple[list[str], list[str]]:
        async with database.write() as s:
            changes = await timeouts.evaluate(s, now)
        return (
            [w.subject for w in changes.raised if w.kind == "calendar_missing"],
            [w.subject for w in changes.cleared if w.kind == "calendar_missing"],
        )

    assert await calendar_warnings(local(date(2026, 10, 31), 23)) == ([], [])
    assert await calendar_warnings(local(date(2026, 11, 1), 0)) == (["calendar:2027"], [])
    async with database.read() as s:
        (warning,) = [w for w in await timeouts.active(s) if w.kind == "calendar_missing"]
    body = warning_labels.warning_json(warning)
    assert body["label"] == "工作日历缺年度" and body["detail"]["year"] == 2027
    assert warning.staff_id is None  # for supervisors: the board
    assert await calendar_warnings(local(date(2026, 11, 2))) == ([], [])  # raised once

    # The import happens in another process: the next check reads the database's revision.
    async with database.write() as s:
        await workcalendar.import_entries(
            s, workcalendar.parse(json.dumps(TEST_2027), ".json"), actor="cli",
            follow_up_days=FOLLOW_UP_DAYS,
        )  # fmt: skip
    workdays.install(workdays.Calendar())
    assert await calendar_warnings(local(date(2026, 11, 3))) == ([], ["calendar:2027"])
    # In 2027 nothing is missing until 1 November 2027 (2028).
    assert await calendar_warnings(local(date(2027, 10, 31))) == ([], [])
    assert await calendar_warnings(local(date(2027, 11, 1))) == (["calendar:2028"], [])


def test_calendar_files_are_checked() -> None:
    csv_text = "date,kind,name\n2027-01-01,holiday,元旦\n2027-01-09,workday,元旦\n"
    assert workcalendar.parse(csv_text, ".csv") == [
        workcalendar.Entry(date(2027, 1, 1), "holiday", "元旦"),
        workcalendar.Entry(date(2027, 1, 9), "workday", "元旦"),
    ]
    bad = {
        "date,kind\n2027-13-01,holiday\n": "bad_date",
        "date,kind\n2027-01-01,rest\n": "bad_kind",
        "date,kind\n2027-01-01,holiday\n2027-01-01,workday\n": "duplicate_date",
        "day,type\n2027-01-01,holiday\n": "bad_calendar_file",
        "date,kind\n": "bad_calendar_file",
    }
    for text, code in bad.items():
        with pytest.raises(workcalendar.CalendarError) as refused:
            workcalendar.parse(text, ".csv")
        assert refused.value.code == code, text
    with pytest.raises(workcalendar.CalendarError) as refused:
        workcalendar.parse(json.dumps({"year": 2028, "days": TEST_2027["days"]}), ".json")
    assert refused.value.code == "bad_calendar_file"


def test_the_command_line_imports_sets_and_shows(sqlite_demo_url: str, tmp_path: Path) -> None:
    missing = run_cli("calendar", "show", "2027", "--db", sqlite_demo_url)
    assert missing.returncode == 1 and "2027 is not in the calendar" in missing.stderr
    refused = run_cli("calendar", "set", "2027-01-09", "workday", "--db", sqlite_demo_url)
    assert refused.returncode == 1 and "import the whole year first" in refused.stderr

    path = tmp_path / "2027.csv"
    path.write_text(
        "date,kind,name\n" + "".join(f"{d['date']},{d['kind']},{d['name']}\n"
                                     for d in TEST_2027["days"]),
        encoding="utf-8",
    )  # fmt: skip
    imported = run_cli("calendar", "import", str(path), "--db", sqlite_demo_url)
    assert imported.returncode == 0, imported.stderr
    assert "Imported 5 days of the working-day calendar for 2027." in imported.stdout

    edited = run_cli("calendar", "set", "2027-01-05", "holiday", "--name", "测试",
                     "--db", sqlite_demo_url)  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    shown = run_cli("calendar", "show", "2027", "--json", "--db", sqlite_demo_url)
    body = json.loads(shown.stdout)
    assert body["source"] == "import" and [d["date"] for d in body["days"]] == [
        "2027-01-01", "2027-01-02", "2027-01-03", "2027-01-04", "2027-01-05", "2027-01-09",
    ]  # fmt: skip
    text = run_cli("calendar", "show", "2026", "--db", sqlite_demo_url).stdout
    # 2026: 365 days, 104 weekend days, holidays on weekdays and adjusted Saturdays/Sundays.
    expected = sum(chinese_calendar.is_workday(date(2026, 1, 1) + timedelta(n)) for n in range(365))
    assert text.startswith(f"2026: {expected} working days; from chinesecalendar")
    assert "2026-10-01  四  休  holiday  国庆节" in text

    bad = tmp_path / "bad.json"
    bad.write_text('{"days": [{"date": "2027-02-30", "kind": "holiday"}]}', encoding="utf-8")
    rejected = run_cli("calendar", "import", str(bad), "--db", sqlite_demo_url)
    assert rejected.returncode == 1 and "is not a date" in rejected.stderr


def test_a_year_without_its_calendar_is_estimated_without_the_fixed_date_holidays() -> None:
    """Mon–Fri, but New Year's Day, 1-2 May and 1-3 October are holidays whatever the year (the
    lunar ones come only with the official calendar); every such day says it is estimated."""
    estimate = workdays.Calendar()  # no year known
    assert estimate.is_working_day(date(2027, 1, 1)) == (False, True)  # a Friday
    assert estimate.is_working_day(date(2027, 1, 4)) == (True, True)
    assert estimate.is_working_day(date(2027, 5, 3)) == (True, True)
    assert [estimate.is_working_day(date(2027, 10, d))[0] for d in (1, 4)] == [False, True]
    assert estimate.is_working_day(date(2027, 2, 8)) == (True, True)  # 春节 2027: not known


async def test_only_a_due_date_past_the_known_years_is_estimated(engine) -> None:
    """Accepted 1 Dec 2026: the promised date (4 working days) falls in 2026, whose calendar is
    known; the statutory one (30 working days) in 2027, not imported: only that one is 估算."""
    await installed(Database(engine))  # the seed: 2004-2026
    limits = cases.limits_of(local(date(2026, 12, 1)), 4, 30, [])
    assert limits.promised_due is not None and limits.promised_due.year == 2026
    assert limits.statutory_due is not None and limits.statutory_due.year == 2027
    assert (limits.promised_estimated, limits.statutory_estimated) == (False, True)
    assert limits.estimated


async def test_the_case_page_says_a_due_date_is_estimated_until_its_year_is_imported(
    demo_url: str,
) -> None:
    """Accepted 30 Dec 2026, the food licence is due in January 2027, a year the calendar does
    not hold yet: the page marks both dates 估算 and says why, until 2027 is imported."""
    from tests.callkit import running_server

    async with running_server(demo_url) as server:
        await add_accepted_case_and_follow_up(server.state.db)
        cookie = {"cloudhelp_session": await server.staff_token("sunhua")}
        async with server.http.get("/cases/C-2027", cookies=cookie) as r:
            page = await r.text()
        assert r.status == 200
        assert "到期 2027-01-07（估算）" in page and 'id="due-estimated"' in page, page
        assert "官方节假日安排尚未导入" in page
        async with server.state.db.write() as s:
            await workcalendar.import_entries(
                s, workcalendar.parse(json.dumps(TEST_2027), ".json"), actor="sunhua",
                follow_up_days=FOLLOW_UP_DAYS, now=local(date(2026, 12, 31)),
            )  # fmt: skip
        async with server.http.get("/cases/C-2027", cookies=cookie) as r:
            page = await r.text()
        assert "到期 2027-01-08" in page and "估算" not in page
        assert 'id="due-estimated"' not in page
