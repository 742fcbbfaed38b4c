"""``cloudhelp calendar``: the working-day calendar from the command line (import, set, show)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date
from pathlib import Path

from cloudhelp.cli.failures import rejected
from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.core import workdays
from cloudhelp.domain import audit, workcalendar
from cloudhelp.store import db

KIND_LABELS = {"holiday": "休", "workday": "班"}


def _outcome_lines(outcome: workcalendar.Outcome) -> list[str]:
    lines = [f"  {len(outcome.moved)} open due dates moved."]
    for change in outcome.moved:
        number = change.detail.get("case") or change.subject
        old = f"{change.old_due}{' (estimated)' if change.old_estimated else ''}"
        new = f"{change.new_due}{' (estimated)' if change.new_estimated else ''}"
        lines.append(f"    {number}: {old} → {new}")
    return lines


def _actor(args: argparse.Namespace) -> audit.Actor:
    """The operator: ``--actor`` when given, else the operating-system user."""
    return audit.cli_actor(None if args.actor == "cli" else args.actor)


async def cmd_calendar_import(args: argparse.Namespace) -> int:
    """Import whole years of holidays and 调休 from a file; print the due dates that moved."""
    settings = settings_of(args)
    try:
        entries = await asyncio.to_thread(workcalendar.parse_file, Path(args.file))
    except workcalendar.CalendarError as exc:
        raise rejected(args.file, [exc.message]) from None

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            outcome = await workcalendar.import_entries(
                session, entries, actor=args.actor, follow_up_days=settings.follow_up_working_days
            )
            await audit.append(session, _actor(args), "setting.calendar",
                               subject_kind="calendar", subject=",".join(map(str, outcome.years)),
                               days=len(entries), moved=len(outcome.moved))  # fmt: skip
        years = ", ".join(map(str, outcome.years))
        print(f"Imported {len(entries)} days of the working-day calendar for {years}.")
        print("\n".join(_outcome_lines(outcome)))
        return 0

    return await with_database(settings, work)


async def cmd_calendar_set(args: argparse.Namespace) -> int:
    """Make one day a holiday or a working day; print the due dates that moved."""
    settings = settings_of(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            outcome = await workcalendar.set_day(
                session, args.date, args.kind, args.name, actor=args.actor,
                follow_up_days=settings.follow_up_working_days,
            )  # fmt: skip
            await audit.append(session, _actor(args), "setting.calendar",
                               subject_kind="calendar", subject=args.date.isoformat(),
                               day=args.date.isoformat(), name=args.name,
                               moved=len(outcome.moved), day_kind=args.kind)  # fmt: skip
        print(f"{args.date} is now a {args.kind} ({args.name or '—'}).")
        print("\n".join(_outcome_lines(outcome)))
        return 0

    return await with_database(settings, work)


async def cmd_calendar_show(args: argparse.Namespace) -> int:
    """One year's holidays and 调休, with its count of working days."""
    settings = settings_of(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session:
            year, days = await workcalendar.days_of(session, args.year)
        if year is None:
            raise workcalendar.CalendarError(
                "year_not_in_calendar",
                f"{args.year} is not in the calendar: its due dates are estimated (Monday to "
                "Friday) until it is imported (cloudhelp calendar import FILE).",
            )
        if args.json:
            body = {
                "year": year.year,
                "source": year.source,
                "loaded_at": year.loaded_at.isoformat(),
                "loaded_by": year.loaded_by,
                "days": [{"date": d.day.isoformat(), "kind": d.kind, "name": d.name} for d in days],
            }
            print(json.dumps(body, ensure_ascii=False, indent=1))
            return 0
        working = sum(
            workdays.current().is_working_day(date.fromordinal(n))[0]
            for n in range(date(year.year, 1, 1).toordinal(), date(year.year + 1, 1, 1).toordinal())
        )
        print(
            f"{year.year}: {working} working days; from {year.source}, loaded "
            f"{year.loaded_at:%Y-%m-%d %H:%M} UTC by {year.loaded_by}."
        )
        for d in days:
            print(f"  {d.day}  {'一二三四五六日'[d.day.weekday()]}  {KIND_LABELS[d.kind]}  "
                  f"{d.kind:<7}  {d.name}")  # fmt: skip
        return 0

    return await with_database(settings, work)
