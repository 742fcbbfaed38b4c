"""The demo's campaign under way: 69 boats of 大连湾街道 renewing their fishing licences at 前关
and 棠梨 over 15 working days, the first seven of them past (docs/appointments.md).

Service hours are set for the fishing department at both stations, the roster is imported and
scheduled as a supervisor would (from the morning of the first day); the appointments already
past were served in sessions (ticket, case moved on: most concluded, most of those handed over),
three residents did not come (left to rebook in the campaign page) and one moved her own slot.
Run once: nothing happens when a campaign exists.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ, local_date, local_day
from cloudhelp.core.errors import must_exist
from cloudhelp.devtools.demo import backdate
from cloudhelp.domain import appointments, campaigns, capacity, cases, prereview, queue
from cloudhelp.domain.campaign_progress import entry_states
from cloudhelp.store.models import (
    Appointment,
    Campaign,
    Case,
    CaseEvent,
    Category,
    Department,
    Kiosk,
    Staff,
    Station,
    Ticket,
    TicketEvent,
)

BOATS = 69
PAST_DAYS = 7
WORKING_DAYS = 15
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = ("海生", "德福", "振海", "春生", "建国", "永强", "长江", "福顺", "金山", "志刚", "玉兰",
         "秀英", "桂芳", "海波", "立新", "宝山", "国庆", "红梅", "庆丰", "水生")  # fmt: skip
NAME = "大连湾街道渔业捕捞许可证集中换发（演示）"


def _shift_working_days(day: date, steps: int) -> date:
    """The working day ``steps`` working days before (negative) or after ``day``."""
    step = 1 if steps > 0 else -1
    left = abs(steps)
    while left:
        day += timedelta(days=step)
        if workdays.is_working_day(day)[0]:
            left -= 1
    return day


def roster_csv() -> bytes:
    """The drive's roster: owner, phone, ID number, boat and licence numbers; a few stated
    preferences (the afternoon, or 棠梨)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机号", "身份证号", "船号", "许可证号", "意向驿站", "意向时段"])
    for n in range(1, BOATS + 1):
        first17 = f"2102111{960 + n % 35:03d}{1 + n % 12:02d}{1 + n % 27:02d}{n:03d}"
        name = SURNAMES[n % len(SURNAMES)] + GIVEN[n % len(GIVEN)]
        writer.writerow([
            name, f"1394110{n:04d}", first17 + cases.id_check_character(first17),
            f"辽大渔{35000 + n * 7}", f"(辽大)船捕(2021)DLW-{n:03d}",
            "DLW-TL" if n % 11 == 0 else "", "下午" if n % 9 == 0 else "",
        ])  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


async def seed_campaign(session: AsyncSession, district: str, now: datetime) -> int:
    """The campaign with its past days served; the number of roster entries (0: it existed)."""
    if await session.scalar(select(func.count()).select_from(Campaign)):
        return 0
    department = must_exist(
        await session.scalar(select(Department).where(Department.code == "NYNC")), "NYNC"
    )
    stations = {
        code: must_exist(await session.scalar(select(Station).where(Station.code == code)), code)
        for code in ("DLW-QG", "DLW-TL")
    }
    for station in stations.values():
        # The hall's staff answer from 9 to 4, with the hall's lunch break (kiosk.wait.hours).
        hours = capacity.Hours.parse("09:00", "16:00", 1, "12:00", "13:30")
        week = dict.fromkeys(range(5), hours)
        await capacity.set_weekly_hours(session, department.id, station.id, week)
    today = local_date(now)
    first = today if workdays.is_working_day(today)[0] else _shift_working_days(today, 1)
    first = _shift_working_days(first, -PAST_DAYS)
    last = _shift_working_days(first, WORKING_DAYS - 1)
    held = workdays.current().years
    while workdays.is_working_day(last)[1] and any(year < last.year for year in held):
        # No campaign runs into a year the official calendar does not hold (campaigns.create
        # refuses it): the fortnight moves back to end on the last working day it holds.
        last = _shift_working_days(date(last.year, 1, 1), -1)
        first = _shift_working_days(last, -(WORKING_DAYS - 1))
    campaign = await campaigns.create(
        session, name=NAME, street_code="DLW", item_codes=["NYNC-002"],
        station_codes=list(stations), starts_on=first, ends_on=last, actor="sunhua",
    )  # fmt: skip
    start = datetime.combine(first, time(8, 0), LOCAL_TZ)
    imported, problems = await campaigns.import_roster(
        session, campaign, roster_csv(), "roster.csv", start
    )
    if problems:
        raise RuntimeError(f"the demo roster is refused: {problems[0]}")
    await campaigns.schedule(session, campaign, "sunhua", start)
    await _past_days(session, campaign, district, now)
    return imported


async def _past_days(
    session: AsyncSession, campaign: Campaign, district: str, now: datetime
) -> None:
    """Serve the appointments already past, but for three no-shows and one moved slot."""
    staff = must_exist(
        await session.scalar(select(Staff).where(Staff.username == "zhaogang")), "zhaogang"
    )
    kiosks = {
        k.station_id: k
        for k in (
            await session.scalars(select(Kiosk).where(Kiosk.code.in_(["QG-01", "TL-01"])))
        ).all()
    }
    states = sorted(
        (s for s in await entry_states(session, campaign, now) if s.current is not None),
        key=lambda s: s.current.starts_at,  # type: ignore[union-attr]
    )
    past = [s for s in states if s.current is not None and s.current.starts_at < now]
    no_shows = {past[i].entry.id for i in (4, 11, 19) if i < len(past)}
    moved = next((s for s in states if s.current is not None and s.current.starts_at > now), None)
    recent_from = _shift_working_days(local_date(now), -1)
    for index, state in enumerate(past):
        booked = state.current
        if booked is None or state.entry.id in no_shows:
            continue
        kiosk = kiosks.get(booked.station_id)
        if kiosk is None:
            continue
        await _served(session, booked, kiosk, staff, district, index, recent_from)
    if moved is not None and moved.current is not None:
        later = moved.current.starts_at + timedelta(days=1)
        while not workdays.is_working_day(local_date(later))[0]:
            later += timedelta(days=1)
        for minutes in range(0, 7 * 60, 10):
            try:
                await appointments.rebook(
                    session, moved.current, starts_at=datetime.combine(
                        local_date(later), time(9, 0), LOCAL_TZ) + timedelta(minutes=minutes),
                    station_id=None, actor="resident", now=now,
                )  # fmt: skip
                break
            except appointments.AppointmentError:
                continue


async def _served(
    session: AsyncSession,
    booked: Appointment,
    kiosk: Kiosk,
    staff: Staff,
    district: str,
    index: int,
    recent_from: date,
) -> None:
    """A past appointment checked in and served: its ticket, events and case, all at its time."""
    item = booked.item
    category = must_exist(await session.get(Category, item.category_id), item.code)
    checked = booked.starts_at - timedelta(minutes=4)
    booked.status, booked.checked_in_at = "checked_in", checked
    day = local_day(checked)
    sequence = await queue.reserve_numbers(session, day, category)
    moments = {
        "enqueued": checked, "offered": checked + timedelta(minutes=3),
        "connected": checked + timedelta(minutes=3, seconds=20),
        "ended": checked + timedelta(minutes=11), "wrapup_done": checked + timedelta(minutes=12),
    }  # fmt: skip
    # Numbered on its own day by that day's counter, as generated history is: a number a
    # resident can type at the kiosk (18 digits; a letter in it was never found there).
    (number,) = await cases.reserve_numbers(session, district, booked.day)
    case = Case(
        number=number, item_id=item.id,
        station_id=booked.station_id, staff_id=staff.id, applicant_name=booked.name,
        applicant_phone=booked.phone, applicant_id_number=booked.id_number, status="pre_review",
    )  # fmt: skip
    session.add(case)
    await session.flush()
    session.add(CaseEvent(case_id=case.id, from_state=None, to_state="pre_review",
                          actor=staff.username))  # fmt: skip
    await session.refresh(case, ["item", "station"])
    marks = [{"position": m.position, "status": "ok"} for m in item.materials]
    needs_correction = index % 13 == 5
    if needs_correction:
        marks[3] = {"position": marks[3]["position"], "status": "needs_correction",
                    "reason": "船舶检验证书未年检"}  # fmt: skip
    await prereview.mark(session, case, marks, staff.username)
    await prereview.verdict(
        session, case, "correction_needed" if needs_correction else "passed", staff.username
    )
    if not needs_correction:
        # The last two days' cases are accepted, still running; earlier ones concluded, most
        # of them handed over.
        recent = booked.day >= recent_from
        steps = (
            ["accepted"]
            if recent
            else ["accepted", "concluded", "delivered"][: 2 if index % 3 == 0 else 3]
        )
        for step in steps:
            await cases.transition(session, case, step, staff.username)
    await backdate(session, case, case.created_at - (moments["connected"] + timedelta(minutes=2)))
    ticket = Ticket(
        day=day, number=queue.ticket_number(category.letter, sequence), item_id=item.id,
        department_id=item.department_id, station_id=booked.station_id, kiosk_id=kiosk.id,
        case_id=case.id, appointment_id=booked.id, status="completed", enqueued_at=checked,
        offered_at=moments["offered"], offer_count=1, staff_id=staff.id,
        connected_at=moments["connected"], ended_at=moments["ended"],
        wrapup_done_at=moments["wrapup_done"], closed_at=moments["wrapup_done"],
        end_reason="kiosk_hangup",
        outcome="needs_correction" if needs_correction else "resolved", note="",
    )  # fmt: skip
    session.add(ticket)
    await session.flush()
    for kind, at in moments.items():
        session.add(TicketEvent(ticket_id=ticket.id, at=at, kind=kind,
                                staff_id=None if kind == "enqueued" else staff.id,
                                detail={}))  # fmt: skip
