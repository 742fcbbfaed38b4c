"""Telling a database outage apart from a bug.

When PostgreSQL stops (or restarts, or refuses connections) the drivers raise a zoo of errors:
``ConnectionRefusedError`` from the connect, asyncpg's connection and operator-intervention
errors (``57P01 admin_shutdown``, ``57P03 cannot_connect_now`` while it starts up) wrapped by
SQLAlchemy as ``DBAPIError``, a pool timeout, or "connection is closed". :func:`is_unavailable`
recognises them all (anywhere in the exception's chain), so the server can answer "briefly
unavailable, try again" (HTTP 503, protocol error ``service_unavailable``) in one place instead
of an internal error. A failed transaction is rolled back by its session, so nothing
half-written remains.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from aiohttp import ClientConnectionResetError
from sqlalchemy import exc as sa_exc

# What the server tells clients to wait before trying again (HTTP Retry-After, in seconds).
RETRY_AFTER_SECONDS = 5

_OUTAGE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    sa_exc.TimeoutError,  # no pooled connection came free in time
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, crash, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.ConnectionDoesNotExistError,
)
_CLOSED = ("connection is closed", "connection was closed")
_SQLITE_OUTAGE = ("database is locked", "unable to open database file", "disk i/o error")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what it wraps (SQLAlchemy's ``orig``), and its causes and contexts."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached right now (not a bug, not bad input).
    aiohttp's ClientConnectionResetError is a ConnectionError too, but of the HTTP or WebSocket
    peer that went away (a browser closed mid-request), never the database's."""
    if isinstance(exc, ClientConnectionResetError):
        return False
    for error in _chain(exc):
        if isinstance(error, _OUTAGE):
            return True
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        text = str(error).lower()
        if isinstance(error, asyncpg.InterfaceError) and any(s in text for s in _CLOSED):
            return True
        if isinstance(error, sqlite3.OperationalError) and any(s in text for s in _SQLITE_OUTAGE):
            return True
    return False
