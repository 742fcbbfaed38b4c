"""Staff presence (坐席状态) in the database: who is online, in which state, what they handle.

One row per staff member who ever opened the console: ``state`` (offline, away, available,
ringing, in_call, wrapup), since when, the console's session and the ticket in hand. Offers,
calls and wrap-ups change it together with the ticket (cloudhelp.domain.queue); the functions
here are the console's own changes and the reads the call centre routes by.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain import queue
from cloudhelp.store.models import StaffPresence, StaffSkill

Alive = Callable[[str], Awaitable[bool]]
SETTABLE = ("available", "away")  # the states a staff member chooses; the rest follow calls


async def console_sessions(session: AsyncSession) -> dict[str, int]:
    """Every console session a row names: session id → staff id."""
    stmt = select(StaffPresence.session_id, StaffPresence.staff_id).where(
        StaffPresence.session_id.is_not(None)
    )
    rows = (await session.execute(stmt)).all()
    return {session_id: staff_id for session_id, staff_id in rows if session_id is not None}


async def console_session(session: AsyncSession, staff_id: int) -> str | None:
    """The session id of the staff member's console, if one is connected."""
    return await session.scalar(
        select(StaffPresence.session_id).where(StaffPresence.staff_id == staff_id)
    )


async def online_staff(session: AsyncSession) -> list[StaffPresence]:
    """Every staff member whose console is connected, whatever their state."""
    stmt = select(StaffPresence).where(StaffPresence.session_id.is_not(None))
    return list((await session.scalars(stmt)).all())


async def presence_rows(session: AsyncSession, staff_ids: Sequence[int]) -> list[StaffPresence]:
    """The presence rows of ``staff_ids`` (those that have one)."""
    stmt = select(StaffPresence).where(StaffPresence.staff_id.in_(staff_ids))
    return list((await session.scalars(stmt)).all())


async def available_staff(session: AsyncSession) -> list[StaffPresence]:
    """The staff members who may be offered a ticket now (available, console connected)."""
    stmt = select(StaffPresence).where(
        StaffPresence.state == "available", StaffPresence.session_id.is_not(None)
    )
    return list((await session.scalars(stmt)).all())


async def skill_sets(
    session: AsyncSession, staff_ids: list[int]
) -> dict[int, tuple[set[int], set[int]]]:
    """For each of ``staff_ids``: the departments and the items they handle."""
    skills = (
        await session.scalars(select(StaffSkill).where(StaffSkill.staff_id.in_(staff_ids)))
    ).all()
    return queue.skill_sets(staff_ids, skills)


async def call_ticket(session: AsyncSession, staff_id: int) -> int | None:
    """The ticket of the staff member's call in progress, if they are in one."""
    row = await session.get(StaffPresence, staff_id)
    if row is None or row.state != "in_call":
        return None
    return row.ticket_id


async def sign_in(session: AsyncSession, staff_id: int, session_id: str, now: datetime) -> None:
    """A console connected: its row now names the session; a new or offline one is away."""
    row = await session.get(StaffPresence, staff_id)
    if row is None:
        row = StaffPresence(staff_id=staff_id, state="away", since=now)
        session.add(row)
    elif row.state == "offline":
        row.state, row.since = "away", now
    row.session_id = session_id


async def sign_off(session: AsyncSession, staff_id: int, session_id: str, now: datetime) -> None:
    """The console's session ended: offline, unless a newer session has taken the row."""
    await session.execute(
        update(StaffPresence)
        .where(StaffPresence.staff_id == staff_id, StaffPresence.session_id == session_id)
        .values(state="offline", since=now, session_id=None, ticket_id=None, wrapup_deadline=None)
    )


async def set_status(
    session: AsyncSession, staff_id: int, status: str, now: datetime
) -> str | None:
    """The staff member sets themselves ``available`` or ``away`` (from either of those).

    Becoming available again restarts the count of missed offers (autopause, see
    queue.release_offer). Returns None when done, else the state that forbids the change
    (ringing, in a call, wrapping up; ``offline`` when there is no row).
    """
    row = await session.get(StaffPresence, staff_id)
    if row is None:
        return "offline"
    if row.state not in SETTABLE:
        return row.state
    if status == "available":
        if row.state == "away":
            row.state, row.since, row.idle_since = "available", now, now
        row.missed_offers = 0
    else:
        row.state, row.since = "away", now
    return None


async def reset_after_restart(session: AsyncSession, alive: Alive, now: datetime) -> None:
    """After a (re)start: every console whose session no server process holds any more
    (``alive`` asks them) is offline, with nothing in hand."""
    for row in (await session.scalars(select(StaffPresence))).all():
        if row.session_id is None or not await alive(row.session_id):
            row.state, row.since = "offline", now
            row.session_id, row.ticket_id, row.wrapup_deadline = None, None, None
