"""What the commands share: their settings and a database around their work."""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from cloudhelp.core.config import Settings, load_settings
from cloudhelp.domain import workcalendar
from cloudhelp.store import db
from cloudhelp.store.db import DatabaseUnavailable


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings: ``--config``/``--db``/``--host``/``--port`` over the environment and file."""
    if getattr(args, "config", None):
        os.environ["CLOUDHELP_CONFIG"] = str(args.config)
    config = os.environ.get("CLOUDHELP_CONFIG")
    if config and not Path(config).is_file():
        raise DatabaseUnavailable(f"The config file {config} does not exist.")
    return load_settings(
        database_url=getattr(args, "db", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


async def with_database(
    settings: Settings, work: Callable[[db.AsyncEngine], Awaitable[int]]
) -> int:
    """Run ``work`` on the database, migrated and with its working-day calendar loaded."""
    engine = db.create_engine(settings.effective_database_url)
    try:
        await db.check_connection(engine)
        await db.upgrade(engine)
        async with db.session_factory(engine)() as session:
            await workcalendar.refresh(session)  # due dates count on the database's calendar
        return await work(engine)
    finally:
        await engine.dispose()


def split(value: str | None) -> list[str]:
    """A comma-separated option as its non-empty parts: ``"A, B,"`` → ``["A", "B"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
