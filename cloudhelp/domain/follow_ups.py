"""Follow-ups of bad ratings (回访整改) for supervisors: the list (all, open, overdue) with the
session each is about, and closing one with a note."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock
from cloudhelp.core.errors import CodedError, must_exist
from cloudhelp.domain import audit, ratings
from cloudhelp.store.models import Case, FollowUp, Rating, Staff, Ticket, utcnow


class FollowUpError(CodedError):
    """A refused follow-up operation (``not_found``, ``already_closed``)."""


async def listed(
    session: AsyncSession,
    *,
    open_only: bool = False,
    overdue_only: bool = False,
    closed_limit: int | None = None,
) -> list[dict[str, Any]]:
    """Follow-ups by due date (``overdue``: open and due before today, local time), each with
    the session it is about: day, station, who served (by name), the case and the applicant's
    phone on it; ``closed_by_name`` is the person who closed it, by the name people know (孙华),
    not the login. With ``closed_limit``, every open one but only that many closed ones, the
    most recently closed (a district closes thousands a year)."""
    stmt = (
        select(FollowUp, Rating, Ticket)
        .join(Rating, Rating.id == FollowUp.rating_id)
        .join(Ticket, Ticket.id == Rating.ticket_id)
        .order_by(FollowUp.due_date, FollowUp.id)
    )
    if open_only or overdue_only:
        stmt = stmt.where(FollowUp.closed_at.is_(None))
    elif closed_limit is not None:
        newest_closed = (
            select(FollowUp.id)
            .where(FollowUp.closed_at.is_not(None))
            .order_by(FollowUp.closed_at.desc(), FollowUp.id.desc())
            .limit(closed_limit)
        )
        stmt = stmt.where(FollowUp.closed_at.is_(None) | FollowUp.id.in_(newest_closed))
    if overdue_only:
        stmt = stmt.where(FollowUp.due_date < clock.today())
    rows = (await session.execute(stmt)).all()
    people = (await session.execute(select(Staff.id, Staff.username, Staff.display_name))).all()
    by_login = {username: name for _, username, name in people}
    by_id = {staff_id: name for staff_id, _, name in people}
    found = []
    for follow_up, rating, ticket in rows:
        served_by = by_id.get(ticket.staff_id) if ticket.staff_id else None
        body = _follow_up_json(follow_up, rating, ticket, served_by)
        body["closed_by_name"] = by_login.get(body["closed_by"], body["closed_by"])
        found.append(body)
    return found


async def closed_count(session: AsyncSession) -> int:
    """How many follow-ups have been closed, in all."""
    closed = select(func.count()).where(FollowUp.closed_at.is_not(None))
    return int(await session.scalar(closed) or 0)


def _follow_up_json(
    follow_up: FollowUp, rating: Rating, ticket: Ticket, served_by: str | None
) -> dict[str, Any]:
    """A follow-up as the list shows it. Ticket numbers repeat every day: it says which
    session (day, station, who served, the case it was about). ``phone`` is how to reach the
    resident: the applicant's phone on the session's case, in full (only supervisors list
    follow-ups); null when the session had no case, so no phone was recorded."""
    body = ratings.follow_up_json(follow_up, rating, ticket)
    body["ticket"] |= {
        "day": ticket.day,
        "station": ticket.station.name,
        "staff_name": served_by,
        "case": ticket.case.number if ticket.case else None,
        "phone": ticket.case.applicant_phone if ticket.case else None,
    }
    return body


async def close(
    session: AsyncSession, follow_up_id: int, staff: Staff, note: str
) -> dict[str, Any]:
    """Close an open follow-up with what was done (``note``); the follow-up after, as
    ``listed`` has it. Audited
    (who closed it, the session's ticket and case, the note)."""
    follow_up = await session.get(FollowUp, follow_up_id)
    if follow_up is None:
        raise FollowUpError("not_found", "There is no such follow-up.")
    if follow_up.closed_at is not None:
        raise FollowUpError("already_closed", "This follow-up is already closed.")
    follow_up.closed_at, follow_up.closed_by, follow_up.note = utcnow(), staff.username, note
    rating = must_exist(await session.get(Rating, follow_up.rating_id), "follow-up's rating")
    ticket = must_exist(await session.get(Ticket, rating.ticket_id), "rating's session")
    case_number = (
        await session.scalar(select(Case.number).where(Case.id == ticket.case_id))
        if ticket.case_id is not None
        else None
    )
    await audit.append(session, audit.staff_actor(staff), "follow_up.closed",
                       subject_kind="follow_up", subject=str(follow_up.id),
                       case_number=case_number, ticket_number=ticket.number, level=rating.level,
                       note=note)  # fmt: skip
    served_by = (
        await session.scalar(select(Staff.display_name).where(Staff.id == ticket.staff_id))
        if ticket.staff_id is not None
        else None
    )
    body = _follow_up_json(follow_up, rating, ticket, served_by)  # as the list has it
    body["closed_by_name"] = staff.display_name
    return body
