"""The ``cloudhelp`` command line."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import getpass
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from cloudhelp import __version__
from cloudhelp.cli import audit_commands, calendar_commands
from cloudhelp.core import logs
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.core.config import Settings, load_settings
from cloudhelp.devtools import demo, history
from cloudhelp.domain import accounts, audit, cases, catalog, metrics, network, workcalendar
from cloudhelp.domain.case_record import case_record
from cloudhelp.domain.catalog import CatalogError
from cloudhelp.domain.passwords import hash_password
from cloudhelp.store import db
from cloudhelp.store.db import DatabaseUnavailable

DEMO_PASSWORD = "cloudhelp-demo"


class CommandFailed(Exception):
    """A command could not do its work; ``str(exc)`` is one sentence for the person."""


def _settings(args: argparse.Namespace) -> Settings:
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


async def _with_database(
    settings: Settings, work: Callable[[db.AsyncEngine], Awaitable[int]], *, migrate: bool = True
) -> int:
    engine = db.create_engine(settings.effective_database_url)
    try:
        await db.check_connection(engine)
        if migrate:
            await db.upgrade(engine)
        async with db.session_factory(engine)() as session:
            await workcalendar.refresh(session)  # due dates count on the database's calendar
        return await work(engine)
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------- commands


async def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(engine: db.AsyncEngine) -> int:
        revision = await db.current_revision(engine)
        print(f"Database {db.display_url(engine.url)} is at revision {revision}.")
        return 0

    return await _with_database(settings, work)


async def cmd_catalog_import(args: argparse.Namespace) -> int:
    settings = _settings(args)
    parsed = catalog.parse_file(Path(args.file))

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            counts = await catalog.import_catalog(session, parsed)
        print(
            f"Imported {counts['items']} items, {counts['departments']} departments and "
            f"{counts['categories']} categories from {args.file}."
        )
        return 0

    return await _with_database(settings, work)


async def cmd_catalog_export(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session:
            stored = await catalog.load_catalog(session)
        text = catalog.to_csv(stored) if args.format == "csv" else catalog.to_json(stored)
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0

    return await _with_database(settings, work)


async def cmd_network_import(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        raw = json.loads(await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError([f"cannot read {args.file}: {exc}"]) from exc

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            counts = await network.import_network(session, raw)
        print(
            f"Imported {counts['stations']} stations, {counts['kiosks']} kiosks and "
            f"{counts['staff']} staff members."
        )
        return 0

    return await _with_database(settings, work)


async def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # With --serve (scripts/demo.sh) the port is taken first: the first line is the URL, and a
    # port in use is said before anything is loaded.
    sock = _listen(settings) if args.serve else None
    url = _url_of(settings, sock)
    if sock is not None:
        print(f"CloudHelp demo: open {url} (loading the demo data, then the server starts)")

    async def work(engine: db.AsyncEngine) -> int:
        from sqlalchemy import select

        from cloudhelp.store.models import Kiosk, Staff

        secret = settings.effective_secret_key.encode()
        async with db.session_factory(engine)() as session, session.begin():
            counts, net = await demo.load_samples(session)
            demo_hash = hash_password(DEMO_PASSWORD)
            staff = (await session.scalars(select(Staff).order_by(Staff.id))).all()
            for person in staff:
                person.password_hash = demo_hash
            kiosks = (await session.scalars(select(Kiosk).order_by(Kiosk.code))).all()
            # Enrolled kiosks keep their credential; the others get the same code as on every
            # earlier run (valid another 24 h), so links printed before keep working.
            codes: dict[str, str | None] = {}
            for k in kiosks:
                if k.credential_hash is None and k.revoked_at is None:
                    codes[k.code] = await accounts.enrol_kiosk(
                        session,
                        k.station.code,
                        k.code,
                        code=accounts.demo_enrol_code(secret, k.code),
                    )
                    await audit.append(session, audit.cli_actor(), "kiosk.enrol_code_issued",
                                       subject_kind="kiosk", subject=k.code,
                                       station=k.station.code, demo=True)  # fmt: skip
                else:
                    codes[k.code] = None
            names = {k.code: k.name for k in kiosks}
            revoked = {k.code for k in kiosks if k.revoked_at is not None}
        print(f"Demo data loaded into {db.display_url(engine.url)}:")
        print(
            f"  {counts['items']} service items (sample data), {net['stations']} stations, "
            f"{net['kiosks']} kiosks, {net['staff']} staff accounts."
        )
        print(f"  Staff accounts (password for all: {DEMO_PASSWORD}), sign in at {url}staff :")
        for person in staff:
            print(f"    {person.username:<10} {person.role:<10} {person.display_name}")
        print("  Kiosks: open a kiosk's link once in its browser (one-time code, valid 24 h):")
        for code, enrol_code in codes.items():
            if enrol_code:
                where = f"{url}kiosk?enrol={enrol_code}"
            elif code in revoked:
                where = "revoked (a new code: cloudhelp kiosk enrol STATION --code " + code + ")"
            else:
                where = f"enrolled already: {url}kiosk on that device"
            print(f"    {code:<8} {where}  {names[code]}")
        if args.history:
            database = db.Database(engine)
            made = await history.generate(
                database,
                args.history,
                tickets_per_day=args.per_day,
                district=settings.district_code,
            )
            last = datetime.now(LOCAL_TZ).date()
            await metrics.refresh(
                database,
                last - timedelta(days=args.history),
                last,
                rules=metrics.Rules.of(settings),
            )
            print(
                f"  {made} tickets of history: the last {args.history} days and today so far "
                "(see /reports and /board)."
            )
        # After the history: a day that already has tickets is left alone by the history, so the
        # demo cases' sessions (today's, numbered from the live counter) must come second.
        async with db.session_factory(engine)() as session, session.begin():
            opened = await demo.seed_cases(session, settings.district_code)
        if opened:
            print(f"  {opened} demo cases, one in each state (cloudhelp case list).")
        if sock is None:
            print(f"Start the server with:  cloudhelp serve   (then open {url})")
        return 0

    try:
        await _with_database(settings, work)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    if sock is None:
        return 0
    print("Starting the server…", flush=True)
    return await _serve(settings, sock)


async def cmd_kiosk_enrol(args: argparse.Namespace) -> int:
    settings = _settings(args)

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

    return await _with_database(settings, work)


async def cmd_kiosk_revoke(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            await accounts.revoke_kiosk(session, args.code)
            await audit.append(session, audit.cli_actor(), "kiosk.revoked",
                               subject_kind="kiosk", subject=args.code)  # fmt: skip
        print(f"Kiosk {args.code} is revoked; a running server disconnects it within seconds.")
        return 0

    return await _with_database(settings, work)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise accounts.AccountError("password_mismatch", "The two passwords differ.")
    return first


async def cmd_staff_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    password = _read_password(args)
    record = {
        "staff": [
            {
                "username": args.username,
                "display_name": args.name,
                "role": args.role,
                "station": args.station,
                "departments": _split(args.departments),
                "items": _split(args.items),
            }
        ]
    }

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            await network.import_network(session, record)
            await accounts.set_password(session, args.username, password)
            await audit.append(session, audit.cli_actor(), "account.changed",
                               subject_kind="account", subject=args.username,
                               **record["staff"][0])  # fmt: skip
        print(f"Staff member {args.username} ({args.role}) is ready to sign in.")
        return 0

    return await _with_database(settings, work)


async def cmd_staff_password(args: argparse.Namespace) -> int:
    settings = _settings(args)
    password = _read_password(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session, session.begin():
            await accounts.set_password(session, args.username, password)
            await audit.append(session, audit.cli_actor(), "account.password_set",
                               subject_kind="account", subject=args.username)  # fmt: skip
        print(f"Password of {args.username} changed.")
        return 0

    return await _with_database(settings, work)


async def cmd_department_set(args: argparse.Namespace) -> int:
    settings = _settings(args)
    values = {
        name: value
        for name, value in (
            ("ring_seconds", args.ring_seconds),
            ("wrapup_seconds", args.wrapup_seconds),
            ("max_missed_offers", args.max_missed_offers),
        )
        if value is not None
    }

    async def work(engine: db.AsyncEngine) -> int:
        from sqlalchemy import select

        from cloudhelp.store.models import Department

        async with db.session_factory(engine)() as session, session.begin():
            department = await session.scalar(
                select(Department).where(Department.code == args.code)
            )
            if department is None:
                raise CatalogError([f"there is no department with code {args.code!r}"])
            for name, value in values.items():
                setattr(department, name, value)
            await audit.append(session, audit.cli_actor(), "setting.department",
                               subject_kind="department", subject=department.code,
                               changes=values)  # fmt: skip
        d = department
        print(
            f"{d.code} {d.name}: ring {d.ring_seconds} s, wrap-up {d.wrapup_seconds} s, "
            f"away after {d.max_missed_offers} missed rings."
        )
        return 0

    return await _with_database(settings, work)


async def cmd_case_list(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(engine: db.AsyncEngine) -> int:
        from sqlalchemy import func, select

        from cloudhelp.store.models import Case, CaseEvent

        # A code (correction_needed) or the label the list prints (待补正).
        by_label = {label: code for code, label in cases.STATES.items()}
        status = by_label.get(args.status, args.status) if args.status else None
        if status and status not in cases.STATES:
            known = ", ".join(f"{code} ({label})" for code, label in cases.STATES.items())
            raise cases.CaseError(
                "unknown_state", f"Unknown status {args.status!r}: one of {known}."
            )
        where = [Case.status == status] if status else []
        async with db.session_factory(engine)() as session:
            total = await session.scalar(select(func.count()).select_from(Case).where(*where)) or 0
            page_rows = (
                await session.scalars(
                    select(Case)
                    .where(*where)
                    .order_by(Case.created_at.desc(), Case.id.desc())
                    .limit(args.limit)
                    .offset((args.page - 1) * args.limit)
                )
            ).all()
            # One query for the events of the whole page (time limits need them), not one a case.
            events: dict[int, list[CaseEvent]] = {c.id: [] for c in page_rows}
            for event in (
                await session.scalars(
                    select(CaseEvent)
                    .where(CaseEvent.case_id.in_(events))
                    .order_by(CaseEvent.at, CaseEvent.id)
                )
            ).all():
                events[event.case_id].append(event)
            found = [cases.case_json(c, events[c.id]) for c in page_rows]
        pages = max(1, -(-total // args.limit))
        if args.page > pages:
            raise CommandFailed(
                f"page {args.page} is past the end: {total} cases make {pages} "
                f"page{'s' if pages != 1 else ''} of {args.limit}."
            )
        if args.json:
            body = {"cases": found, "total": total, "page": args.page, "limit": args.limit}
            print(json.dumps(body | {"pages": pages}, ensure_ascii=False, indent=1))
            return 0
        width = max((len(c["number"]) for c in found), default=0)
        for c in found:
            due = c["time_limits"]["promised_due"] or "-"
            print(
                f"{c['number']:<{width}}  {c['created_at'][:10]}  {c['status']['label']:<5}  "
                f"due {due:<10}  {c['item']['name']}"
            )
        first = (args.page - 1) * args.limit + 1
        shown = f"{first}–{first + len(found) - 1}" if found else "none"
        print(f"Cases {shown} of {total} (page {args.page} of {pages}, newest first).")
        if args.page < pages:
            filters = f" --status {status}" if status else ""
            filters += f" --limit {args.limit}" if args.limit != 20 else ""
            print(f"Next page: cloudhelp case list{filters} --page {args.page + 1}")
        return 0

    return await _with_database(settings, work)


def _days(count: float) -> str:
    """``1 working day``, ``20 working days``."""
    return f"{count:g} working day{'' if count == 1 else 's'}"


async def cmd_case_show(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(engine: db.AsyncEngine) -> int:
        from sqlalchemy import select

        from cloudhelp.store.models import Case

        async with db.session_factory(engine)() as session:
            case = await session.scalar(select(Case).where(Case.number == args.number))
            if case is None:
                raise cases.CaseError("no_such_case", f"There is no case {args.number!r}.")
            body = await case_record(session, case)
        if args.json:
            print(json.dumps(body, ensure_ascii=False, indent=1))
        else:
            _print_case(body)
        return 0

    return await _with_database(settings, work)


def _local(iso: str) -> str:
    """A stored moment as the district's local time, to the minute."""
    return datetime.fromisoformat(iso).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _print_case(body: dict[str, Any]) -> None:
    """A case as text: what its page shows (history, sessions with ratings and follow-ups,
    checklists, notices)."""
    limits = body["time_limits"]
    print(f"{body['number']}  {body['status']['label']}  {body['item']['name']}")
    print(f"  applicant {body['applicant']['name']} {body['applicant']['phone']} "
          f"{body['applicant']['id_number']}; station {body['station']['name']}; "
          f"round {body['rounds']}")  # fmt: skip
    promised, statutory = limits["promised_due"] or "-", limits["statutory_due"] or "-"
    promised_days, statutory_days = limits["promised_days"], limits["statutory_days"]
    print(f"  promised {_days(promised_days)} (due {promised}), "
          f"statutory {_days(statutory_days)} (due {statutory})")  # fmt: skip
    for flag in body.get("flags", []):
        print(f"  ! {flag}")
    print("History:")
    for e in body["events"]:
        print(f"  {_local(e['at'])}  → {e['to']['label']}  {e['actor']}  {e['reason']}".rstrip())
    print("Sessions:" if body["sessions"] else "Sessions: none")
    for t in body["sessions"]:
        print(f"  {t['day']} {t['ticket']}  {t['station']}  {t['status']}  outcome {t['outcome']}"
              f"  ended by {t['end_reason']}")  # fmt: skip
        if t.get("note"):
            print(f"    wrap-up note: {t['note']}")
        for f in t["files"]:
            print(f"    file {f['name']} ({f['size']} bytes, from {f['sender']})")
        rating = t["rating"]
        if rating:
            reasons = f" ({', '.join(rating['reasons'])})" if rating["reasons"] else ""
            print(f"    rating: {rating['label'] or rating['outcome']}{reasons}")
            follow = rating["follow_up"]
            if follow:
                closed = f"closed {_local(follow['closed_at'])}" if follow["closed_at"] else ""
                state = (
                    f"{closed} by {follow['closed_by']}: {follow['note']}"
                    if follow["closed_at"]
                    else "open" + (" (overdue)" if follow["overdue"] else "")
                )
                print(f"    follow-up due {follow['due_date']}: {state}")
    for checklist in body["checklists"]:
        print(f"Checklist, round {checklist['round']}:")
        for m in checklist["materials"]:
            mark = m["status_label"] or "-"
            print(f"  {m['position']}. {m['name']}  {mark}  {m['reason']}".rstrip())
    for n in body["notices"]:
        issued = f"issued {_local(n['issued_at'])} by {n['issued_by']}"
        print(f"Correction notice, round {n['round']}: {issued}")
        for entry in n["items"]:
            what = entry.get("name", "") if isinstance(entry, dict) else str(entry)
            why = entry.get("reason", "") if isinstance(entry, dict) else ""
            print(f"  - {what}  {why}".rstrip())


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


GC_YOUNG_THRESHOLD = 7000  # Python's default is 700


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _listen(settings: Settings) -> socket.socket:
    """The server's listening socket, bound now: a port in use is one sentence, no traceback."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CommandFailed(f"Cannot listen on {settings.host!r}: {exc.strerror}.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandFailed(
                f"Port {settings.port} on {settings.host} is already in use (is CloudHelp already "
                "running?); stop that program or pick another port with --port."
            ) from None
        raise CommandFailed(
            f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}."
        ) from None
    return sock


def _url_of(settings: Settings, sock: socket.socket | None = None) -> str:
    """The address a person opens: the bound port, 127.0.0.1 for a wildcard host."""
    port = sock.getsockname()[1] if sock is not None else (settings.port or 8080)
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{port}/"


async def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    return await _serve(settings, _listen(settings))


async def _serve(settings: Settings, sock: socket.socket) -> int:
    from cloudhelp.app import create_app

    logs.configure(settings.log_level)
    app = create_app(settings)
    # SIGTERM and SIGINT only set an event (aiohttp's own handlers raise out of the event loop,
    # which cancels every WebSocket handler mid-frame: clients saw 1006). The cleanup below then
    # closes each socket with 1001 (going away), as docs/protocol.md promises.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()  # opens the database and applies migrations
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    print(f"CloudHelp is running: open {_url_of(settings, sock)}", flush=True)
    print(f"Database: {db.display_url(settings.effective_database_url)}", flush=True)
    # Everything loaded so far (modules, pinyin and holiday tables, the app) lives as long as the
    # process: keep it out of the cyclic garbage collector's full passes, which would otherwise
    # walk a quarter of a million objects and stall every call's relay for ~130 ms. Each open
    # WebSocket keeps a dozen young objects waiting for its next frame, so a young-generation
    # pass costs about 1 ms with hundreds of calls; running it 10× less often takes that out of
    # the relay's p99 (benchmarks/signaling.py measures both).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", help="database URL (env CLOUDHELP_DATABASE_URL)")
    common.add_argument("--config", metavar="FILE", help="TOML config file (env CLOUDHELP_CONFIG)")

    parser = argparse.ArgumentParser(
        prog="cloudhelp", description="CloudHelp (云帮办) remote video help-desk."
    )
    parser.add_argument("--version", action="version", version=f"cloudhelp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the web server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks one)")
    serve.set_defaults(run=cmd_serve)

    database = commands.add_parser("db", help="database maintenance")
    database_cmds = database.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = database_cmds.add_parser("upgrade", parents=[common], help="apply migrations")
    upgrade.set_defaults(run=cmd_db_upgrade)

    cat = commands.add_parser("catalog", help="service catalog import and export")
    cat_cmds = cat.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")
    imp = cat_cmds.add_parser("import", parents=[common], help="import a JSON or CSV catalog")
    imp.add_argument("file", help="catalog file (.json or .csv)")
    imp.set_defaults(run=cmd_catalog_import)
    exp = cat_cmds.add_parser("export", parents=[common], help="export the catalog")
    exp.add_argument("--format", choices=("json", "csv"), default="json")
    exp.add_argument("--output", "-o", help="write to this file instead of stdout")
    exp.set_defaults(run=cmd_catalog_export)

    net = commands.add_parser("network", help="stations, kiosks and staff")
    net_cmds = net.add_subparsers(dest="network_command", required=True, metavar="COMMAND")
    net_imp = net_cmds.add_parser("import", parents=[common], help="import a network JSON file")
    net_imp.add_argument("file")
    net_imp.set_defaults(run=cmd_network_import)

    demo = commands.add_parser(
        "demo", parents=[common], help="load the sample catalog, network and demo accounts"
    )
    demo.add_argument(
        "--history", type=_positive, metavar="DAYS", help="also generate DAYS days of past activity"
    )
    demo.add_argument(
        "--per-day", type=_positive, default=160, help="average tickets per working day (160)"
    )
    demo.add_argument(
        "--serve", action="store_true", help="then run the server (as scripts/demo.sh does)"
    )
    demo.add_argument("--host", help="with --serve: address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="with --serve: port (default 8080)")
    demo.set_defaults(run=cmd_demo)

    kiosk = commands.add_parser("kiosk", help="enrol and revoke kiosks")
    kiosk_cmds = kiosk.add_subparsers(dest="kiosk_command", required=True, metavar="COMMAND")
    kiosk_enrol = kiosk_cmds.add_parser(
        "enrol", parents=[common], help="register a kiosk and print its one-time code"
    )
    kiosk_enrol.add_argument("station", help="station code, e.g. DLW-QG")
    kiosk_enrol.add_argument("--code", required=True, help="the kiosk's own code, e.g. QG-03")
    kiosk_enrol.add_argument("--name", help="a name people recognise")
    kiosk_enrol.set_defaults(run=cmd_kiosk_enrol)
    kiosk_revoke = kiosk_cmds.add_parser("revoke", parents=[common], help="revoke a kiosk")
    kiosk_revoke.add_argument("code")
    kiosk_revoke.set_defaults(run=cmd_kiosk_revoke)

    staff = commands.add_parser("staff", help="staff accounts")
    staff_cmds = staff.add_subparsers(dest="staff_command", required=True, metavar="COMMAND")
    staff_add = staff_cmds.add_parser("add", parents=[common], help="add or update a staff member")
    staff_add.add_argument("username")
    staff_add.add_argument("--name", required=True, help="display name, e.g. 王丽")
    staff_add.add_argument("--station", required=True, help="home station code")
    staff_add.add_argument("--role", choices=("staff", "supervisor", "admin"), default="staff")
    staff_add.add_argument("--departments", help="comma-separated department codes handled")
    staff_add.add_argument("--items", help="comma-separated item codes handled")
    staff_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    staff_add.set_defaults(run=cmd_staff_add)
    staff_pw = staff_cmds.add_parser("password", parents=[common], help="set a password")
    staff_pw.add_argument("username")
    staff_pw.add_argument("--password-stdin", action="store_true")
    staff_pw.set_defaults(run=cmd_staff_password)

    dept = commands.add_parser("department", help="per-department queue settings")
    dept_cmds = dept.add_subparsers(dest="department_command", required=True, metavar="COMMAND")
    dept_set = dept_cmds.add_parser("set", parents=[common], help="ring, wrap-up and autopause")
    dept_set.add_argument("code", help="department code, e.g. NYNC")
    dept_set.add_argument("--ring-seconds", type=_positive, help="how long one offer rings")
    dept_set.add_argument("--wrapup-seconds", type=_positive, help="wrap-up time after a call")
    dept_set.add_argument(
        "--max-missed-offers", type=_positive, help="unanswered rings in a row before away"
    )
    dept_set.set_defaults(run=cmd_department_set)

    case = commands.add_parser("case", help="cases (办件)")
    case_cmds = case.add_subparsers(dest="case_command", required=True, metavar="COMMAND")
    case_list = case_cmds.add_parser("list", parents=[common], help="list cases, newest first")
    case_list.add_argument(
        "--status", help="a state code or its label, e.g. correction_needed or 待补正"
    )
    case_list.add_argument("--json", action="store_true", help="JSON with state codes and labels")
    case_list.add_argument(
        "--limit", type=_positive, default=20, help="cases per page (default 20)"
    )
    case_list.add_argument("--page", type=_positive, default=1, help="page number (default 1)")
    case_list.set_defaults(run=cmd_case_list)
    case_show = case_cmds.add_parser("show", parents=[common], help="one case with its history")
    case_show.add_argument("number")
    case_show.add_argument("--json", action="store_true")
    case_show.set_defaults(run=cmd_case_show)
    calendar_commands.register(commands, common)
    audit_commands.register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(args.run(args))
    except DatabaseUnavailable as exc:
        print(f"cloudhelp: {exc}", file=sys.stderr)
        return 2
    except CommandFailed as exc:
        print(f"cloudhelp: {exc}", file=sys.stderr)
        return 1
    except (accounts.AccountError, cases.CaseError) as exc:
        print(f"cloudhelp: {exc.message}", file=sys.stderr)
        return 1
    except workcalendar.CalendarError as exc:
        print(f"cloudhelp: {exc.message}", file=sys.stderr)
        return 1
    except CatalogError as exc:
        print(
            f"cloudhelp: the file was rejected and nothing was changed ({len(exc.problems)} "
            "problem(s)):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `cloudhelp catalog export | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
