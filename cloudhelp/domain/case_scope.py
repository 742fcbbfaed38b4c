"""Department scope of cases: which cases a signed-in person may read and act on.

Staff (role ``staff``) see the cases of the departments and items they serve (their
``StaffSkill`` rows), the cases they reviewed (``Case.staff_id``) and the cases of sessions they
answered (``Ticket.staff_id``: a correction session transferred to another department's staff
member stays workable by whoever answers it). Supervisors and admins see the district. Every
case read and write over HTTP goes through :func:`visible` (:func:`visible_case` for one case by
number); a case out of scope is answered like a case that does not exist (404), so case numbers
are not confirmed.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.models import SUPERVISOR_ROLES, Case, ServiceItem, Staff, StaffSkill, Ticket


async def served_items(session: AsyncSession, staff: Staff) -> ColumnElement[bool]:
    """A condition on ``ServiceItem.id``: the items the staff member serves (by department or
    singly)."""
    skills = (
        await session.scalars(select(StaffSkill).where(StaffSkill.staff_id == staff.id))
    ).all()
    departments = [s.department_id for s in skills if s.department_id is not None]
    items = [s.item_id for s in skills if s.item_id is not None]
    return or_(
        ServiceItem.id.in_(items),
        ServiceItem.id.in_(
            select(ServiceItem.id).where(ServiceItem.department_id.in_(departments))
        ),
    )


async def visible(session: AsyncSession, staff: Staff) -> ColumnElement[bool]:
    """A condition on ``Case``: the cases this person may read and act on."""
    if staff.role in SUPERVISOR_ROLES:
        return true()
    return or_(
        Case.staff_id == staff.id,
        Case.item_id.in_(select(ServiceItem.id).where(await served_items(session, staff))),
        Case.id.in_(
            select(Ticket.case_id).where(Ticket.staff_id == staff.id, Ticket.case_id.is_not(None))
        ),
    )


async def may_open_for_item(session: AsyncSession, staff: Staff, item_id: int) -> bool:
    """Whether this person may open a case for the item without a session of theirs."""
    if staff.role in SUPERVISOR_ROLES:
        return True
    found = await session.scalar(
        select(ServiceItem.id).where(ServiceItem.id == item_id, await served_items(session, staff))
    )
    return found is not None


async def visible_case(session: AsyncSession, number: str, staff: Staff | None) -> Case | None:
    """The case by number if ``staff`` may see it (None for ``staff``: no scope, as for a
    signed notice link); None when it does not exist or is out of scope (alike on purpose)."""
    stmt = select(Case).where(Case.number == number)
    if staff is not None:
        stmt = stmt.where(await visible(session, staff))
    return await session.scalar(stmt)
