"""``cloudhelp catalog import|export``: the service catalog as a JSON or CSV file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cloudhelp.cli.failures import CommandFailed, rejected
from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.domain import catalog
from cloudhelp.domain.catalog import CatalogError
from cloudhelp.store import db


async def cmd_catalog_import(args: argparse.Namespace) -> int:
    """Import a catalog file whole, or nothing of it (each rejected record named)."""
    settings = settings_of(args)
    try:
        parsed = catalog.parse_file(Path(args.file))
    except CatalogError as exc:
        raise rejected(args.file, exc.problems) from None

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            counts = await catalog.import_catalog(session, parsed)
        print(
            f"Imported {counts['items']} items, {counts['departments']} departments and "
            f"{counts['categories']} categories from {args.file}."
        )
        return 0

    try:
        return await with_database(settings, work)
    except CatalogError as exc:
        raise rejected(args.file, exc.problems) from None


async def cmd_catalog_export(args: argparse.Namespace) -> int:
    """Write the catalog as JSON or CSV to ``--output`` or stdout."""
    settings = settings_of(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session:
            stored = await catalog.load_catalog(session)
        text = catalog.to_csv(stored) if args.format == "csv" else catalog.to_json(stored)
        if not args.output:
            sys.stdout.write(text)
            return 0
        try:
            await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
        except OSError as exc:
            raise CommandFailed(f"Cannot write {args.output}: {exc.strerror or exc}.") from None
        return 0

    return await with_database(settings, work)
