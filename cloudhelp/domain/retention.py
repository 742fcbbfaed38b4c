"""Retention of files sent in calls (ID-card and document photos are sensitive personal data).

A file is kept ``file_retention_days`` after its case ends — concluded (办结, also when later
delivered) or not accepted (不予受理) — or, for a session that opened no case, after the session
closed. Then its content is purged: the row stays (name, size, SHA-256) with ``purged_at`` set,
the audit trail records ``file.purged`` with the hash in the same transaction, and the stored
bytes are deleted once no file still kept shares them (the store keeps one copy per hash).
Open cases keep their files however old they are.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.logs import log_event
from cloudhelp.domain import audit
from cloudhelp.store.db import Database
from cloudhelp.store.filestore import storage_path
from cloudhelp.store.models import Case, CaseEvent, Ticket, TicketFile, utcnow


@dataclass(frozen=True)
class DueFile:
    """A file whose retention period is over."""

    id: int
    ticket_id: int
    sha256: str
    name: str
    size: int
    content_type: str
    case_number: str | None
    ended_at: datetime  # when its case ended (or its case-less session closed)


async def due_files(session: AsyncSession, now: datetime, retention_days: int) -> list[DueFile]:
    """Files still kept whose case (or case-less session) ended before ``now - retention``."""
    cutoff = now - timedelta(days=retention_days)
    refused_at = (
        select(func.max(CaseEvent.at))
        .where(CaseEvent.case_id == Case.id, CaseEvent.to_state == "not_accepted")
        .scalar_subquery()
    )
    session_closed = func.coalesce(Ticket.closed_at, Ticket.ended_at)
    rows = (
        await session.execute(
            select(
                TicketFile,
                Case.number,
                Case.status,
                Case.concluded_at,
                refused_at,
                Ticket.closed_at,
                Ticket.ended_at,
            )
            .join(Ticket, Ticket.id == TicketFile.ticket_id)
            .outerjoin(Case, Case.id == Ticket.case_id)
            .where(
                TicketFile.purged_at.is_(None),
                or_(
                    and_(Case.id.is_(None), session_closed.is_not(None)),
                    and_(Case.status.in_(("concluded", "delivered")), Case.concluded_at < cutoff),
                    Case.status == "not_accepted",
                ),
            )
            .order_by(TicketFile.id)
        )
    ).all()
    found = []
    for row, number, status, concluded_at, refused, closed_at, ended_at in rows:
        if number is None:
            ended = closed_at or ended_at
        elif status == "not_accepted":
            ended = refused
        else:
            ended = concluded_at
        if ended is None:
            continue
        if ended.tzinfo is None:  # an aggregate over a UTC column comes back naive
            ended = ended.replace(tzinfo=now.tzinfo)
        if ended < cutoff:
            found.append(
                DueFile(
                    row.id,
                    row.ticket_id,
                    row.sha256,
                    row.name,
                    row.size,
                    row.content_type,
                    number,
                    ended,
                )
            )
    return found


async def purge(
    database: Database,
    data_dir: Path,
    retention_days: int,
    *,
    now: datetime | None = None,
    actor: audit.Actor = audit.SYSTEM,
    dry_run: bool = False,
) -> list[DueFile]:
    """Purge every file past its retention; returns them (with ``dry_run``, only lists them).

    Each file is marked and audited in one transaction, only if no other process purged it
    first; the stored bytes go after the commit, when no kept file has the same hash."""
    moment = now or utcnow()
    async with database.read() as session:
        due = await due_files(session, moment, retention_days)
    if dry_run:
        return due
    purged: list[DueFile] = []
    for item in due:
        async with database.write() as session:
            claimed = await session.execute(
                update(TicketFile)
                .where(TicketFile.id == item.id, TicketFile.purged_at.is_(None))
                .values(purged_at=moment)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                continue
            await audit.append(
                session, actor, "file.purged", subject_kind="file", subject=str(item.id),
                case_number=item.case_number, at=moment, sha256=item.sha256, name=item.name,
                size=item.size, content_type=item.content_type, ticket=item.ticket_id,
                ended_at=item.ended_at.isoformat(), retention_days=retention_days,
            )  # fmt: skip
        purged.append(item)
    for sha256 in {item.sha256 for item in purged}:
        async with database.read() as session:
            still_kept = await session.scalar(
                select(func.count())
                .select_from(TicketFile)
                .where(TicketFile.sha256 == sha256, TicketFile.purged_at.is_(None))
            )
        if not still_kept:
            await asyncio.to_thread(storage_path(data_dir, sha256).unlink, missing_ok=True)
    if purged:
        log_event("files.purged", count=len(purged), retention_days=retention_days)
    return purged


async def run_periodically(
    database: Database, data_dir: Path, retention_days: int, every_seconds: float
) -> None:
    """The server's scheduled purge: once at start, then every ``every_seconds``."""
    while True:
        try:
            await purge(database, data_dir, retention_days)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not end the schedule
            log_event("files.purge_failed", severity=logging.ERROR, exc_info=True)
        await asyncio.sleep(every_seconds)
