"""Migrations and database set-up, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from cloudhelp.store import db

EXPECTED_TABLES = {
    "departments", "categories", "service_items", "materials", "stations", "kiosks", "staff",
    "staff_skills", "alembic_version",
}  # fmt: skip


async def test_upgrade_creates_schema_and_downgrade_removes_it(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        assert await db.current_revision(engine) is None
        await db.upgrade(engine)
        head = await db.current_revision(engine)
        assert head is not None
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert EXPECTED_TABLES <= tables
        await db.upgrade(engine)  # idempotent
        assert await db.current_revision(engine) == head
        await db.downgrade(engine, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables <= {"alembic_version"}
        await db.upgrade(engine)
        assert await db.current_revision(engine) == head
    finally:
        await engine.dispose()


async def test_sqlite_is_set_up_for_a_server(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    try:
        async with engine.connect() as conn:
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
        assert journal == "wal"
        assert foreign_keys == 1
        assert busy == db.SQLITE_BUSY_TIMEOUT_MS
    finally:
        await engine.dispose()


async def test_database_refuses_promised_beyond_statutory(engine: db.AsyncEngine) -> None:
    """The check constraint backs up the import validation in the schema itself."""
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO departments (code, name) VALUES ('D', 'd')"))
        await conn.execute(
            text("INSERT INTO categories (code, letter, name) VALUES ('C', 'A', 'c')")
        )
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO service_items (code, name, pinyin_initials, department_id,"
                    " category_id, statutory_days, promised_days, tiers, cloud, description)"
                    " VALUES ('X', 'x', 'x', 1, 1, 5, 6, '[]', true, '')"
                )
            )


async def test_unreachable_database_is_one_clear_sentence() -> None:
    engine = db.create_engine("postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(db.DatabaseUnavailable) as caught:
        await db.check_connection(engine)
    await engine.dispose()
    message = str(caught.value)
    assert message.startswith("Cannot connect to the database at postgresql+asyncpg://nobody:***@")
    assert "secret" not in message
    assert "\n" not in message


def test_unsupported_url_scheme() -> None:
    with pytest.raises(db.DatabaseUnavailable, match="Unsupported database URL scheme"):
        db.normalise_url("mysql://x/y")


async def test_migrations_keep_a_populated_database(demo_url: str) -> None:
    """Down and up again over the demo's data: a batch migration on SQLite recreates tables
    that others refer to (0014 recreated service_items and failed with FOREIGN KEY constraint
    failed on any database holding its materials)."""
    engine = db.create_engine(demo_url)
    count = "SELECT (SELECT count(*) FROM service_items), (SELECT count(*) FROM materials)"
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(text(count))).one()
        assert before[0] > 0 and before[1] > 0
        await db.downgrade(engine, "0010")
        await db.upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text(count))).one() == before
            if engine.dialect.name == "sqlite":
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
                assert (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all() == []
    finally:
        await engine.dispose()


def test_the_newest_revision_by_file_name_is_alembics_head() -> None:
    """``db.upgrade``'s fast path reads the newest revision from the migrations' numbered file
    names; Alembic's own graph must agree (one head, the highest number)."""
    assert db.head_revisions() == {db.newest_revision()}


def test_an_up_to_date_database_is_opened_without_loading_alembic(tmp_path: Path) -> None:
    """Every command-line run calls ``db.upgrade``: on a database already at the newest
    revision it does not import Alembic (~0.15 s); on an older one it migrates as before."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    script = (
        "import asyncio, sys\n"
        "from cloudhelp.store import db\n"
        "async def main():\n"
        f"    engine = db.create_engine({url!r})\n"
        "    await db.upgrade(engine)\n"
        "    loaded = 'alembic' in sys.modules  # (current_revision imports it)\n"
        "    print(await db.current_revision(engine), loaded)\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )

    def upgrade_once() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    newest = db.newest_revision()
    assert upgrade_once() == f"{newest} True"  # a new database: migrated, by Alembic
    assert upgrade_once() == f"{newest} False"  # up to date: Alembic not loaded
