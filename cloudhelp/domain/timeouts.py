"""Time-out warnings (超时预警): raised while a condition holds, cleared when it stops.

``evaluate`` compares what holds at ``now`` (a clock the caller passes in, so tests control it)
with the warnings still open in the database, and records the difference. Thresholds are set
district-wide, per department or per item; the most specific one applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import iso, local_date
from cloudhelp.core.errors import CodedError
from cloudhelp.domain import audit, cases, queue, workcalendar
from cloudhelp.domain.case_record import notice_late
from cloudhelp.store.models import (
    SUPERVISOR_ROLES,
    Case,
    CorrectionNotice,
    Department,
    FollowUp,
    Rating,
    ServiceItem,
    Staff,
    Station,
    Ticket,
    TimeoutWarning,
    TrackedItem,
    WarningThreshold,
)


@dataclass(frozen=True)
class Kind:
    """A kind of warning: the unit of its threshold and the threshold's default. Its name for
    people is the catalog's ``warning.<kind>`` (cloudhelp.views.warning_labels)."""

    unit: str  # "seconds", "working_days" or "days"
    default: float


KINDS = {
    "ticket_wait": Kind("seconds", 300),
    "call_long": Kind("seconds", 1800),
    "wrapup_long": Kind("seconds", 180),
    "case_due_soon": Kind("working_days", 2),
    "case_overdue": Kind("working_days", 0),
    "notice_late": Kind("days", 5),
    "follow_up_late": Kind("days", 0),
    "calendar_missing": Kind("days", 61),
    # Logistics: an item ready for pickup this many days is not collected (and may go back);
    # an exception (lost, damaged, wrong station, not collected) open this many days.
    "pickup_overdue": Kind("days", 14),
    "logistics_exception": Kind("days", 2),
}


# The board lists the most pressing first: what is already late, then what is running long.
SEVERITY = ("case_overdue", "follow_up_late", "notice_late", "logistics_exception",
            "pickup_overdue", "ticket_wait", "call_long", "wrapup_long", "case_due_soon",
            "calendar_missing")  # fmt: skip
TICKET_KINDS = frozenset({"ticket_wait", "call_long", "wrapup_long"})
# Built once, as queue.IS_QUEUED is (the frequent ticket-only check runs every few seconds).
IS_TICKET_KIND = TimeoutWarning.kind.in_(TICKET_KINDS)


def by_severity(warnings: list[TimeoutWarning]) -> list[TimeoutWarning]:
    """The most pressing kind first (``SEVERITY``); within a kind, the order given."""
    return sorted(warnings, key=lambda w: SEVERITY.index(w.kind))


class WarningError(CodedError):
    """A refused threshold change or acknowledgement."""


class Thresholds:
    """The threshold of each kind of warning for a department and item."""

    def __init__(self, rows: list[WarningThreshold]) -> None:
        self._values = {(r.kind, r.department_id, r.item_id): r.value for r in rows}

    @classmethod
    async def load(cls, session: AsyncSession) -> Thresholds:
        return cls(list((await session.scalars(select(WarningThreshold))).all()))

    def lowest(self, kind: str) -> float:
        """The smallest threshold of a kind anywhere: nothing below it can be late."""
        return min(
            [KINDS[kind].default, *(v for (k, _d, _i), v in self._values.items() if k == kind)]
        )

    def value(self, kind: str, department_id: int | None, item_id: int | None) -> float:
        for scope in ((None, item_id), (department_id, None), (None, None)):
            if (kind, *scope) in self._values:
                return self._values[(kind, *scope)]
        return KINDS[kind].default


async def set_threshold(
    session: AsyncSession,
    kind: str,
    value: float | None,
    department: str | None = None,
    item: str | None = None,
) -> None:
    """Set (or with ``value`` None, remove) a threshold district-wide, per department or item."""
    if kind not in KINDS:
        raise WarningError("unknown_kind", f"A warning kind is one of {', '.join(KINDS)}.")
    if value is not None and value < 0:
        raise WarningError("bad_threshold", "A threshold is zero or more.")
    if department and item:
        raise WarningError("bad_scope", "Set a threshold per department or per item, not both.")
    department_id = item_id = None
    if department:
        department_id = await session.scalar(
            select(Department.id).where(Department.code == department)
        )
        if department_id is None:
            raise WarningError("unknown_department", f"There is no department {department!r}.")
    if item:
        item_id = await session.scalar(select(ServiceItem.id).where(ServiceItem.code == item))
        if item_id is None:
            raise WarningError("unknown_item", f"There is no service item {item!r}.")
    row = await session.scalar(
        select(WarningThreshold).where(
            WarningThreshold.kind == kind,
            WarningThreshold.department_id.is_(None)
            if department_id is None
            else WarningThreshold.department_id == department_id,
            WarningThreshold.item_id.is_(None)
            if item_id is None
            else WarningThreshold.item_id == item_id,
        )
    )
    if value is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(
            WarningThreshold(kind=kind, department_id=department_id, item_id=item_id, value=value)
        )
    else:
        row.value = value


@dataclass
class Condition:
    kind: str
    subject: str
    threshold: float
    department_id: int | None
    item_id: int | None
    station_id: int | None
    staff_id: int | None
    detail: dict[str, Any]


def _ticket_detail(ticket: Ticket, since: datetime) -> dict[str, Any]:
    return {
        "ticket": ticket.number,
        "item": ticket.item.name,
        "department": ticket.department.name,
        "station": ticket.station.name,
        "since": since.isoformat(),
    }


async def _ticket_conditions(
    session: AsyncSession, now: datetime, limits: Thresholds
) -> list[Condition]:
    found = []

    def before(kind: str) -> datetime:
        return now - timedelta(seconds=limits.lowest(kind))

    # Only tickets already past the lowest threshold of their kind are loaded.
    tickets = (
        await session.scalars(
            select(Ticket).where(
                or_(
                    and_(queue.IS_QUEUED, Ticket.enqueued_at < before("ticket_wait")),
                    and_(Ticket.status == "connected", Ticket.connected_at < before("call_long")),
                    and_(Ticket.status == "wrapup", Ticket.ended_at < before("wrapup_long")),
                )
            )
        )
    ).all()
    for ticket in tickets:
        if ticket.status in queue.QUEUED:
            kind, since, staff_id = "ticket_wait", ticket.enqueued_at, None
        elif ticket.status == "connected" and ticket.connected_at is not None:
            kind, since, staff_id = "call_long", ticket.connected_at, ticket.staff_id
        elif ticket.status == "wrapup" and ticket.ended_at is not None:
            kind, since, staff_id = "wrapup_long", ticket.ended_at, ticket.staff_id
        else:
            continue
        threshold = limits.value(kind, ticket.department_id, ticket.item_id)
        if (now - since).total_seconds() > threshold:
            found.append(
                Condition(
                    kind,
                    f"ticket:{ticket.id}",
                    threshold,
                    ticket.department_id,
                    ticket.item_id,
                    ticket.station_id,
                    staff_id,
                    _ticket_detail(ticket, since),
                )
            )
    return found


def _case_condition(
    case: cases.CaseSummary, kind: str, threshold: float, **detail: Any
) -> Condition:
    return Condition(
        kind, f"case:{case.id}", threshold, case.department_id, case.item_id, case.station_id,
        case.staff_id,
        {"case": case.number, "item": case.item_name, "station": case.station_name, **detail},
    )  # fmt: skip


async def _case_conditions(
    session: AsyncSession, now: datetime, limits: Thresholds
) -> list[Condition]:
    found = []
    today = local_date(now)
    for case, due in await cases.running_limits(session, today):
        if due.promised_due is None:
            continue
        overdue_by = limits.value("case_overdue", case.department_id, case.item_id)
        soon = limits.value("case_due_soon", case.department_id, case.item_id)
        detail = {"due": due.promised_due.isoformat()}
        late = workdays.working_days_between(due.promised_due, today)
        if today > due.promised_due and late >= overdue_by:
            found.append(_case_condition(case, "case_overdue", overdue_by, **detail))
        elif due.promised_due <= workdays.add_working_days(today, soon).day:
            found.append(_case_condition(case, "case_due_soon", soon, **detail))
    # Cases waiting for corrections whose round has no notice yet.
    waiting = (
        await session.execute(
            select(*cases.SUMMARY_COLUMNS, Case.created_at, Case.rounds)
            .join(ServiceItem, ServiceItem.id == Case.item_id)
            .join(Station, Station.id == Case.station_id)
            .where(
                Case.status == "correction_needed",
                ~select(CorrectionNotice.id)
                .where(CorrectionNotice.case_id == Case.id, CorrectionNotice.round == Case.rounds)
                .exists(),
            )
        )
    ).all()
    for row in waiting:
        case, created_at, rounds = cases.CaseSummary(*row[:8]), row[8], row[9]
        days = limits.value("notice_late", case.department_id, case.item_id)
        if notice_late(created_at, now, days):
            notice_due = local_date(created_at + timedelta(days=days)).isoformat()
            found.append(_case_condition(case, "notice_late", days, round=rounds, due=notice_due))
    return found


async def _follow_up_conditions(
    session: AsyncSession, now: datetime, limits: Thresholds
) -> list[Condition]:
    found = []
    today = local_date(now)
    rows = (
        await session.execute(
            select(FollowUp, Ticket)
            .join(Rating, Rating.id == FollowUp.rating_id)
            .join(Ticket, Ticket.id == Rating.ticket_id)
            .where(FollowUp.closed_at.is_(None), FollowUp.due_date < today)
        )
    ).all()
    for follow_up, ticket in rows:
        days = limits.value("follow_up_late", ticket.department_id, ticket.item_id)
        if (today - follow_up.due_date).days > days:
            found.append(
                Condition(
                    "follow_up_late",
                    f"follow_up:{follow_up.id}",
                    days,
                    ticket.department_id,
                    ticket.item_id,
                    ticket.station_id,
                    follow_up.assignee_id,
                    _ticket_detail(ticket, ticket.enqueued_at)
                    | {"due": follow_up.due_date.isoformat()},
                )
            )
    return found


def _calendar_conditions(now: datetime, limits: Thresholds) -> list[Condition]:
    """The working-day calendar lacks this year, or next year within the threshold's days of
    its start (61: from 1 November)."""
    today = local_date(now)
    held = workdays.current().years
    days = limits.value("calendar_missing", None, None)
    missing = [today.year] if today.year not in held else []
    next_year = today.year + 1
    if next_year not in held and (date(next_year, 1, 1) - today).days <= days:
        missing.append(next_year)
    return [
        Condition("calendar_missing", f"calendar:{year}", days, None, None, None, None,
                  {"year": year, "due": date(year, 1, 1).isoformat()})
        for year in missing
    ]  # fmt: skip


def past(since: datetime, now: datetime, days: float) -> bool:
    """Whether a wait that began at ``since`` has run past ``days`` at ``now``."""
    return now - since > timedelta(days=days)


async def _logistics_conditions(
    session: AsyncSession, now: datetime, limits: Thresholds
) -> list[Condition]:
    """Items waiting for pickup past their days, and exceptions not resolved (the item not
    back at the hall) within theirs; the warning names the person responsible if they have
    an account."""
    found = []
    rows = (
        await session.scalars(
            select(TrackedItem).where(
                TrackedItem.finished_at.is_(None),
                or_(TrackedItem.status == "ready", TrackedItem.exception.is_not(None)),
            )
        )
    ).all()
    people = dict((await session.execute(select(Staff.username, Staff.id))).all())
    for item in rows:
        case, service = item.case, item.case.item
        if item.exception is not None:
            kind, since = "logistics_exception", item.exception_at or now
            staff_id = people.get(item.responsible or "")
        else:
            kind, since, staff_id = "pickup_overdue", item.ready_at or now, None
        days = limits.value(kind, service.department_id, service.id)
        if not past(since, now, days):
            continue
        station = item.at_station or item.destination
        found.append(
            Condition(kind, f"item:{item.id}", days, service.department_id, service.id,
                      station.id, staff_id,
                      {"case": case.number, "item": service.name, "station": station.name,
                       "code": item.code, "since": since.isoformat(),
                       "due": local_date(since + timedelta(days=days)).isoformat(),
                       "exception": item.exception, "responsible": item.responsible})
        )  # fmt: skip
    return found


@dataclass
class Changes:
    raised: list[TimeoutWarning]
    cleared: list[TimeoutWarning]

    def __bool__(self) -> bool:
        return bool(self.raised or self.cleared)

    def staff_concerned(self) -> set[int]:
        return {w.staff_id for w in self.raised + self.cleared if w.staff_id is not None}


async def evaluate(session: AsyncSession, now: datetime, every_kind: bool = True) -> Changes:
    """Raise the warnings whose condition holds at ``now`` and clear those whose stopped.

    With ``every_kind`` false only the ticket kinds are checked (they change by the second;
    cases and follow-ups change by the day) and warnings of the other kinds are left as they are.
    """
    limits = await Thresholds.load(session)
    conditions = await _ticket_conditions(session, now, limits)
    if every_kind:
        await workcalendar.refresh(session)  # an import from the command line takes effect here
        conditions += _calendar_conditions(now, limits)
        conditions += await _case_conditions(session, now, limits)
        conditions += await _follow_up_conditions(session, now, limits)
        conditions += await _logistics_conditions(session, now, limits)
    holding = {(c.kind, c.subject): c for c in conditions}
    still_open = select(TimeoutWarning).where(TimeoutWarning.cleared_at.is_(None))
    if not every_kind:
        still_open = still_open.where(IS_TICKET_KIND)
    open_rows = (await session.scalars(still_open)).all()
    active = {(w.kind, w.subject): w for w in open_rows}
    changes = Changes([], [])
    for key, warning in active.items():
        if key not in holding:
            warning.cleared_at = now
            changes.cleared.append(warning)
    for key, c in holding.items():
        if key in active:
            continue
        warning = TimeoutWarning(
            kind=c.kind, subject=c.subject, department_id=c.department_id, item_id=c.item_id,
            station_id=c.station_id, staff_id=c.staff_id, threshold=c.threshold,
            detail=c.detail, raised_at=now,
        )  # fmt: skip
        session.add(warning)
        changes.raised.append(warning)
    await session.flush()
    return changes


async def acknowledge(
    session: AsyncSession, warning_id: int, actor: Staff, now: datetime
) -> TimeoutWarning:
    """Record who acknowledged a warning and when (the first acknowledgement stands, and goes
    into the audit trail: from the board, the console or the API alike)."""
    warning = await session.get(TimeoutWarning, warning_id)
    if warning is None:
        raise WarningError("no_such_warning", "There is no such warning.")
    if actor.role == "staff" and warning.staff_id != actor.id:
        raise WarningError("not_yours", "Staff acknowledge the warnings that concern them.")
    if warning.acked_at is None:
        warning.acked_at, warning.acked_by = now, actor.display_name
        detail = warning.detail or {}
        case_number = detail.get("case") if isinstance(detail.get("case"), str) else None
        await audit.append(session, audit.staff_actor(actor), "warning.acknowledged",
                           subject_kind="warning", subject=str(warning.id),
                           case_number=case_number, kind=warning.kind,
                           ticket_number=detail.get("ticket"))  # fmt: skip
    return warning


async def active(session: AsyncSession, staff_id: int | None = None) -> list[TimeoutWarning]:
    stmt = select(TimeoutWarning).where(TimeoutWarning.cleared_at.is_(None))
    if staff_id is not None:
        stmt = stmt.where(TimeoutWarning.staff_id == staff_id)
    return list(
        (await session.scalars(stmt.order_by(TimeoutWarning.raised_at, TimeoutWarning.id))).all()
    )


async def listed(
    session: AsyncSession,
    viewer: Staff,
    raised: tuple[datetime, datetime] | None = None,
    limit: int = 1000,
) -> list[TimeoutWarning]:
    """Warnings newest first: the active ones, or (``raised``: ``start <= at < end``) all
    raised in a range; staff see the warnings that concern them, supervisors every one."""
    stmt = select(TimeoutWarning).order_by(TimeoutWarning.raised_at.desc(), TimeoutWarning.id)
    if raised is None:
        stmt = stmt.where(TimeoutWarning.cleared_at.is_(None))
    else:
        stmt = stmt.where(
            TimeoutWarning.raised_at >= raised[0], TimeoutWarning.raised_at < raised[1]
        )
    if viewer.role not in SUPERVISOR_ROLES:
        stmt = stmt.where(TimeoutWarning.staff_id == viewer.id)
    return list((await session.scalars(stmt.limit(limit))).all())


async def overrides(session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
    """Every threshold set, by kind: ``department`` and ``item`` codes (None: any) and
    ``value``."""
    rows = await session.execute(
        select(WarningThreshold, Department.code, ServiceItem.code)
        .outerjoin(Department, Department.id == WarningThreshold.department_id)
        .outerjoin(ServiceItem, ServiceItem.id == WarningThreshold.item_id)
    )
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for row, department, item in rows.all():
        found.setdefault(row.kind, []).append(
            {"department": department, "item": item, "value": row.value}
        )
    return found


def warning_data(warning: TimeoutWarning) -> dict[str, Any]:
    """A warning as JSON data: codes, numbers and times (views add the kind's name)."""
    kind = KINDS[warning.kind]
    return {
        "id": warning.id,
        "kind": warning.kind,
        "unit": kind.unit,
        "threshold": warning.threshold,
        "subject": warning.subject,
        "staff_id": warning.staff_id,
        "detail": warning.detail,
        "raised_at": warning.raised_at.isoformat(),
        "cleared_at": iso(warning.cleared_at),
        "acked_at": iso(warning.acked_at),
        "acked_by": warning.acked_by,
    }
