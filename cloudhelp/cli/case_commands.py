"""``cloudhelp case list|show``: cases (办件), newest first a page at a time, or one with its
history, sessions, checklists and notices."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from cloudhelp.cli.failures import CommandFailed
from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.core import clock
from cloudhelp.domain import cases
from cloudhelp.domain.case_record import case_record
from cloudhelp.store import db
from cloudhelp.store.models import Case

PAGE_SIZE = 20  # ``--limit``'s default


def _state_code(status: str | None) -> str | None:
    """A state code (correction_needed) or the label the list prints (待补正) as its code."""
    if not status:
        return None
    by_label = {label: code for code, label in cases.STATES.items()}
    code = by_label.get(status, status)
    if code not in cases.STATES:
        known = ", ".join(f"{code} ({label})" for code, label in cases.STATES.items())
        raise cases.CaseError("unknown_state", f"Unknown status {status!r}: one of {known}.")
    return code


async def _page(
    engine: db.AsyncEngine, status: str | None, limit: int, page: int
) -> tuple[int, list[dict[str, Any]]]:
    """How many cases there are (in ``status``) and those of ``page``, in a constant number of
    queries (the events of the whole page at once: time limits need them)."""
    where = [Case.status == status] if status else []
    async with db.session_factory(engine)() as session:
        total = await session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
        rows = (
            await session.scalars(
                select(Case)
                .where(*where)
                .order_by(Case.created_at.desc(), Case.id.desc())
                .limit(limit)
                .offset((page - 1) * limit)
            )
        ).all()
        events = await cases.events_by_case(session, [c.id for c in rows])
        return total, [cases.case_json(c, events[c.id]) for c in rows]


async def cmd_case_list(args: argparse.Namespace) -> int:
    """One page of cases, newest first, as lines or JSON; the next page's command after it."""
    settings = settings_of(args)

    async def work(engine: db.AsyncEngine) -> int:
        status = _state_code(args.status)
        total, found = await _page(engine, status, args.limit, args.page)
        pages = max(1, -(-total // args.limit))
        if args.page > pages:
            raise CommandFailed(
                f"page {args.page} is past the end: {total} cases make {pages} "
                f"page{'s' if pages != 1 else ''} of {args.limit}."
            )
        if args.json:
            body = {"cases": found, "total": total, "page": args.page, "limit": args.limit}
            print(json.dumps(body | {"pages": pages}, ensure_ascii=False, indent=1))
            return 0
        width = max((len(c["number"]) for c in found), default=0)
        for c in found:
            due = c["time_limits"]["promised_due"] or "-"
            opened = _local(c["created_at"])[:10]  # the district's day, not UTC's
            print(
                f"{c['number']:<{width}}  {opened}  {c['status']['label']:<5}  "
                f"due {due:<10}  {c['item']['name']}"
            )
        first = (args.page - 1) * args.limit + 1
        shown = f"{first}–{first + len(found) - 1}" if found else "none"
        print(f"Cases {shown} of {total} (page {args.page} of {pages}, newest first).")
        if args.page < pages:
            filters = f" --status {status}" if status else ""
            filters += f" --limit {args.limit}" if args.limit != PAGE_SIZE else ""
            print(f"Next page: cloudhelp case list{filters} --page {args.page + 1}")
        return 0

    return await with_database(settings, work)


async def cmd_case_show(args: argparse.Namespace) -> int:
    """One case as its page shows it, as text or JSON."""
    settings = settings_of(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session:
            case = await session.scalar(select(Case).where(Case.number == args.number))
            if case is None:
                raise cases.CaseError("no_such_case", f"There is no case {args.number!r}.")
            body = await case_record(session, case)
        if args.json:
            print(json.dumps(body, ensure_ascii=False, indent=1))
        else:
            _print_case(body)
        return 0

    return await with_database(settings, work)


def _days(count: float) -> str:
    """``1 working day``, ``20 working days``."""
    return f"{count:g} working day{'' if count == 1 else 's'}"


def _local(iso: str) -> str:
    """A stored moment as the district's local time, to the minute."""
    return clock.local_minute(datetime.fromisoformat(iso))


def _print_case(body: dict[str, Any]) -> None:
    """A case as text: what its page shows (history, sessions with ratings and follow-ups,
    checklists, notices)."""
    limits = body["time_limits"]
    print(f"{body['number']}  {body['status']['label']}  {body['item']['name']}")
    print(f"  applicant {body['applicant']['name']} {body['applicant']['phone']} "
          f"{body['applicant']['id_number']}; station {body['station']['name']}; "
          f"round {body['rounds']}")  # fmt: skip
    promised, statutory = limits["promised_due"] or "-", limits["statutory_due"] or "-"
    promised_days, statutory_days = limits["promised_days"], limits["statutory_days"]
    print(f"  promised {_days(promised_days)} (due {promised}), "
          f"statutory {_days(statutory_days)} (due {statutory})")  # fmt: skip
    for flag in body.get("flags", []):
        print(f"  ! {flag}")
    print("History:")
    for e in body["events"]:
        print(f"  {_local(e['at'])}  → {e['to']['label']}  {e['actor']}  {e['reason']}".rstrip())
    print("Sessions:" if body["sessions"] else "Sessions: none")
    for t in body["sessions"]:
        _print_session(t)
    for checklist in body["checklists"]:
        print(f"Checklist, round {checklist['round']}:")
        for m in checklist["materials"]:
            mark = m["status_label"] or "-"
            print(f"  {m['position']}. {m['name']}  {mark}  {m['reason']}".rstrip())
    for n in body["notices"]:
        issued = f"issued {_local(n['issued_at'])} by {n['issued_by']}"
        print(f"Correction notice, round {n['round']}: {issued}")
        for entry in n["items"]:
            what = entry.get("name", "") if isinstance(entry, dict) else str(entry)
            why = entry.get("reason", "") if isinstance(entry, dict) else ""
            print(f"  - {what}  {why}".rstrip())


def _print_session(t: dict[str, Any]) -> None:
    """One video session of a case: outcome, wrap-up note, files, rating and its follow-up."""
    print(f"  {t['day']} {t['ticket']}  {t['station']}  {t['status']}  outcome {t['outcome']}"
          f"  ended by {t['end_reason']}")  # fmt: skip
    if t.get("note"):
        print(f"    wrap-up note: {t['note']}")
    for f in t["files"]:
        print(f"    file {f['name']} ({f['size']} bytes, from {f['sender']})")
    rating = t["rating"]
    if not rating:
        return
    reasons = f" ({', '.join(rating['reasons'])})" if rating["reasons"] else ""
    print(f"    rating: {rating['label'] or rating['outcome']}{reasons}")
    follow = rating["follow_up"]
    if follow:
        closed = f"closed {_local(follow['closed_at'])}" if follow["closed_at"] else ""
        state = (
            f"{closed} by {follow['closed_by']}: {follow['note']}"
            if follow["closed_at"]
            else "open" + (" (overdue)" if follow["overdue"] else "")
        )
        print(f"    follow-up due {follow['due_date']}: {state}")
