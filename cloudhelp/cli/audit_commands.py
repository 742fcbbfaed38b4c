"""``cloudhelp audit verify``: check the audit trail's hash chain from the command line."""

from __future__ import annotations

import argparse
import json

from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.domain import audit
from cloudhelp.store import db


async def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk the chain; exit 0 when every row holds, 1 naming the first row that does not."""
    settings = settings_of(args)

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

    return await with_database(settings, work)
