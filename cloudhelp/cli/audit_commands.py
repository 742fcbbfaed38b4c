"""``cloudhelp audit verify`` and ``cloudhelp files purge``: the audit trail and file retention
from the command line."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import audit, retention
from cloudhelp.store import db


async def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk the chain; exit 0 when every row holds, 1 naming the first row that does not."""
    from cloudhelp.cli import _settings, _with_database

    settings = _settings(args)

    async def work(engine: db.AsyncEngine) -> int:
        async with db.session_factory(engine)() as session:
            verdict = await audit.verify(session)
        problem = verdict.problem
        if args.json:
            body = {
                "ok": problem is None,
                "rows": verdict.rows,
                "head": {"seq": verdict.head_seq, "sha256": verdict.head_hash},
                "problem": None
                if problem is None
                else {"seq": problem.seq, "kind": problem.kind, "message": problem.message},
            }
            print(json.dumps(body, ensure_ascii=False, indent=2))
        elif problem is None:
            print(
                f"The audit trail holds: {verdict.rows} rows, last row {verdict.head_seq} "
                f"with SHA-256 {verdict.head_hash}."
            )
        else:
            print(f"The audit trail is broken at row {problem.seq} ({problem.kind}): "
                  f"{problem.message}.")  # fmt: skip
        return 0 if problem is None else 1

    return await _with_database(settings, work)


async def cmd_files_purge(args: argparse.Namespace) -> int:
    """Purge the files whose retention period is over (``--dry-run`` lists them only)."""
    from cloudhelp.cli import _settings, _with_database

    settings = _settings(args)

    async def work(engine: db.AsyncEngine) -> int:
        database = db.Database(engine)
        found = await retention.purge(
            database,
            settings.data_dir,
            settings.file_retention_days,
            actor=audit.cli_actor(),
            dry_run=args.dry_run,
        )
        verb = "would purge" if args.dry_run else "purged"
        print(f"{len(found)} file(s) {verb} (kept {settings.file_retention_days} days after "
              "their case ended).")  # fmt: skip
        for item in found:
            ended = datetime.fromisoformat(item.ended_at.isoformat()).astimezone(LOCAL_TZ)
            print(f"  file {item.id} of case {item.case_number or '—'} (ended "
                  f"{ended:%Y-%m-%d}): {item.name}, sha256 {item.sha256}")  # fmt: skip
        return 0

    return await _with_database(settings, work)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``audit verify`` and ``files purge`` to the ``cloudhelp`` parser."""
    audit_parser = commands.add_parser("audit", help="the audit trail (全程留痕)")
    audit_cmds = audit_parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_cmds.add_parser(
        "verify", parents=[common], help="check the hash chain; name the first broken row"
    )
    verify.add_argument("--json", action="store_true", help="the result as JSON")
    verify.set_defaults(run=cmd_audit_verify)
    files_parser = commands.add_parser("files", help="files sent in calls")
    files_cmds = files_parser.add_subparsers(dest="files_command", required=True, metavar="COMMAND")
    purge = files_cmds.add_parser(
        "purge", parents=[common], help="delete files kept past their retention period"
    )
    purge.add_argument("--dry-run", action="store_true", help="only list what would go")
    purge.set_defaults(run=cmd_files_purge)
