"""The call centre's figures right now, from the database: what the operations metrics
(``/metrics``, docs/operations.md) read at each scrape.

These are the district's figures, the same from every server process: queue length and the
oldest wait per department, calls in progress, files kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain.queue import IS_QUEUED
from cloudhelp.store.models import Department, Ticket, TicketFile


@dataclass(frozen=True)
class DepartmentQueue:
    department: str  # its code
    waiting: int  # tickets waiting or being offered
    oldest_wait_seconds: float  # how long the longest-waiting ticket has waited (0 when none)


@dataclass(frozen=True)
class LiveFigures:
    queues: tuple[DepartmentQueue, ...]  # every department, in code order
    calls_in_progress: int  # tickets connected to a staff member now
    files_stored: int  # files sent in calls whose content is still kept
    files_stored_bytes: int


async def live_figures(session: AsyncSession, now: datetime) -> LiveFigures:
    """The figures as of ``now`` (UTC)."""
    queued = (
        select(
            Ticket.department_id,
            func.count(Ticket.id),
            func.min(Ticket.enqueued_at),
        )
        .where(IS_QUEUED)
        .group_by(Ticket.department_id)
    )
    waiting = {row[0]: (row[1], row[2]) for row in await session.execute(queued)}
    queues = []
    for department_id, code in await session.execute(
        select(Department.id, Department.code).order_by(Department.code)
    ):
        count, oldest = waiting.get(department_id, (0, None))
        wait = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        queues.append(DepartmentQueue(code, count, wait))
    calls = await session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.status == "connected")
    )
    files, size = (
        await session.execute(
            select(func.count(TicketFile.id), func.coalesce(func.sum(TicketFile.size), 0)).where(
                TicketFile.purged_at.is_(None)
            )
        )
    ).one()
    return LiveFigures(tuple(queues), int(calls or 0), int(files), int(size))
