"""``cloudhelp staff add|password``: staff accounts."""

from __future__ import annotations

import argparse
import getpass
import sys

from cloudhelp.cli.failures import rejected
from cloudhelp.cli.runtime import settings_of, split, with_database
from cloudhelp.domain import accounts, audit, network
from cloudhelp.domain.catalog import CatalogError
from cloudhelp.store import db


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of stdin with ``--password-stdin``, else asked twice."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise accounts.AccountError("password_mismatch", "The two passwords differ.")
    return first


async def cmd_staff_add(args: argparse.Namespace) -> int:
    """Add or update one staff member (as one record of a network file) with a password."""
    settings = settings_of(args)
    password = _read_password(args)
    person = {
        "username": args.username,
        "display_name": args.name,
        "role": args.role,
        "station": args.station,
        "departments": split(args.departments),
        "items": split(args.items),
    }

    async def work(engine: db.AsyncEngine) -> int:
        password_hash = await accounts.new_password_hash(password)  # before the transaction
        async with db.session_factory(engine)() as session, session.begin():
            await network.import_network(session, {"staff": [person]})
            await accounts.set_password_hash(session, args.username, password_hash)
            await audit.append(session, audit.cli_actor(), "account.changed",
                               subject_kind="account", subject=args.username,
                               **person)  # fmt: skip
        print(f"Staff member {args.username} ({args.role}) is ready to sign in.")
        return 0

    try:
        return await with_database(settings, work)
    except CatalogError as exc:
        # The network file's record label ("staff[0] (wangli), ") means nothing here.
        label = f"staff[0] ({args.username}), "
        problems = [problem.removeprefix(label) for problem in exc.problems]
        raise rejected(f"Staff member {args.username!r}", problems) from None


async def cmd_staff_password(args: argparse.Namespace) -> int:
    """Set a staff member's password."""
    settings = settings_of(args)
    password = _read_password(args)

    async def work(engine: db.AsyncEngine) -> int:
        password_hash = await accounts.new_password_hash(password)  # before the transaction
        async with db.session_factory(engine)() as session, session.begin():
            await accounts.set_password_hash(session, args.username, password_hash)
            await audit.append(session, audit.cli_actor(), "account.password_set",
                               subject_kind="account", subject=args.username)  # fmt: skip
        print(f"Password of {args.username} changed.")
        return 0

    return await with_database(settings, work)
