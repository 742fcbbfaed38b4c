"""Finding cases: by number, phone, item, status, the session they were worked in and the day
they were opened, newest first, only those in the viewer's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import case_scope, cases
from cloudhelp.store.models import Case, ServiceItem, Staff, Ticket

MAX_FOUND = 200


@dataclass(frozen=True)
class CaseQuery:
    """What to look for; empty fields do not filter. ``number`` matches part of the number,
    the others whole values; ``first``/``last`` are local days of opening, inclusive."""

    number: str = ""
    phone: str = ""
    item: str = ""
    status: str = ""
    ticket: int | None = None
    first: date | None = None
    last: date | None = None


def _statement(query: CaseQuery) -> Select[Case]:
    stmt = select(Case).order_by(Case.created_at.desc(), Case.id.desc()).limit(MAX_FOUND)
    if query.number:
        stmt = stmt.where(Case.number.contains(query.number, autoescape=True))
    if query.phone:
        stmt = stmt.where(Case.applicant_phone == query.phone)
    if query.status:
        stmt = stmt.where(Case.status == query.status)
    if query.item:
        stmt = stmt.join(ServiceItem).where(ServiceItem.code == query.item)
    if query.ticket is not None:
        # The case a session belongs to (the console finds it again after a reload).
        stmt = stmt.join(Ticket, Ticket.case_id == Case.id).where(Ticket.id == query.ticket)
    if query.first:
        stmt = stmt.where(Case.created_at >= datetime.combine(query.first, time(), LOCAL_TZ))
    if query.last:
        stmt = stmt.where(Case.created_at < datetime.combine(query.last, time.max, LOCAL_TZ))
    return stmt


async def search(session: AsyncSession, viewer: Staff, query: CaseQuery) -> list[dict[str, Any]]:
    """The matching cases the viewer may see (at most MAX_FOUND), as ``case_json`` with their
    events, read in one query for the whole list."""
    stmt = _statement(query).where(await case_scope.visible(session, viewer))
    found = (await session.scalars(stmt)).unique().all()
    events = await cases.events_by_case(session, [c.id for c in found])
    return [cases.case_json(c, events[c.id]) for c in found]
