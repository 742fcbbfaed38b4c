"""What the commands share: their settings and a database around their work."""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cloudhelp.cli.failures import CommandFailed
from cloudhelp.core.config import Settings, load_settings
from cloudhelp.domain import workcalendar
from cloudhelp.store import db
from cloudhelp.store.db import DatabaseUnavailable


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings: ``--config``/``--db`` and the command's own flags (``serve``: host, port, TLS)
    over the environment and file; invalid settings are one sentence and their problems."""
    if getattr(args, "config", None):
        os.environ["CLOUDHELP_CONFIG"] = str(args.config)
    config = os.environ.get("CLOUDHELP_CONFIG")
    if config and not Path(config).is_file():
        raise DatabaseUnavailable(f"The config file {config} does not exist.")
    try:
        return load_settings(
            database_url=getattr(args, "db", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            tls_cert=getattr(args, "tls_cert", None),
            tls_key=getattr(args, "tls_key", None),
            http_redirect_port=getattr(args, "http_redirect_port", None),
        )
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
        raise CommandFailed("The settings are not valid:", problems) from None


def _problem(error: Any) -> str:
    """One settings problem: ``port: Input should be …``, or a rule across several settings."""
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(map(str, error["loc"]))
    return f"{where}: {message}" if where else message


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
