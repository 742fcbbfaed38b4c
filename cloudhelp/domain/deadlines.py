"""Deadlines kept with their rows, so that any server process can fire them, once.

A deadline is a column: ``tickets.ring_deadline`` (a ring's time-out, set by the offer),
``tickets.abandon_deadline`` (a queued ticket without a kiosk session is abandoned then, set at
a start-up's recovery) and ``staff_presence.wrapup_deadline`` (wrap-up closes by itself, set by
the end of the call). The change that ends what a deadline watches clears it (an answer, a
decline, a cancellation, wrap-up done, the kiosk back).

Whoever fires a deadline first claims it: one conditional UPDATE that clears it only if it is
set and due, run in the transaction that does the deadline's work. Of two server processes
claiming the same deadline, one changes the row; the other's UPDATE (on PostgreSQL it waits
for the first transaction, then evaluates its condition again) finds it cleared and does
nothing. docs/scaling.md says what is guaranteed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.models import StaffPresence, Ticket

Kind = Literal["ring", "wrapup", "abandon"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# For each kind: the row's key column and its deadline column.
_COLUMNS: dict[Kind, tuple[Any, Any]] = {
    "ring": (Ticket.id, Ticket.ring_deadline),
    "wrapup": (StaffPresence.staff_id, StaffPresence.wrapup_deadline),
    "abandon": (Ticket.id, Ticket.abandon_deadline),
}


async def claim(session: AsyncSession, kind: Kind, key: int, now: datetime) -> bool:
    """Clear the deadline of ``kind`` on row ``key`` if it is due at ``now``; whether this
    call did (then the caller does its work in the same transaction, and nobody else will)."""
    key_column, deadline = _COLUMNS[kind]
    stmt = (
        update(key_column.class_)
        .where(key_column == key, deadline.is_not(None), deadline <= now)
        .values({deadline.key: None})
        .returning(key_column)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).first() is not None


async def due(session: AsyncSession, now: datetime, limit: int = 200) -> list[tuple[Kind, int]]:
    """The deadlines due at ``now`` (at most ``limit`` of each kind, earliest first), as
    (kind, key); a read: each still has to be claimed."""
    found: list[tuple[Kind, int]] = []
    for kind in KINDS:
        key_column, deadline = _COLUMNS[kind]
        stmt = select(key_column).where(deadline <= now).order_by(deadline).limit(limit)
        found.extend((kind, int(key)) for key in (await session.scalars(stmt)).all())
    return found
