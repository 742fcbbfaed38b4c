"""A case with everything that happened to it: sessions, checklists, notices, ratings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import iso
from cloudhelp.domain import cases, prereview, ratings
from cloudhelp.store.models import (
    Case,
    CorrectionNotice,
    FollowUp,
    Rating,
    Ticket,
    TicketEvent,
    TicketFile,
    utcnow,
)

NOTICE_DAYS = 5  # Administrative Licensing Law art. 32: tell the applicant within five days


def notice_late(opened_at: datetime, now: datetime, days: float = NOTICE_DAYS) -> bool:
    """A missing correction notice is late ``days`` days after the case opened."""
    return now - opened_at > timedelta(days=days)


def notice_flags(case: Case, notices: list[CorrectionNotice]) -> list[str]:
    """``notice_missing``: the case waits for corrections but its round has no notice yet;
    ``notice_overdue``: and it has been so for more than five days since the case opened."""
    if case.status != "correction_needed" or any(n.round == case.rounds for n in notices):
        return []
    flags = ["notice_missing"]
    if notice_late(case.created_at, utcnow()):
        flags.append("notice_overdue")
    return flags


def _rating_json(rating: Rating, follow_up: FollowUp | None, ticket: Ticket) -> dict[str, Any]:
    """A session's rating (好差评) with its outcome and, for a bad one, the follow-up."""
    return {
        "level": rating.level,
        "label": ratings.LEVELS.get(rating.level or 0),
        "reasons": rating.reasons,
        "outcome": rating.outcome,
        "at": rating.created_at.isoformat(),
        "follow_up": ratings.follow_up_json(follow_up, rating, ticket) if follow_up else None,
    }


async def case_record(
    session: AsyncSession, case: Case, *, full_id: bool = False
) -> dict[str, Any]:
    record = cases.case_json(case, await cases.events_of(session, case), full_id=full_id)
    record["sessions"] = await _sessions(session, case)
    record["checklists"] = [
        {"round": n, "materials": await prereview.checklist(session, case, n)}
        for n in range(1, case.rounds + 1)
    ]
    notices = await prereview.notices_of(session, case)
    record["flags"] = notice_flags(case, notices)
    record["notices"] = [
        {"round": n.round, "issued_at": n.issued_at.isoformat(), "issued_by": n.issued_by,
         "items": n.items}
        for n in notices
    ]  # fmt: skip
    return record


async def _sessions(session: AsyncSession, case: Case) -> list[dict[str, Any]]:
    """The case's video sessions (tickets) with their events, files and rating."""
    tickets = (
        await session.scalars(select(Ticket).where(Ticket.case_id == case.id).order_by(Ticket.id))
    ).all()
    ids = [t.id for t in tickets]
    events = (
        await session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id.in_(ids)).order_by(TicketEvent.id)
        )
    ).all()
    files = (await session.scalars(select(TicketFile).where(TicketFile.ticket_id.in_(ids)))).all()
    rated = {
        r.ticket_id: r
        for r in (await session.scalars(select(Rating).where(Rating.ticket_id.in_(ids)))).all()
    }
    followed = {
        f.rating_id: f
        for f in (
            await session.scalars(
                select(FollowUp).where(FollowUp.rating_id.in_([r.id for r in rated.values()]))
            )
        ).all()
    }
    return [
        {
            "ticket": t.number,
            "day": t.day,
            "status": t.status,
            "station": t.station.name,
            "connected_at": iso(t.connected_at),
            "ended_at": iso(t.ended_at),
            "outcome": t.outcome,
            "note": t.note,
            "end_reason": t.end_reason,
            "events": [
                {"at": e.at.isoformat(), "kind": e.kind, **e.detail}
                for e in events
                if e.ticket_id == t.id
            ],
            "files": [
                {"name": f.name, "sha256": f.sha256, "size": f.size, "sender": f.sender}
                for f in files
                if f.ticket_id == t.id
            ],
            "rating": _rating_json(rated[t.id], followed.get(rated[t.id].id), t)
            if t.id in rated
            else None,
        }
        for t in tickets
    ]
