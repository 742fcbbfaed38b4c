"""What staff do to a case, each step with its rules, its records and its audit rows: open it
(for an item, or for the session in progress, which it then belongs to), mark the checklist of
a round, give the round's verdict.

Every function works inside the caller's write transaction and raises ``CaseError`` (nothing is
kept then); the case's department scope is checked before (``case_scope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain import audit, case_scope, cases, prereview, queue
from cloudhelp.domain.cases import CaseError
from cloudhelp.store.models import (
    Case,
    CorrectionNotice,
    MaterialCheck,
    ServiceItem,
    Staff,
    Ticket,
    TicketFile,
)

# The states of a session (ticket) whose pre-review steps are logged on it.
IN_SESSION = ("connected", "wrapup")


@dataclass(frozen=True)
class Applicant:
    name: str
    phone: str
    id_number: str


async def _item_and_ticket(
    session: AsyncSession, item_code: str | None, ticket_id: int | None
) -> tuple[ServiceItem, Ticket | None]:
    """The item a new case is for, and the session it is opened in (if given): the item named,
    else the session's item."""
    ticket = None
    if ticket_id is not None:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            raise CaseError("not_found", "There is no such ticket.")
    if item_code is not None:
        item = await session.scalar(select(ServiceItem).where(ServiceItem.code == item_code))
        if item is None:
            raise CaseError("not_found", f"There is no service item with code {item_code!r}.")
        return item, ticket
    if ticket is None:
        raise CaseError("bad_request", "Say which item (item) or ticket (ticket) the case is for.")
    return ticket.item, ticket


async def open_for(
    session: AsyncSession,
    staff: Staff,
    *,
    district: str,
    item_code: str | None,
    ticket_id: int | None,
    applicant: Applicant,
) -> Case:
    """Open a case for an item the staff member serves, or for the session they answer (then
    at the session's station, and the session's first case becomes the session's case)."""
    item, ticket = await _item_and_ticket(session, item_code, ticket_id)
    answering = ticket is not None and ticket.staff_id == staff.id
    if not answering and not await case_scope.may_open_for_item(session, staff, item.id):
        raise CaseError("forbidden", "You serve neither this item's department nor this session.")
    case = await cases.open_case(
        session,
        district=district,
        item=item,
        station_id=ticket.station_id if ticket is not None else staff.station_id,
        staff_id=staff.id,
        name=applicant.name,
        phone=applicant.phone,
        id_number=applicant.id_number,
        actor=staff.username,
    )
    if ticket is not None and ticket.case_id is None:
        ticket.case_id = case.id  # this session is the case's first
        await queue.record(session, ticket.id, "case_opened", staff.id, case=case.number)
    await session.refresh(case, ["item", "station"])
    await audit.append(session, audit.staff_actor(staff), "case.opened",
                       subject_kind="case", subject=case.number, case_number=case.number,
                       item=item.code, ticket=ticket.id if ticket else None)  # fmt: skip
    return case


async def log_on_session(
    session: AsyncSession, case: Case, kind: str, staff_id: int, **detail: object
) -> None:
    """Record a pre-review step on the session (ticket) in progress for this case, if any."""
    ticket_id = await session.scalar(
        select(Ticket.id)
        .where(Ticket.case_id == case.id, Ticket.status.in_(IN_SESSION))
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    if ticket_id is not None:
        await queue.record(session, ticket_id, kind, staff_id, **detail)


async def _check_files(session: AsyncSession, case: Case, marks: list[dict[str, Any]]) -> None:
    """Files named on marks must be files sent in the case's own sessions."""
    wanted = {f for m in marks for f in m.get("files", [])}
    if not wanted:
        return
    own = set(
        (
            await session.scalars(
                select(TicketFile.id)
                .join(Ticket, Ticket.id == TicketFile.ticket_id)
                .where(Ticket.case_id == case.id, TicketFile.id.in_(wanted))
            )
        ).all()
    )
    if foreign := sorted(wanted - own):
        raise CaseError("bad_file", f"Files {foreign} were not sent in this case's sessions.")


async def _marks_of_round(session: AsyncSession, case: Case) -> dict[int, dict[str, object]]:
    """The current round's marks by material id, as they stand before a change."""
    checks = await session.scalars(
        select(MaterialCheck).where(
            MaterialCheck.case_id == case.id, MaterialCheck.round == case.rounds
        )
    )
    return {
        c.material_id: {"by": c.checked_by, "status": c.status, "reason": c.reason,
                        "files": list(c.file_ids or []), "at": c.checked_at.isoformat()}
        for c in checks.all()
    }  # fmt: skip


async def mark_checklist(
    session: AsyncSession, staff: Staff, case: Case, marks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Mark materials of the current round (``position``, ``status``, ``reason``, ``files``);
    the round's checklist after. Every mark goes into the audit trail with the mark it
    replaced (who, what, when), so a round's history is kept per reviewer although the
    checklist shows the latest. A mark the same reviewer already made as it stands (the
    console sends the whole checklist again with each verdict) changes nothing and writes
    no row."""
    await _check_files(session, case, marks)
    earlier = await _marks_of_round(session, case)
    by_position = {m.position: m.id for m in case.item.materials}

    def repeated(mark: dict[str, Any]) -> bool:
        before = earlier.get(by_position.get(mark["position"], -1))
        return before is not None and (
            before["by"] == staff.username
            and before["status"] == mark["status"]
            and before["reason"] == mark.get("reason", "").strip()
            and before["files"] == list(mark.get("files", []))
        )

    marks = [m for m in marks if not repeated(m)]
    rows = await prereview.mark(session, case, marks, staff.username)
    for mark in marks:
        await audit.append(session, audit.staff_actor(staff), "case.material_marked",
                           subject_kind="case", subject=case.number, case_number=case.number,
                           round=case.rounds, position=mark["position"], status=mark["status"],
                           reason=mark.get("reason", "").strip(), files=list(mark.get("files", [])),
                           replaced=earlier.get(by_position[mark["position"]]))  # fmt: skip
    if marks:
        await log_on_session(session, case, "checklist", staff.id, round=case.rounds,
                             marked=len(marks))  # fmt: skip
    return rows


async def give_verdict(
    session: AsyncSession, staff: Staff, case: Case, verdict: str, reason: str
) -> CorrectionNotice | None:
    """Close the round with ``verdict``; the correction notice it issues, if any. Logged on
    the session in progress and audited (the verdict, and the notice)."""
    notice = await prereview.verdict(session, case, verdict, staff.username, reason)
    await log_on_session(session, case, "verdict", staff.id, verdict=verdict, round=case.rounds,
                         notice=notice is not None)  # fmt: skip
    await audit.append(session, audit.staff_actor(staff), "case.verdict",
                       subject_kind="case", subject=case.number, case_number=case.number,
                       verdict=verdict, round=case.rounds, reason=reason)  # fmt: skip
    if notice is not None:
        await audit.append(session, audit.staff_actor(staff), "notice.issued",
                           subject_kind="case", subject=case.number, case_number=case.number,
                           round=notice.round, items=len(notice.items))  # fmt: skip
    return notice
