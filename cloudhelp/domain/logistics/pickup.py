"""Where a case's certificate goes by default: the station the resident last called from (the
kiosk of the case's latest session), else the station the case was opened at. A case opened and
handled at the hall alone is collected at the hall."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.models import Case, Station, Ticket


async def pickup_station(session: AsyncSession, case: Case) -> Station:
    latest = await session.scalar(
        select(Station)
        .join(Ticket, Ticket.station_id == Station.id)
        .where(Ticket.case_id == case.id)
        .order_by(Ticket.enqueued_at.desc(), Ticket.id.desc())
        .limit(1)
    )
    if latest is not None:
        return latest
    return await session.get_one(Station, case.station_id)
