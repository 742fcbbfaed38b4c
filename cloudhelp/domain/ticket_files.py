"""The record of files sent in a session (ticket): one row per file and name, the session's
``file`` event when a file is first kept, and the audit row of a staff download. The bytes
themselves are in the file store (:mod:`cloudhelp.store.filestore`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain import audit, queue
from cloudhelp.store.models import Case, Staff, Ticket, TicketFile


@dataclass(frozen=True)
class Sent:
    """A file as received: its hash, safe name, type and size, who sent it over the data
    channel (``sender``) and who uploaded it to the server (``uploaded_by``)."""

    sha256: str
    name: str
    content_type: str
    size: int
    sender: str
    uploaded_by: str


async def keep(session: AsyncSession, ticket_id: int, sent: Sent) -> tuple[TicketFile, bool]:
    """The session's row for this file and name, and whether it was new (then the session
    records a ``file`` event); the same file sent again under the same name is one row."""
    row = await session.scalar(
        select(TicketFile).where(
            TicketFile.ticket_id == ticket_id,
            TicketFile.sha256 == sent.sha256,
            TicketFile.name == sent.name,
        )
    )
    if row is not None:
        return row, False
    row = TicketFile(ticket_id=ticket_id, sha256=sent.sha256, name=sent.name,
                     content_type=sent.content_type, size=sent.size, sender=sent.sender,
                     uploaded_by=sent.uploaded_by)  # fmt: skip
    session.add(row)
    await session.flush()
    await queue.record(session, ticket_id, "file", None, sha256=sent.sha256, size=sent.size,
                       sender=sent.sender)  # fmt: skip
    return row, True


async def staff_copy(session: AsyncSession, ticket_id: int, sha256: str) -> TicketFile | None:
    """The copy staff uploaded of a file they sent in this session, if any."""
    return await session.scalar(
        select(TicketFile)
        .where(
            TicketFile.ticket_id == ticket_id,
            TicketFile.sha256 == sha256,
            TicketFile.sender == "staff",
            TicketFile.uploaded_by == "staff",
        )
        .limit(1)
    )


async def files_of(session: AsyncSession, ticket_id: int) -> Sequence[TicketFile]:
    """The session's files in the order they were kept."""
    stmt = select(TicketFile).where(TicketFile.ticket_id == ticket_id).order_by(TicketFile.id)
    return (await session.scalars(stmt)).all()


async def audit_download(
    session: AsyncSession, staff: Staff, row: TicketFile, ticket: Ticket
) -> None:
    """A staff member's download, with the case the session belongs to (if any)."""
    number = await session.scalar(select(Case.number).where(Case.id == ticket.case_id))
    await audit.append(session, audit.staff_actor(staff), "file.downloaded",
                       subject_kind="file", subject=str(row.id), case_number=number,
                       sha256=row.sha256, name=row.name, ticket=ticket.id)  # fmt: skip
