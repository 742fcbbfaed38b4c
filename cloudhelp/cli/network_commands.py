"""``cloudhelp network import`` and ``cloudhelp kiosk enrol|revoke``: stations, kiosks and staff
from a file; one kiosk's enrolment code or revocation."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from cloudhelp.cli.failures import CommandFailed, rejected
from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.domain import accounts, audit, network
from cloudhelp.domain.catalog import CatalogError
from cloudhelp.store import db


async def _read_json(file: str) -> Any:
    """The JSON value in ``file``; an unreadable or broken file is refused, naming it."""
    try:
        text = await asyncio.to_thread(Path(file).read_text, encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(f"Cannot read {file}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise rejected(file, ["the file is not UTF-8 text"]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"line {exc.lineno}, column {exc.colno}: broken JSON ({exc.msg})"
        raise rejected(file, [problem]) from None


async def cmd_network_import(args: argparse.Namespace) -> int:
    """Import stations, kiosks and staff from a JSON file, whole or nothing."""
    settings = settings_of(args)
    raw = await _read_json(args.file)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            counts = await network.import_network(session, raw)
        print(
            f"Imported {counts['stations']} stations, {counts['kiosks']} kiosks and "
            f"{counts['staff']} staff members."
        )
        return 0

    try:
        return await with_database(settings, work)
    except CatalogError as exc:
        raise rejected(args.file, exc.problems) from None


async def cmd_kiosk_enrol(args: argparse.Namespace) -> int:
    """Register a kiosk (or enrol it again) and print its one-time enrolment code."""
    settings = settings_of(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            code = await accounts.enrol_kiosk(session, args.station, args.code, args.name)
            await audit.append(session, audit.cli_actor(), "kiosk.enrol_code_issued",
                               subject_kind="kiosk", subject=args.code,
                               station=args.station)  # fmt: skip
        print(f"Kiosk {args.code} at station {args.station}: one-time enrolment code {code}")
        print(
            f"It is valid for {int(accounts.ENROL_CODE_TTL.total_seconds() // 3600)} hours and "
            "can be used once; any earlier credential of this kiosk no longer works."
        )
        return 0

    return await with_database(settings, work)


async def cmd_kiosk_revoke(args: argparse.Namespace) -> int:
    """Revoke a kiosk's credential (a running server disconnects it)."""
    settings = settings_of(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            await accounts.revoke_kiosk(session, args.code)
            await audit.append(session, audit.cli_actor(), "kiosk.revoked",
                               subject_kind="kiosk", subject=args.code)  # fmt: skip
        print(f"Kiosk {args.code} is revoked; a running server disconnects it within seconds.")
        return 0

    return await with_database(settings, work)
