"""Cases (办件): numbers, applicants, the government case lifecycle and time limits.

States and their legal moves (each recorded with who, when and why; anything else is refused):

    pre_review ──▶ correction_needed ──(corrected materials)──▶ pre_review (next round),
        │                  │                                 or back to accepted after acceptance
        ├──▶ awaiting_acceptance ──▶ accepted ──▶ concluded ──▶ delivered
        │                                 │
        └──▶ not_accepted ◀───────────────┘ (also from correction_needed, awaiting_acceptance)

The due date runs from acceptance by the item's promised limit in working days; time spent in
``correction_needed`` after acceptance does not count (the clock stops).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock, workdays
from cloudhelp.core.errors import CodedError
from cloudhelp.domain import audit
from cloudhelp.store import counters
from cloudhelp.store.models import Case, CaseCounter, CaseEvent, ServiceItem, Staff, Station, utcnow

STATES = {
    "pre_review": "预审中",
    "correction_needed": "待补正",
    "awaiting_acceptance": "待受理",
    "accepted": "已受理",
    "concluded": "已办结",
    "delivered": "已送达",
    "not_accepted": "不予受理",
}
TRANSITIONS = {
    "pre_review": {"correction_needed", "awaiting_acceptance", "not_accepted"},
    "correction_needed": {"pre_review", "accepted", "not_accepted"},
    "awaiting_acceptance": {"accepted", "not_accepted"},
    "accepted": {"correction_needed", "concluded", "not_accepted"},
    "concluded": {"delivered"},
    "delivered": set(),
    "not_accepted": set(),
}
# Where pre-review moves a case (the console's checklist and verdict), not the case page.
REVIEW_MOVES = frozenset({"correction_needed", "pre_review"})
# A case a resident can come back for at a kiosk (looked up by number, a correction session):
# it waits for corrections, or a dropped call left its pre-review open.
CORRECTION_STATES = ("correction_needed", "pre_review")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PHONE = re.compile(r"^1\d{10}$")


class CaseError(CodedError):
    """A refused case operation (applicant details, a move the lifecycle does not allow)."""


def id_check_character(first17: str) -> str:
    """The GB 11643-1999 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def valid_id_number(number: str) -> bool:
    """A resident identity card number with a real birth date and a correct check character."""
    if not re.fullmatch(r"\d{17}[\dXx]", number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return id_check_character(number[:17]) == number[17].upper()


def valid_phone(phone: str) -> bool:
    """A mainland mobile number: 11 digits starting with 1."""
    return bool(_PHONE.match(phone))


def mask_id_number(number: str) -> str:
    """Shown everywhere except where a staff member must see it: 210211********123X."""
    return number[:6] + "*" * 8 + number[-4:] if len(number) == 18 else "*" * len(number)


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "*" * len(phone)


async def reserve_numbers(
    session: AsyncSession, district: str, day: date, count: int = 1
) -> list[str]:
    """``count`` consecutive case numbers of ``day``: district-day-serial, 6-8-4 digits
    (210211-20261202-0002; what a resident types at the kiosk, case_lookup.case_number)."""
    if count < 1:
        return []
    today = f"{day:%Y%m%d}"
    last = await counters.advance(session, CaseCounter, {"day": today}, by=count)
    return [f"{district}-{today}-{serial:04d}" for serial in range(last - count + 1, last + 1)]


async def open_case(
    session: AsyncSession,
    *,
    district: str,
    item: ServiceItem,
    station_id: int,
    staff_id: int | None,
    name: str,
    phone: str,
    id_number: str,
    actor: str,
    day: date | None = None,
) -> Case:
    """A new case in pre-review; the applicant's details are checked first. ``day``: the day
    it is numbered for (the demo's older cases); today by default."""
    name = name.strip()
    if not 1 <= len(name) <= 50:
        raise CaseError(
            "bad_applicant", "The applicant's name is required (at most 50 characters)."
        )
    if not valid_phone(phone):
        raise CaseError("bad_phone", "A mobile number has 11 digits and starts with 1.")
    id_number = id_number.strip().upper()
    if not valid_id_number(id_number):
        raise CaseError(
            "bad_id_number", "The ID card number is not valid (check its last character)."
        )
    (number,) = await reserve_numbers(session, district, day or clock.today())
    case = Case(
        number=number,
        item_id=item.id,
        station_id=station_id,
        staff_id=staff_id,
        applicant_name=name,
        applicant_phone=phone,
        applicant_id_number=id_number,
        status="pre_review",
    )
    session.add(case)
    await session.flush()
    session.add(CaseEvent(case_id=case.id, from_state=None, to_state="pre_review", actor=actor))
    return case


async def transition(
    session: AsyncSession, case: Case, to_state: str, actor: str, reason: str = ""
) -> CaseEvent:
    """Move a case to ``to_state`` if the lifecycle allows it; recorded with who and when."""
    if to_state not in STATES:
        raise CaseError("unknown_state", f"There is no case state {to_state!r}.")
    if to_state not in TRANSITIONS[case.status]:
        raise CaseError(
            "illegal_transition",
            f"A case that is {STATES[case.status]} ({case.status}) cannot become "
            f"{STATES[to_state]} ({to_state}).",
        )
    if to_state == "accepted" and case.status == "correction_needed" and case.accepted_at is None:
        raise CaseError(
            "illegal_transition",
            "Corrected materials before acceptance go back to pre-review (预审中), not to 已受理.",
        )
    if to_state == "not_accepted" and not reason.strip():
        raise CaseError("reason_required", "Say why the case is not accepted.")
    now = utcnow()
    event = CaseEvent(
        case_id=case.id,
        from_state=case.status,
        to_state=to_state,
        actor=actor,
        reason=reason,
        at=now,
    )
    if to_state == "pre_review" and case.status == "correction_needed":
        case.rounds += 1  # a correction session: the next round of pre-review
    if to_state == "accepted" and case.accepted_at is None:
        case.accepted_at = now
    elif to_state == "concluded":
        case.concluded_at = now
    elif to_state == "delivered":
        case.delivered_at = now
    elif to_state == "not_accepted":
        case.not_accepted_reason = reason
    from_state, case.status = case.status, to_state
    session.add(event)
    await session.flush()
    await audit.append(
        session,
        audit.Actor(
            "staff", actor, await session.scalar(select(Staff.id).where(Staff.username == actor))
        ),
        "case.transition",
        subject_kind="case",
        subject=case.number,
        case_number=case.number,
        at=now,
        reason=reason,
        **{"from": from_state, "to": to_state},
    )
    return event


async def for_correction(session: AsyncSession, number: str) -> Case | None:
    """The case numbered ``number`` if a resident may call back for it (CORRECTION_STATES)."""
    return await session.scalar(
        select(Case).where(Case.number == number, Case.status.in_(CORRECTION_STATES))
    )


async def events_of(session: AsyncSession, case: Case) -> list[CaseEvent]:
    rows = await session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at, CaseEvent.id)
    )
    return list(rows.all())


async def events_by_case(session: AsyncSession, ids: list[int]) -> dict[int, list[CaseEvent]]:
    """The events of many cases in one query, each case's in order (a list of cases reads
    them at once, not once per row)."""
    found: dict[int, list[CaseEvent]] = {case_id: [] for case_id in ids}
    if not ids:
        return found
    rows = await session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id.in_(ids))
        .order_by(CaseEvent.case_id, CaseEvent.at, CaseEvent.id)
    )
    for event in rows.all():
        found[event.case_id].append(event)
    return found


def allowed_moves(case: Case) -> list[str]:
    """The states :func:`transition` accepts from the case's state now, sorted (a
    ``correction_needed`` case goes to ``accepted`` only if it was accepted before)."""
    moves = TRANSITIONS[case.status]
    if case.status == "correction_needed" and case.accepted_at is None:
        moves = moves - {"accepted"}
    return sorted(moves)


def manual_moves(case: Case) -> list[str]:
    """The moves a person makes by hand on the case page: the allowed ones except those of
    pre-review, which happen in the console beside the video (checklist and verdict)."""
    return [m for m in allowed_moves(case) if m not in REVIEW_MOVES]


@dataclass(frozen=True)
class TimeLimits:
    promised_due: date | None
    statutory_due: date | None
    paused_working_days: int
    # Estimated (Monday-Friday but for the fixed-date holidays, workdays.FIXED_DATE_HOLIDAYS):
    # the date falls in a year without its holiday calendar.
    promised_estimated: bool
    statutory_estimated: bool

    @property
    def estimated(self) -> bool:
        """Either date is estimated."""
        return self.promised_estimated or self.statutory_estimated


def time_limits(case: Case, events: list[CaseEvent], today: date | None = None) -> TimeLimits:
    """Due dates by the promised and statutory limits, from acceptance, with the clock stopped
    while the case waited for corrections after acceptance."""
    return limits_of(
        case.accepted_at, case.item.promised_days, case.item.statutory_days, events, today
    )


def limits_of(
    accepted_at: datetime | None,
    promised_days: float,
    statutory_days: float,
    events: list[CaseEvent],
    today: date | None = None,
) -> TimeLimits:
    if accepted_at is None:
        return TimeLimits(None, None, 0, False, False)
    paused = 0
    waiting_since: datetime | None = None
    for event in events:
        if event.at < accepted_at:
            continue
        if event.to_state == "correction_needed":
            waiting_since = event.at
        elif waiting_since is not None:
            paused += workdays.working_days_between(
                clock.local_date(waiting_since), clock.local_date(event.at)
            )
            waiting_since = None
    if waiting_since is not None:
        now_day = today or clock.today()
        paused += workdays.working_days_between(clock.local_date(waiting_since), now_day)
    start = clock.local_date(accepted_at)
    promised = workdays.add_working_days(start, promised_days + paused)
    statutory = workdays.add_working_days(start, statutory_days + paused)
    return TimeLimits(
        promised.day,
        statutory.day,
        paused,
        promised.estimated,
        statutory.estimated,
    )


@dataclass(frozen=True)
class CaseSummary:
    """What deadline checks need of a case, read without loading the whole row."""

    id: int
    number: str
    item_id: int
    item_name: str
    department_id: int
    station_id: int
    station_name: str
    staff_id: int | None


SUMMARY_COLUMNS = (
    Case.id, Case.number, Case.item_id, ServiceItem.name, ServiceItem.department_id,
    Case.station_id, Station.name, Case.staff_id,
)  # fmt: skip


async def running_limits(
    session: AsyncSession, today: date
) -> list[tuple[CaseSummary, TimeLimits]]:
    """The time limits of every accepted case whose clock is running (not yet concluded)."""
    rows = (
        await session.execute(
            select(*SUMMARY_COLUMNS, Case.accepted_at, ServiceItem.promised_days,
                   ServiceItem.statutory_days)
            .join(ServiceItem, ServiceItem.id == Case.item_id)
            .join(Station, Station.id == Case.station_id)
            .where(Case.status == "accepted")
        )
    ).all()  # fmt: skip
    events: dict[int, list[CaseEvent]] = {}
    # Only moves into and out of 待补正 stop and restart the clock.
    pauses = (
        select(CaseEvent)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(
            Case.status == "accepted",
            or_(
                CaseEvent.to_state == "correction_needed",
                CaseEvent.from_state == "correction_needed",
            ),
        )
        .order_by(CaseEvent.at, CaseEvent.id)
    )
    for event in (await session.scalars(pauses)).all():
        events.setdefault(event.case_id, []).append(event)
    return [
        (
            CaseSummary(*row[:8]),
            limits_of(row[8], row[9], row[10], events.get(row[0], []), today),
        )
        for row in rows
    ]


def case_json(case: Case, events: list[CaseEvent], *, full_id: bool = False) -> dict[str, Any]:
    """A case with its state code and Chinese label; the ID number masked unless ``full_id``."""
    limits = time_limits(case, events)
    return {
        "number": case.number,
        "status": {"code": case.status, "label": STATES[case.status]},
        "item": {"code": case.item.code, "name": case.item.name},
        "station": {"code": case.station.code, "name": case.station.name},
        "applicant": {
            "name": case.applicant_name,
            "phone": case.applicant_phone if full_id else mask_phone(case.applicant_phone),
            "id_number": case.applicant_id_number
            if full_id
            else mask_id_number(case.applicant_id_number),
        },
        "rounds": case.rounds,
        "created_at": case.created_at.isoformat(),
        "accepted_at": clock.iso(case.accepted_at),
        "not_accepted_reason": case.not_accepted_reason or None,
        "time_limits": {
            "promised_days": case.item.promised_days,
            "statutory_days": case.item.statutory_days,
            "promised_due": clock.iso(limits.promised_due),
            "statutory_due": clock.iso(limits.statutory_due),
            "paused_working_days": limits.paused_working_days,
            "calendar_estimated": limits.estimated,
            "promised_estimated": limits.promised_estimated,
            "statutory_estimated": limits.statutory_estimated,
        },
        "events": [
            {
                "at": e.at.isoformat(),
                "from": {"code": e.from_state, "label": STATES[e.from_state]}
                if e.from_state
                else None,
                "to": {"code": e.to_state, "label": STATES[e.to_state]},
                "actor": e.actor,
                "reason": e.reason,
            }
            for e in events
        ],
    }
