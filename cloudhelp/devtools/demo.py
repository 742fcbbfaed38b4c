"""Demo cases in every state, so a new user sees the case pages and the CLI populated."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock, workdays
from cloudhelp.core.errors import must_exist
from cloudhelp.domain import cases, catalog, network, prereview, queue, ratings
from cloudhelp.store.models import (
    Case,
    CaseEvent,
    Category,
    CorrectionNotice,
    Kiosk,
    MaterialCheck,
    ServiceItem,
    Staff,
    StaffSkill,
    Station,
    Ticket,
    TicketEvent,
    utcnow,
)

# (item, applicant, phone, ID number's first 17 digits, the states the case goes through, the
# resident's rating of the session (None: declined), the reasons of a bad one)
DEMO_CASES = [
    ("NYNC-002", "刘海生", "13840000001", "21021119650312101", [], 5, []),
    ("NYNC-002", "王德福", "13840000002", "21021119700521203", ["correction_needed"], 2,
     ["等待时间长", "解答不清楚"]),
    ("SCJG-001", "张小梅", "13840000003", "21021119880809302", ["awaiting_acceptance"], 5, []),
    ("ZJJ-001", "李建国", "13840000004", "21021119751130411", ["awaiting_acceptance", "accepted"],
     4, []),
    ("JTJ-001", "赵永强", "13840000005", "21021119820214505",
     ["awaiting_acceptance", "accepted", "concluded"], 5, []),
    ("SCJG-008", "陈丽华", "13840000006", "21021119790701606",
     ["awaiting_acceptance", "accepted", "concluded", "delivered"], None, []),
    ("CGJ-001", "孙志刚", "13840000007", "21021119900415707", ["not_accepted"], 3, []),
]  # fmt: skip
SESSION_MINUTES = 12  # the demo's sessions follow each other, this far apart (sessions_end)
# The hall's opening hours, as the generated history has them (history.HALF_HOURS).
HALL_OPENS, HALL_CLOSES = time(8, 30), time(17, 30)
# The cases whose licences are issued were opened weeks ago, not today: (days before today the
# case was opened, days before today it was concluded), by the applicant's phone. 赵永强's
# papers wait at the station, one of them overdue; 陈丽华's licence was picked up when the hall
# was last open (sessions_end: now in opening hours), so she was delivered then (demo_items
# dates the papers to match).
OPENED_EARLIER = {"13840000005": (30, 24), "13840000006": (10, 4)}


async def load_samples(session: AsyncSession) -> tuple[dict[str, int], dict[str, Any]]:
    """The sample catalog and station network (counts of what was imported)."""
    counts = await catalog.import_catalog(session, catalog.parse_file(catalog.SAMPLE_CATALOG))
    return counts, await network.import_network(session, network.load_sample_network())


async def seed_cases(session: AsyncSession, district: str, now: datetime | None = None) -> int:
    """Open the demo cases (once: nothing happens if they exist), each with the video session
    it was opened in (ticket, events, the resident's rating; a bad one's follow-up), as if
    loaded at ``now`` (default: now)."""
    phones = [phone for _, _, phone, *_ in DEMO_CASES]
    if await session.scalar(select(Case.id).where(Case.applicant_phone.in_(phones)).limit(1)):
        return 0
    station = must_exist(
        await session.scalar(select(Station).where(Station.code == "DLW-QG")),
        "the sample network's station DLW-QG",
    )
    kiosk = must_exist(
        await session.scalar(select(Kiosk).where(Kiosk.code == "QG-01")),
        "the sample network's kiosk QG-01",
    )
    started = utcnow()  # what the rules below stamp is moved back from here (backdate)
    now = now or started
    ended = sessions_end(now)
    today = clock.local_date(ended)  # the papers (demo_items) count back from this day too
    for n, (item_code, name, phone, first17, steps, level, reasons) in enumerate(DEMO_CASES):
        opened_ago, concluded_ago = OPENED_EARLIER.get(phone, (0, 0))
        opened_on = (
            _working_day(today - timedelta(days=opened_ago))
            if opened_ago
            else clock.local_date(ended)
        )
        item = must_exist(
            await session.scalar(select(ServiceItem).where(ServiceItem.code == item_code)),
            f"the sample catalog's item {item_code}",
        )
        reviewer = await _reviewer_of(session, item)
        case = await cases.open_case(
            session, district=district, item=item, station_id=station.id, staff_id=reviewer.id,
            name=name, phone=phone, id_number=first17 + cases.id_check_character(first17),
            actor=reviewer.username, day=opened_on,
        )  # fmt: skip
        await session.refresh(case, ["item", "station"])
        for step in steps:
            if step == "correction_needed":
                marks = [{"position": m.position, "status": "ok"} for m in item.materials]
                marks[-1] = {"position": marks[-1]["position"], "status": "missing"}
                marks[0] = {"position": 1, "status": "needs_correction", "reason": "申请人未签字"}
                await prereview.mark(session, case, marks, reviewer.username)
                await prereview.verdict(session, case, "correction_needed", reviewer.username)
            elif step == "awaiting_acceptance":
                marks = [{"position": m.position, "status": "ok"} for m in item.materials]
                await prereview.mark(session, case, marks, reviewer.username)
                await prereview.verdict(session, case, "passed", reviewer.username)
            elif step == "not_accepted":
                await cases.transition(
                    session,
                    case,
                    step,
                    reviewer.username,
                    "不属于本部门职权范围，已告知向区住建局申请",
                )
            else:
                await cases.transition(session, case, step, reviewer.username)
        enqueued = ended - timedelta(minutes=SESSION_MINUTES * (len(DEMO_CASES) - n))
        if opened_ago:  # that morning, at the same station
            enqueued = clock.day_start(opened_on) + timedelta(hours=9, minutes=SESSION_MINUTES * n)
        await backdate(session, case, started - (enqueued + timedelta(minutes=3)))
        if concluded_ago:
            concluded = clock.day_start(_working_day(today - timedelta(days=concluded_ago)))
            await _reached(session, case, "concluded", concluded + timedelta(hours=15))
            if case.delivered_at is not None:  # picked up while the hall was open
                await _reached(session, case, "delivered", ended)
        await _session_of(session, case, kiosk, reviewer, enqueued, steps, level, reasons)
    return len(DEMO_CASES)


async def _reviewer_of(session: AsyncSession, item: ServiceItem) -> Staff:
    """The staff member (the first listed) who serves ``item``, by its department or singly:
    each demo case is reviewed by someone whose calls it would be."""
    serves = or_(StaffSkill.department_id == item.department_id, StaffSkill.item_id == item.id)
    return must_exist(
        await session.scalar(
            select(Staff).join(StaffSkill, StaffSkill.staff_id == Staff.id)
            .where(Staff.role == "staff", serves).order_by(Staff.id).limit(1)
        ),
        f"a staff member of the sample network serving {item.code}",
    )  # fmt: skip


def sessions_end(now: datetime) -> datetime:
    """When the demo's last session ends: now, in the hall's opening hours of a working day
    (once there has been time for every session); otherwise when the hall last closed. No
    resident calls at night or at a weekend, whenever the demo is loaded; the demo's papers
    (demo_items) are carried and picked up by this moment too."""
    local = now.astimezone(clock.LOCAL_TZ)
    day = local.date()
    needed = timedelta(minutes=SESSION_MINUTES * len(DEMO_CASES))
    opens = datetime.combine(day, HALL_OPENS, clock.LOCAL_TZ)
    closes = datetime.combine(day, HALL_CLOSES, clock.LOCAL_TZ)
    if workdays.is_working_day(day)[0]:
        if opens + needed <= local <= closes:
            return now
        if local > closes:
            return closes.astimezone(UTC)
    last = _working_day(day - timedelta(days=1))
    return datetime.combine(last, HALL_CLOSES, clock.LOCAL_TZ).astimezone(UTC)


def _working_day(day: date) -> date:
    """``day``, or the last working day before it (weekends and holidays by the calendar the
    case deadlines use)."""
    while not workdays.is_working_day(day)[0]:
        day -= timedelta(days=1)
    return day


async def _reached(session: AsyncSession, case: Case, state: str, at: datetime) -> None:
    """The case reached ``state`` at ``at``: its moment and its event say so."""
    setattr(case, f"{state}_at", at)
    event = await session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.to_state == state)
    )
    if event is not None:
        event.at = at
    await session.flush()


async def backdate(session: AsyncSession, case: Case, by: timedelta) -> None:
    """Move a case's recorded moments back by ``by`` (into the session it was opened in)."""
    for column in ("created_at", "accepted_at", "concluded_at", "delivered_at"):
        if getattr(case, column) is not None:
            setattr(case, column, getattr(case, column) - by)
    for model, column in (
        (CaseEvent, "at"),
        (MaterialCheck, "checked_at"),
        (CorrectionNotice, "issued_at"),
    ):
        for row in (await session.scalars(select(model).where(model.case_id == case.id))).all():
            setattr(row, column, getattr(row, column) - by)
    await session.flush()


async def _session_of(
    session: AsyncSession,
    case: Case,
    kiosk: Kiosk,
    reviewer: Staff,
    enqueued: datetime,
    steps: list[str],
    level: int | None,
    reasons: list[str],
) -> None:
    """The completed video session (ticket) a demo case was opened in, numbered from the day's
    live counter, with its events and the resident's rating."""
    item = case.item
    category = must_exist(await session.get(Category, item.category_id), f"category of {item.code}")
    day = clock.local_day(enqueued)
    sequence = await queue.reserve_numbers(session, day, category)
    moments = {kind: enqueued + timedelta(minutes=m) for kind, m in SESSION_STEPS}
    outcome = (
        "needs_correction"
        if "correction_needed" in steps
        else "referred"
        if "not_accepted" in steps
        else "resolved"
    )
    ticket = Ticket(
        day=day, number=queue.ticket_number(category.letter, sequence), item_id=item.id,
        department_id=item.department_id, station_id=case.station_id, kiosk_id=kiosk.id,
        case_id=case.id, status="completed", enqueued_at=enqueued, offered_to=None,
        offered_at=moments["offered"], offer_count=1, staff_id=reviewer.id,
        connected_at=moments["connected"], ended_at=moments["ended"],
        wrapup_done_at=moments["wrapup_done"], closed_at=moments["wrapup_done"],
        end_reason="kiosk_hangup", outcome=outcome, note="",
    )  # fmt: skip
    session.add(ticket)
    await session.flush()
    for kind, at in moments.items():
        detail = {"case": case.number} if kind == "case_opened" else {}
        staff_id = None if kind == "enqueued" else reviewer.id
        session.add(
            TicketEvent(ticket_id=ticket.id, at=at, kind=kind, staff_id=staff_id, detail=detail)
        )
    await ratings.rate(session, ticket, level, reasons, rated_at=moments["wrapup_done"])


# When each step of a demo session happened, in minutes after the ticket was taken.
SESSION_STEPS = (
    ("enqueued", 0.0),
    ("offered", 0.5),
    ("connected", 1.0),
    ("case_opened", 3.0),
    ("ended", 9.0),
    ("wrapup_done", 10.0),
)
