"""The ``cloudhelp`` argument parser, one small function per command group.

A command names the function that runs it as ``"module:function"`` (a module of
``cloudhelp.cli``), imported only when that command runs: ``cloudhelp --help`` and a usage error
load no database driver, web framework, pinyin table or WebRTC stack (``command_of``).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Coroutine
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from cloudhelp import __version__

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Commands = argparse._SubParsersAction

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

# The kinds of day ``calendar set`` takes: cloudhelp.domain.workcalendar.KINDS, not imported here
# (tests/test_cli.py checks the two agree).
DAY_KINDS = ("holiday", "workday")


def positive(text: str) -> int:
    """A whole number of at least 1 (an option's type): the message names a bad value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def day(text: str) -> date:
    """A calendar day written YYYY-MM-DD (an argument's type)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD") from None


def command_of(args: argparse.Namespace) -> Command:
    """The function that runs the parsed command, its module imported now."""
    module, _, name = str(args.run).partition(":")
    return cast(Command, getattr(importlib.import_module(f"cloudhelp.cli.{module}"), name))


def _group(commands: Commands, name: str, help: str) -> Commands:
    """A command group (``cloudhelp NAME COMMAND``) and its subcommands."""
    parser = commands.add_parser(name, help=help)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def _command(
    commands: Commands, name: str, run: str, common: argparse.ArgumentParser, help: str
) -> argparse.ArgumentParser:
    """A command that ``run`` (``"module:function"``) runs, with ``--db`` and ``--config``."""
    parser = commands.add_parser(name, parents=[common], help=help)
    parser.set_defaults(run=run)
    return parser


def _add_serve(commands: Commands, common: argparse.ArgumentParser) -> None:
    serve = _command(commands, "serve", "serve_commands:cmd_serve", common,
                     help="run the web server")  # fmt: skip
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks one)")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS: certificate chain (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="serve HTTPS: its private key (PEM)")
    serve.add_argument("--http-redirect-port", type=int, metavar="PORT",
                       help="with TLS: plain HTTP on PORT answers 308 to https")  # fmt: skip


def _add_db(commands: Commands, common: argparse.ArgumentParser) -> None:
    database = _group(commands, "db", "database maintenance")
    _command(database, "upgrade", "serve_commands:cmd_db_upgrade", common,
             help="apply migrations")  # fmt: skip


def _add_catalog(commands: Commands, common: argparse.ArgumentParser) -> None:
    cat = _group(commands, "catalog", "service catalog import and export")
    imp = _command(cat, "import", "catalog_commands:cmd_catalog_import", common,
                   help="import a JSON or CSV catalog")  # fmt: skip
    imp.add_argument("file", help="catalog file (.json or .csv)")
    exp = _command(cat, "export", "catalog_commands:cmd_catalog_export", common,
                   help="export the catalog")  # fmt: skip
    exp.add_argument("--format", choices=("json", "csv"), default="json")
    exp.add_argument("--output", "-o", help="write to this file instead of stdout")


def _add_network(commands: Commands, common: argparse.ArgumentParser) -> None:
    net = _group(commands, "network", "stations, kiosks and staff")
    net_imp = _command(net, "import", "network_commands:cmd_network_import", common,
                       help="import a network JSON file")  # fmt: skip
    net_imp.add_argument("file")


def _add_demo(commands: Commands, common: argparse.ArgumentParser) -> None:
    demo = _command(commands, "demo", "demo_commands:cmd_demo", common,
                    help="load the sample catalog, network and demo accounts")  # fmt: skip
    demo.add_argument(
        "--history", type=positive, metavar="DAYS", help="also generate DAYS days of past activity"
    )
    demo.add_argument(
        "--per-day", type=positive, default=160, help="average tickets per working day (160)"
    )
    demo.add_argument(
        "--serve", action="store_true", help="then run the server (as scripts/demo.sh does)"
    )
    demo.add_argument("--host", help="with --serve: address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="with --serve: port (default 8080)")


def _add_kiosk(commands: Commands, common: argparse.ArgumentParser) -> None:
    kiosk = _group(commands, "kiosk", "enrol and revoke kiosks")
    enrol = _command(kiosk, "enrol", "network_commands:cmd_kiosk_enrol", common,
                     help="register a kiosk and print its one-time code")  # fmt: skip
    enrol.add_argument("station", help="station code, e.g. DLW-QG")
    enrol.add_argument("--code", required=True, help="the kiosk's own code, e.g. QG-03")
    enrol.add_argument("--name", help="a name people recognise")
    revoke = _command(kiosk, "revoke", "network_commands:cmd_kiosk_revoke", common,
                      help="revoke a kiosk")  # fmt: skip
    revoke.add_argument("code")


def _add_staff(commands: Commands, common: argparse.ArgumentParser) -> None:
    staff = _group(commands, "staff", "staff accounts")
    add = _command(staff, "add", "staff_commands:cmd_staff_add", common,
                   help="add or update a staff member")  # fmt: skip
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name, e.g. 王丽")
    add.add_argument("--station", required=True, help="home station code")
    add.add_argument(
        "--role", choices=("staff", "supervisor", "admin", "attendant"), default="staff"
    )
    add.add_argument("--departments", help="comma-separated department codes handled")
    add.add_argument("--items", help="comma-separated item codes handled")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    password = _command(staff, "password", "staff_commands:cmd_staff_password", common,
                        help="set a password")  # fmt: skip
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")


def _add_department(commands: Commands, common: argparse.ArgumentParser) -> None:
    dept = _group(commands, "department", "per-department queue settings")
    dept_set = _command(dept, "set", "department_commands:cmd_department_set", common,
                        help="ring, wrap-up and autopause")  # fmt: skip
    dept_set.add_argument("code", help="department code, e.g. NYNC")
    dept_set.add_argument("--ring-seconds", type=positive, help="how long one offer rings")
    dept_set.add_argument("--wrapup-seconds", type=positive, help="wrap-up time after a call")
    dept_set.add_argument(
        "--max-missed-offers", type=positive, help="unanswered rings in a row before away"
    )


def _add_case(commands: Commands, common: argparse.ArgumentParser) -> None:
    case = _group(commands, "case", "cases (办件)")
    listing = _command(case, "list", "case_commands:cmd_case_list", common,
                       help="list cases, newest first")  # fmt: skip
    listing.add_argument(
        "--status", help="a state code or its label, e.g. correction_needed or 待补正"
    )
    listing.add_argument("--json", action="store_true", help="JSON with state codes and labels")
    listing.add_argument("--limit", type=positive, default=20, help="cases per page (default 20)")
    listing.add_argument("--page", type=positive, default=1, help="page number (default 1)")
    show = _command(case, "show", "case_commands:cmd_case_show", common,
                    help="one case with its history")  # fmt: skip
    show.add_argument("number")
    show.add_argument("--json", action="store_true")


def _add_calendar(commands: Commands, common: argparse.ArgumentParser) -> None:
    calendar = _group(commands, "calendar", "the working-day calendar (holidays, 调休)")
    imp = _command(calendar, "import", "calendar_commands:cmd_calendar_import", common,
                   help="import whole years from a JSON or CSV file")  # fmt: skip
    imp.add_argument("file", help="date,kind,name rows (docs/metrics.md)")
    imp.add_argument("--actor", default="cli", help="who is recorded as loading it")
    day_set = _command(calendar, "set", "calendar_commands:cmd_calendar_set", common,
                       help="make one day a holiday or workday")  # fmt: skip
    day_set.add_argument("date", type=day, help="YYYY-MM-DD")
    day_set.add_argument("kind", choices=DAY_KINDS)
    day_set.add_argument("--name", default="", help="the holiday, e.g. 春节")
    day_set.add_argument("--actor", default="cli")
    show = _command(calendar, "show", "calendar_commands:cmd_calendar_show", common,
                    help="one year's holidays and 调休")  # fmt: skip
    show.add_argument("year", type=int)
    show.add_argument("--json", action="store_true")


def _add_audit(commands: Commands, common: argparse.ArgumentParser) -> None:
    audit = _group(commands, "audit", "the audit trail (全程留痕)")
    verify = _command(audit, "verify", "audit_commands:cmd_audit_verify", common,
                      help="check the hash chain; name the first broken row")  # fmt: skip
    verify.add_argument("--json", action="store_true", help="the result as JSON")


def _add_files(commands: Commands, common: argparse.ArgumentParser) -> None:
    files = _group(commands, "files", "files sent in calls")
    purge = _command(files, "purge", "files_commands:cmd_files_purge", common,
                     help="delete files kept past their retention period")  # fmt: skip
    purge.add_argument("--dry-run", action="store_true", help="only list what would go")


def _add_backup(commands: Commands, common: argparse.ArgumentParser) -> None:
    made = _command(commands, "backup", "backup_commands:cmd_backup", common,
                    help="back up the database and the stored files into one tar file")  # fmt: skip
    made.add_argument(
        "dest", help="a new .tar file, or a folder (ending in /) to write a dated one into"
    )
    made.add_argument("--pg-bindir", metavar="DIR", help="where pg_dump is (default: on PATH)")
    restore = _command(commands, "restore", "backup_commands:cmd_restore", common,
                       help="check a backup and restore it (docs/backups.md)")  # fmt: skip
    restore.add_argument("src", help="a backup file written by cloudhelp backup")
    restore.add_argument("--force", action="store_true",
                         help="replace a database that is not empty")  # fmt: skip
    restore.add_argument("--verify-only", action="store_true",
                         help="only check the backup; change nothing")  # fmt: skip
    restore.add_argument("--pg-bindir", metavar="DIR", help="where pg_restore is (default: PATH)")


# In the order ``cloudhelp --help`` lists them.
GROUPS = (_add_serve, _add_db, _add_catalog, _add_network, _add_demo, _add_kiosk, _add_staff,
          _add_department, _add_case, _add_calendar, _add_audit, _add_files,
          _add_backup)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """``cloudhelp``'s parser: every command group, each command's ``run`` target named."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", help="database URL (env CLOUDHELP_DATABASE_URL)")
    common.add_argument("--config", metavar="FILE", help="TOML config file (env CLOUDHELP_CONFIG)")
    parser = argparse.ArgumentParser(
        prog="cloudhelp", description="CloudHelp (云帮办) remote video help-desk."
    )
    parser.add_argument("--version", action="version", version=f"cloudhelp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in GROUPS:
        add(commands, common)
    return parser
