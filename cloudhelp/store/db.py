"""Database engine, sessions and migrations: SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:  # Alembic is imported only when a migration runs (it costs ~0.15 s)
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened; the message is one sentence for a person."""


class MigrationFailed(Exception):
    """A migration failed. The message is one sentence for a person: what is left (PostgreSQL:
    nothing of it, the migrations run in one transaction; SQLite: possibly part of it, its
    driver commits DDL as it goes) and what the database said."""


def normalise_url(url: str) -> URL:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise DatabaseUnavailable(
        f"Unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://."
    )


def display_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(str(url) if isinstance(url, URL) else url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


POOL_SIZE = 10  # PostgreSQL connections per process (each node: N nodes hold up to 10 N)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # PostgreSQL: at most POOL_SIZE connections, kept open once opened, and no overflow ones.
    # A burst (50 kiosks coming back at once after a node died) then waits its turn for a
    # connection — a query takes a millisecond or two — instead of opening more: with 10 +
    # 20 overflow, each connection past 10 was opened for one session and closed after it
    # (a PostgreSQL backend started, its statements prepared again), and the failover's
    # socket-closed → ticket-back p99 was 2.4–3.5 s against 1.6–2.7 s now (docs/scaling.md).
    return create_async_engine(
        parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=30
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _migrate(sync: Connection, step: Callable[[Config], None]) -> None:
    """Run one Alembic command. On SQLite, foreign keys are off meanwhile: a batch migration
    recreates a table (copy, drop, rename), and dropping a table other rows refer to fails
    with them on. SQLite ignores the pragma inside a transaction, so it is set before the
    migration's transaction begins, and the references are checked before it commits."""
    sqlite = sync.dialect.name == "sqlite"
    if sqlite:
        sync.exec_driver_sql("PRAGMA foreign_keys=OFF")
        sync.commit()  # end the autobegun transaction; the pragma ran outside any
    try:
        with sync.begin():
            step(_alembic_config(sync))
            if sqlite:
                broken = sync.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken references: {broken[:5]}")
    finally:
        if sqlite:
            sync.exec_driver_sql("PRAGMA foreign_keys=ON")
            sync.commit()


def newest_revision() -> str:
    """The newest migration's revision, from the file names: migrations are numbered 0001,
    0002 …, each revising the one before (tests/test_storage.py holds this against Alembic's
    own heads)."""
    files = (MIGRATIONS_DIR / "versions").glob("[0-9]*.py")
    return max(path.name.split("_", 1)[0] for path in files)


async def _at_newest(engine: AsyncEngine) -> bool:
    """Whether the database is already at the newest migration (one small query; False when
    it has no ``alembic_version`` table yet)."""
    from sqlalchemy.exc import DBAPIError

    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    except DBAPIError:
        return False
    return [row[0] for row in rows] == [newest_revision()]


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply pending migrations up to ``revision``; MigrationFailed, with what the database
    said, when one fails. A database already at the newest is left alone without loading
    Alembic (every command-line run calls this)."""
    from sqlalchemy.exc import DBAPIError

    if revision == "head" and await _at_newest(engine):
        return
    from alembic import command

    try:
        async with engine.connect() as conn:
            await conn.run_sync(_migrate, lambda config: command.upgrade(config, revision))
    except DBAPIError as exc:
        said = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        left = (
            "is left as it was (the migrations run in one transaction)"
            if engine.dialect.name == "postgresql"
            else "may hold part of the failed step: restore the backup taken before the "
            "upgrade (cloudhelp restore --force)"
        )
        raise MigrationFailed(
            f"The database {display_url(engine.url)} could not be brought up to date and "
            f"{left}. The database said: {said}"
        ) from exc


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    async with engine.connect() as conn:
        await conn.run_sync(_migrate, lambda config: command.downgrade(config, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def current_heads(engine: AsyncEngine) -> frozenset[str]:
    """The revisions the database is at (empty before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        heads = await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_heads()
        )
    return frozenset(heads)


async def check_connection(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailable with one clear sentence if the database cannot be opened."""

    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # driver errors differ: asyncpg, OSError, sqlite3
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseUnavailable(
            f"Cannot connect to the database at {display_url(engine.url)}: {reason}"
        ) from exc


async def probe(engine: AsyncEngine, timeout: float) -> float:
    """Seconds a trivial query takes (a fresh connection when the pool has none); raises
    TimeoutError after ``timeout`` seconds, or the driver's error when the database is out."""

    started = time.perf_counter()
    async with asyncio.timeout(timeout), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return time.perf_counter() - started


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revisions the migrations in this package end at (one, unless branches diverge)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


class Database:
    """The engine with its sessions. ``write()`` serialises writers on SQLite.

    SQLite allows one writer at a time and a deferred transaction that reads before it writes
    can fail to upgrade its lock; taking an in-process lock for write transactions avoids that.
    PostgreSQL writers run concurrently and rely on conditional updates for atomic claims.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def read(self) -> AsyncSession:
        return self.sessions()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessions() as session, session.begin():
            yield session
