"""Where a call can be transferred: each department with how many staff who handle it are on
duty and available now, and how many tickets wait in its queue (the console's transfer dialog);
and who transferred a ticket, for the ring that follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain import queue
from cloudhelp.store.models import (
    Department,
    ServiceItem,
    Staff,
    StaffPresence,
    StaffSkill,
    Ticket,
    TicketEvent,
)


async def transferred_by(
    session: AsyncSession, ticket_ids: Sequence[int]
) -> dict[int, dict[str, str]]:
    """For each of these tickets that was transferred: who did it last and from which
    department (``{"name", "department"}``), so the next console to ring knows the call has
    been half-served already. One query, whatever the number of tickets."""
    if not ticket_ids:
        return {}
    rows = await session.execute(
        select(TicketEvent.ticket_id, TicketEvent.detail, Staff.display_name)
        .join(Staff, Staff.id == TicketEvent.staff_id)
        .where(TicketEvent.ticket_id.in_(list(ticket_ids)), TicketEvent.kind == "transferred")
        .order_by(TicketEvent.id)
    )
    last = {ticket_id: (detail or {}, name) for ticket_id, detail, name in rows.all()}
    if not last:
        return {}
    from_ids = {int(detail.get("from") or 0) for detail, _ in last.values()}
    rows_of_names = await session.execute(
        select(Department.id, Department.name).where(Department.id.in_(from_ids))
    )
    names: dict[int, str] = {department_id: name for department_id, name in rows_of_names.all()}
    return {
        ticket_id: {"name": name, "department": names.get(int(detail.get("from") or 0), "")}
        for ticket_id, (detail, name) in last.items()
    }


async def _waiting(session: AsyncSession) -> dict[int, int]:
    """Tickets waiting (or being offered), by department."""
    rows = await session.execute(
        select(Ticket.department_id, func.count())
        .where(Ticket.status.in_(queue.QUEUED))
        .group_by(Ticket.department_id)
    )
    return {department_id: count for department_id, count in rows.all()}


async def targets(session: AsyncSession, asking_id: int) -> list[dict[str, Any]]:
    """Every department (by code) with ``on_duty``, ``available`` (not counting the staff
    member asking), ``waiting``, and ``current``: the department of the asker's call now, where
    a transfer would change nothing."""
    departments = (await session.scalars(select(Department).order_by(Department.code))).all()
    on_duty = (
        await session.scalars(
            select(StaffPresence).where(
                StaffPresence.state != "offline", StaffPresence.staff_id != asking_id
            )
        )
    ).all()
    skills = (
        await session.scalars(
            select(StaffSkill).where(StaffSkill.staff_id.in_([p.staff_id for p in on_duty]))
        )
    ).all()
    item_department = dict(
        (await session.execute(select(ServiceItem.id, ServiceItem.department_id))).all()
    )
    current = await session.scalar(
        select(Ticket.department_id)
        .join(StaffPresence, StaffPresence.ticket_id == Ticket.id)
        .where(StaffPresence.staff_id == asking_id)
    )
    waiting = await _waiting(session)
    handles = queue.skill_sets([p.staff_id for p in on_duty], skills)
    body = []
    for department in departments:
        staff = [
            p
            for p in on_duty
            if department.id in handles[p.staff_id][0]
            or any(item_department.get(i) == department.id for i in handles[p.staff_id][1])
        ]
        body.append(
            {
                "code": department.code,
                "name": department.name,
                "on_duty": len(staff),
                "available": sum(p.state == "available" for p in staff),
                "waiting": waiting.get(department.id, 0),
                "current": department.id == current,
            }
        )
    return body
