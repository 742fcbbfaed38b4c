"""``cloudhelp files purge``: delete the files sent in calls once their retention period is
over."""

from __future__ import annotations

import argparse

from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.core import clock
from cloudhelp.domain import audit, retention
from cloudhelp.store import db


async def cmd_files_purge(args: argparse.Namespace) -> int:
    """Purge the files whose retention period is over (``--dry-run`` lists them only)."""
    settings = settings_of(args)

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
            ended = clock.local_date(item.ended_at)
            print(f"  file {item.id} of case {item.case_number or '—'} (ended "
                  f"{ended}): {item.name}, sha256 {item.sha256}")  # fmt: skip
        return 0

    return await with_database(settings, work)
