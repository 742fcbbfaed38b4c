"""Counters kept in a table row (ticket numbers, case numbers): advanced atomically, so two
server processes never hand out the same number."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.models import CaseCounter, TicketCounter

# Tables of counters: the primary key names a counter, ``last`` holds its value.
CounterTable = type[TicketCounter] | type[CaseCounter]


async def bump(
    session: AsyncSession, model: CounterTable, key: dict[str, Any], by: int = 1
) -> int | None:
    """Add ``by`` to an existing counter and return its new value; None if there is none.

    One ``UPDATE … RETURNING``: the row stays locked until the caller's transaction ends, so
    numbers are never handed out twice.
    """
    result = await session.execute(
        update(model)
        .where(*(getattr(model, column) == value for column, value in key.items()))
        .values(last=model.last + by)
        .returning(model.last)
    )
    value = result.scalar_one_or_none()
    return None if value is None else int(value)


async def advance(
    session: AsyncSession, model: CounterTable, key: dict[str, Any], by: int = 1, start: int = 0
) -> int:
    """Add ``by`` to the counter of ``model`` named by ``key`` and return its new value.

    A counter that does not exist yet is created at ``start`` first (if two transactions create
    it at once, one insert does nothing), then bumped.
    """
    value = await bump(session, model, key, by)
    if value is not None:
        return value
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(model).values(**key, last=start).on_conflict_do_nothing(index_elements=list(key))
    )
    value = await bump(session, model, key, by)
    if value is None:  # the row was just made, and rows are never deleted in a transaction
        raise RuntimeError(f"counter {key} vanished")
    return value
