"""The district's working-day calendar, kept in the database.

Each year of the official calendar (the State Council's notice of holidays and adjusted working
days) is a ``calendar_years`` row with its ``calendar_days``: the holidays and the adjusted
working days (调休上班); every other day of a held year is a working day exactly when it is Monday
to Friday. The migration seeds the years the ``chinesecalendar`` package knows; a new year is
imported from a small file (``parse_file``: JSON or CSV, see docs/metrics.md) and single days
are corrected with ``set_day``. Whenever the calendar changes, the due dates of open cases and
follow-ups are recomputed and every date that moved is recorded (``due_date_changes``).

Processes compute with the copy installed in ``cloudhelp.core.workdays``; ``refresh`` reloads it
when the database's calendar changed (one small query), so an import from the command line
reaches a running server at its next warning check.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import iso, local_date
from cloudhelp.core.errors import CodedError
from cloudhelp.core.workdays import Entry, package_entries
from cloudhelp.domain import cases
from cloudhelp.store.models import (
    CalendarDay,
    CalendarYear,
    Case,
    CaseEvent,
    DueDateChange,
    FollowUp,
    Rating,
    ServiceItem,
    utcnow,
)

KINDS = ("holiday", "workday")
OPEN_CASE_STATES = ("accepted", "correction_needed")


class CalendarError(CodedError):
    """A refused calendar file or day change."""


# ------------------------------------------------------------------ reading and installing


async def revision(session: AsyncSession) -> tuple[int, datetime | None]:
    """Changes whenever a year is added or any of its days is changed."""
    row = (await session.execute(select(func.count(), func.max(CalendarYear.changed_at)))).one()
    return int(row[0]), row[1]


async def read(session: AsyncSession) -> workdays.Calendar:
    """The database's calendar, ready to install."""
    stamp = await revision(session)
    years = frozenset((await session.scalars(select(CalendarYear.year))).all())
    rows = (await session.execute(select(CalendarDay.day, CalendarDay.kind))).all()
    return workdays.Calendar(years, {day: kind == "workday" for day, kind in rows}, stamp)


async def refresh(session: AsyncSession) -> bool:
    """Install the database's calendar if it changed since this process read it."""
    if await revision(session) == workdays.current().revision:
        return False
    workdays.install(await read(session))
    return True


# ------------------------------------------------------------------ files


def _entry(raw_day: object, raw_kind: object, raw_name: object, where: str) -> Entry:
    try:
        day = date.fromisoformat(str(raw_day).strip())
    except ValueError:
        raise CalendarError(
            "bad_date", f"{where}: {raw_day!r} is not a date (YYYY-MM-DD)."
        ) from None
    kind = str(raw_kind or "").strip()
    if kind not in KINDS:
        raise CalendarError("bad_kind", f"{where}: the kind is holiday or workday, not {kind!r}.")
    name = str(raw_name or "").strip()
    if len(name) > 64:
        raise CalendarError("bad_name", f"{where}: a name has at most 64 characters.")
    return Entry(day, kind, name)


def parse(text: str, suffix: str) -> list[Entry]:
    """Entries from a calendar file's text: ``.json`` or ``.csv`` (see docs/metrics.md)."""
    entries: list[Entry] = []
    if suffix == ".json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalendarError("bad_calendar_file", f"The file is not JSON: {exc}.") from None
        days = document.get("days") if isinstance(document, dict) else None
        if not isinstance(days, list):
            raise CalendarError("bad_calendar_file", 'A JSON calendar is {"days": [...]}.')
        for index, row in enumerate(days, 1):
            if not isinstance(row, dict):
                raise CalendarError("bad_calendar_file", f"day {index}: not an object.")
            entries.append(
                _entry(row.get("date"), row.get("kind"), row.get("name"), f"day {index}")
            )
        declared = document.get("year")
        if declared is not None and any(e.day.year != declared for e in entries):
            raise CalendarError("bad_calendar_file", f"Every date must lie in {declared}.")
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        if not reader.fieldnames or not {"date", "kind"} <= set(reader.fieldnames):
            raise CalendarError(
                "bad_calendar_file", "A CSV calendar has the columns date,kind,name."
            )
        for row in reader:
            where = f"line {reader.line_num}"
            entries.append(_entry(row.get("date"), row.get("kind"), row.get("name"), where))
    else:
        raise CalendarError("bad_calendar_file", "A calendar file ends in .json or .csv.")
    if not entries:
        raise CalendarError("bad_calendar_file", "The file lists no days.")
    seen: set[date] = set()
    for entry in entries:
        if entry.day in seen:
            raise CalendarError("duplicate_date", f"{entry.day} is listed twice.")
        seen.add(entry.day)
    return sorted(entries, key=lambda e: e.day)


def parse_file(path: Path) -> list[Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarError("bad_calendar_file", f"Cannot read {path}: {exc.strerror}.") from None
    return parse(text, path.suffix.lower())


# ------------------------------------------------------------------ changing the calendar


@dataclass(frozen=True)
class Outcome:
    years: list[int]
    moved: list[DueDateChange]


async def import_entries(
    session: AsyncSession,
    entries: Iterable[Entry],
    *,
    actor: str,
    follow_up_days: float,
    source: str = "import",
    now: datetime | None = None,
) -> Outcome:
    """Store whole years: each year in ``entries`` replaces what the calendar held for it."""
    now = now or utcnow()
    by_year: dict[int, list[Entry]] = {}
    for entry in entries:
        by_year.setdefault(entry.day.year, []).append(entry)
    before = await read(session)
    for year, year_entries in sorted(by_year.items()):
        await session.execute(delete(CalendarDay).where(CalendarDay.year == year))
        row = await session.get(CalendarYear, year)
        if row is None:
            session.add(CalendarYear(year=year, source=source, loaded_at=now, loaded_by=actor,
                                     changed_at=now))  # fmt: skip
        else:
            row.source, row.loaded_at, row.loaded_by, row.changed_at = source, now, actor, now
        await session.flush()
        session.add_all(
            CalendarDay(day=e.day, year=year, kind=e.kind, name=e.name, changed_at=now,
                        changed_by=actor)
            for e in year_entries
        )  # fmt: skip
    await session.flush()
    years = sorted(by_year)
    reason = f"calendar {source} {', '.join(map(str, years))}"
    moved = await _recompute(session, before, actor, reason, follow_up_days, now)
    return Outcome(years, moved)


async def sync_from_package(
    session: AsyncSession, *, follow_up_days: float, now: datetime | None = None
) -> Outcome:
    """Add the years the installed chinesecalendar knows and the database does not hold yet
    (never touching a year the database has: the district's own edits stand)."""
    held = set((await session.scalars(select(CalendarYear.year))).all())
    new = [e for e in package_entries() if e.day.year not in held]
    if not new:
        return Outcome([], [])
    return await import_entries(
        session, new, actor="chinesecalendar", follow_up_days=follow_up_days,
        source="chinesecalendar", now=now,
    )  # fmt: skip


async def set_day(
    session: AsyncSession,
    day: date,
    kind: str,
    name: str,
    *,
    actor: str,
    follow_up_days: float,
    now: datetime | None = None,
) -> Outcome:
    """Make one day of a held year a holiday or an adjusted working day."""
    now = now or utcnow()
    if kind not in KINDS:
        raise CalendarError("bad_kind", f"The kind is holiday or workday, not {kind!r}.")
    year = await session.get(CalendarYear, day.year)
    if year is None:
        raise CalendarError(
            "year_not_in_calendar",
            f"{day.year} is not in the calendar yet: import the whole year first "
            "(cloudhelp calendar import FILE).",
        )
    before = await read(session)
    row = await session.get(CalendarDay, day)
    if row is None:
        session.add(CalendarDay(day=day, year=day.year, kind=kind, name=name, changed_at=now,
                                changed_by=actor))  # fmt: skip
    else:
        row.kind, row.name, row.changed_at, row.changed_by = kind, name, now, actor
    year.changed_at = now
    await session.flush()
    moved = await _recompute(session, before, actor, f"calendar set {day} {kind}", follow_up_days,
                             now)  # fmt: skip
    return Outcome([day.year], moved)


async def days_of(
    session: AsyncSession, year: int
) -> tuple[CalendarYear | None, list[CalendarDay]]:
    days = await session.scalars(
        select(CalendarDay).where(CalendarDay.year == year).order_by(CalendarDay.day)
    )
    return await session.get(CalendarYear, year), list(days.all())


async def _recompute(
    session: AsyncSession,
    before: workdays.Calendar,
    actor: str,
    reason: str,
    follow_up_days: float,
    now: datetime,
) -> list[DueDateChange]:
    """Install the new calendar and record each open case and follow-up whose due date moved."""
    today = local_date(now)
    case_rows, events = await _open_cases(session)
    follow_ups = (
        await session.execute(
            select(FollowUp, Rating.created_at)
            .join(Rating, Rating.id == FollowUp.rating_id)
            .where(FollowUp.closed_at.is_(None))
        )
    ).all()
    after = await read(session)

    def limits(calendar: workdays.Calendar) -> tuple[dict, dict]:
        # No await between install and use: nothing else computes with this calendar meanwhile.
        workdays.install(calendar)
        case_limits = {
            row[0]: cases.limits_of(row[2], row[3], row[4], events.get(row[0], []), today)
            for row in case_rows
        }
        follow_up_dues = {
            f.id: workdays.add_working_days(local_date(rated), follow_up_days)
            for f, rated in follow_ups
        }
        return case_limits, follow_up_dues

    old_cases, old_follow_ups = limits(before)
    new_cases, new_follow_ups = limits(after)
    change = {"at": now, "reason": reason, "actor": actor}
    moved = [
        _case_change(case_id, number, old_cases[case_id], new_cases[case_id], change)
        for case_id, number, *_ in case_rows
        if _moved(old_cases[case_id], new_cases[case_id])
    ]
    for follow_up, _rated in follow_ups:
        old_due, new_due = old_follow_ups[follow_up.id], new_follow_ups[follow_up.id]
        stored = (follow_up.due_date, follow_up.due_estimated)
        # Only a date that followed the old calendar moves: one set by other rules stays.
        if stored != (old_due.day, old_due.estimated) or old_due == new_due:
            continue
        follow_up.due_date, follow_up.due_estimated = new_due.day, new_due.estimated
        moved.append(
            DueDateChange(
                subject=f"follow_up:{follow_up.id}", follow_up_id=follow_up.id,
                old_due=old_due.day, new_due=new_due.day, old_estimated=old_due.estimated,
                new_estimated=new_due.estimated, detail={}, **change,
            )
        )  # fmt: skip
    session.add_all(moved)
    await session.flush()
    return moved


async def _open_cases(session: AsyncSession) -> tuple[list[Any], dict[int, list[CaseEvent]]]:
    """Accepted cases still open (their clock can move), with their events in order."""
    case_rows = list(
        (
            await session.execute(
                select(Case.id, Case.number, Case.accepted_at, ServiceItem.promised_days,
                       ServiceItem.statutory_days)
                .join(ServiceItem, ServiceItem.id == Case.item_id)
                .where(Case.status.in_(OPEN_CASE_STATES), Case.accepted_at.is_not(None))
            )
        ).all()
    )  # fmt: skip
    events: dict[int, list[CaseEvent]] = {}
    if case_rows:
        pauses = (
            select(CaseEvent)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(Case.status.in_(OPEN_CASE_STATES), Case.accepted_at.is_not(None))
            .order_by(CaseEvent.at, CaseEvent.id)
        )
        for event in (await session.scalars(pauses)).all():
            events.setdefault(event.case_id, []).append(event)
    return case_rows, events


def _moved(old: cases.TimeLimits, new: cases.TimeLimits) -> bool:
    return (old.promised_due, old.statutory_due, old.estimated) != (
        new.promised_due, new.statutory_due, new.estimated,
    )  # fmt: skip


def _case_change(
    case_id: int,
    number: str,
    old: cases.TimeLimits,
    new: cases.TimeLimits,
    change: dict[str, Any],
) -> DueDateChange:
    return DueDateChange(
        subject=f"case:{case_id}", case_id=case_id,
        old_due=old.promised_due, new_due=new.promised_due,
        old_estimated=old.estimated, new_estimated=new.estimated,
        detail={
            "case": number,
            "old_statutory_due": old.statutory_due and old.statutory_due.isoformat(),
            "new_statutory_due": new.statutory_due and new.statutory_due.isoformat(),
        },
        **change,
    )  # fmt: skip


def change_json(change: DueDateChange) -> dict[str, object]:
    return {
        "at": change.at.isoformat(),
        "subject": change.subject,
        "reason": change.reason,
        "actor": change.actor,
        "old_due": iso(change.old_due),
        "new_due": iso(change.new_due),
        "old_estimated": change.old_estimated,
        "new_estimated": change.new_estimated,
        **change.detail,
    }
