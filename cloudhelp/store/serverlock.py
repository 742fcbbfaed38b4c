"""Which servers may use one database at once.

A server that runs alone (no ``redis_url``) sees no session of any other server: its orphan
watcher would end every call, ticket and console another server holds (a second
``cloudhelp serve`` on the same data folder, or one started without ``redis_url`` against a
cluster's PostgreSQL). So servers take a lock on the database while they serve: a server alone
takes it exclusively, the nodes of a cluster take it shared, and a server that cannot take it
refuses to start (``DatabaseInUse``).

The lock dies with its holder, whatever the death (SIGKILL, power): on PostgreSQL a session
advisory lock held on a connection of its own, on SQLite ``flock`` on ``<database>-server.lock``
beside the file. A PostgreSQL restart drops the lock with the connection: ``hold`` takes it
again once the database is back, and logs ``serve.database_in_use`` if another server took it
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from cloudhelp.core.logs import log_event
from cloudhelp.store.db import check_connection, display_url, normalise_url

# The advisory lock's key (PostgreSQL's locks are per database): "CloudHlp" as a bigint.
ADVISORY_KEY = int.from_bytes(b"CloudHlp", "big") - 2**63
# How often a PostgreSQL server checks that it still holds the lock (a restart drops it).
RECHECK_SECONDS = 10.0


class DatabaseInUse(Exception):
    """Another server uses the database in a way this one may not join; the message is one
    sentence for a person."""


def _refusal(url: str, clustered: bool) -> DatabaseInUse:
    where = display_url(url)
    if clustered:
        return DatabaseInUse(
            f"A CloudHelp server without redis_url is serving {where}: a cluster node cannot"
            " share its database. Stop that server, or give it the cluster's redis_url."
        )
    return DatabaseInUse(
        f"Another CloudHelp server is serving {where} (a server alone, or the nodes of a"
        " cluster): a server without redis_url must be its database's only one. Stop the other,"
        " or give every server the same redis_url."
    )


@contextlib.asynccontextmanager
async def hold(url: str, clustered: bool) -> AsyncIterator[None]:
    """Hold the database's server lock while the block runs: shared for a node of a cluster
    (``clustered``), exclusive for a server alone; DatabaseInUse when it cannot be had."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            yield  # no other process can open it
            return
        with _file_lock(database, clustered, url):
            yield
        return
    async with _advisory_lock(url, clustered):
        yield


@contextlib.contextmanager
def _file_lock(database: str, clustered: bool, url: str) -> Iterator[None]:
    file = Path(database).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)  # a new data folder (the engine does the same)
    path = file.with_name(file.name + "-server.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if clustered else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refusal(url, clustered) from None
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.asynccontextmanager
async def _advisory_lock(url: str, clustered: bool) -> AsyncIterator[None]:
    # A connection of its own, outside the pool the server's requests share.
    engine = create_async_engine(normalise_url(url), poolclass=NullPool)
    take = "pg_try_advisory_lock_shared" if clustered else "pg_try_advisory_lock"

    async def taken() -> AsyncConnection | None:
        connection = await engine.connect()
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if await connection.scalar(text(f"SELECT {take}(:key)"), {"key": ADVISORY_KEY}):
            return connection
        await connection.close()
        return None

    try:
        await check_connection(engine)  # unreachable: DatabaseUnavailable, its one sentence
        holding = await taken()
        if holding is None:
            raise _refusal(url, clustered)
    except BaseException:
        await engine.dispose()
        raise

    async def keep() -> None:
        nonlocal holding
        refused_logged = False
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                if holding is not None:
                    await holding.scalar(text("SELECT 1"))
                    continue
                holding = await taken()
                if holding is None and not refused_logged:
                    log_event("serve.database_in_use", severity=logging.ERROR, clustered=clustered)
                refused_logged = holding is None
            except Exception as exc:
                # The database is out (its outage is told elsewhere): the lock went with the
                # connection; taken again once it is back.
                if not isinstance(exc, SQLAlchemyError | OSError | TimeoutError):
                    log_event("serve.lock_check_failed", severity=logging.WARNING, error=repr(exc))
                if holding is not None:
                    with contextlib.suppress(Exception):
                        await holding.invalidate()
                    holding = None

    keeper = asyncio.create_task(keep())
    try:
        yield
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        if holding is not None:
            with contextlib.suppress(Exception):
                await holding.close()
        await engine.dispose()
