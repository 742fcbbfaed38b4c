"""``cloudhelp backup`` and ``cloudhelp restore``: the database and the file store in one
verified tar file, and back (cloudhelp/store/backup.py; docs/backups.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.core.config import Settings
from cloudhelp.domain import audit
from cloudhelp.store import backup, db


def _target(settings: Settings, args: argparse.Namespace) -> backup.Target:
    bindir = Path(args.pg_bindir) if args.pg_bindir else None
    return backup.Target(settings.effective_database_url, settings.data_dir, bindir)


async def cmd_backup(args: argparse.Namespace) -> int:
    """Write a backup; record it in the audit trail when the database is at this version's
    revision (a backup taken before an upgrade leaves the old schema alone). Exit 1 when stored
    files were damaged and left out."""
    settings = settings_of(args)
    dest = Path(args.dest)
    if args.dest.endswith(("/", os.sep)):  # a folder, by the operator's word: made if missing
        await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
    made = await backup.make(_target(settings, args), dest)
    manifest = made.manifest
    print(f"Backup written to {made.path}: {backup.describe(manifest)}.")
    if manifest["alembic_revision"] == backup.head_revision():

        async def record(engine: db.AsyncEngine) -> int:
            async with db.Database(engine).write() as session:
                await audit.append(session, audit.cli_actor(), "backup.created",
                                   subject_kind="backup", subject=made.path.name,
                                   files=manifest["files"]["count"],
                                   database_sha256=manifest["database"]["sha256"])  # fmt: skip
            return 0

        await with_database(settings, record)
    else:
        print(f"Not recorded in the audit trail: the database is at revision "
              f"{manifest['alembic_revision']}, this CloudHelp's is "
              f"{backup.head_revision()}.")  # fmt: skip
    if made.damaged:
        print(f"cloudhelp: {len(made.damaged)} stored file(s) are damaged (their bytes no longer "
              "match their SHA-256) and were left out of the backup:", file=sys.stderr)  # fmt: skip
        for sha256 in made.damaged:
            print(f"  - {sha256}", file=sys.stderr)
        return 1
    return 0


async def cmd_restore(args: argparse.Namespace) -> int:
    """Check a backup (``--verify-only``), or restore it, record the restore in the audit trail
    and check the trail's hash chain."""
    src = Path(args.src)
    if args.verify_only:
        manifest = await backup.check(src)
        print(f"The backup {src} is complete and every part matches its manifest: "
              f"{backup.describe(manifest)}.")  # fmt: skip
        return 0
    settings = settings_of(args)
    restored = await backup.restore(_target(settings, args), src, force=args.force)
    manifest = restored.manifest
    print(f"Restored {src} ({backup.describe(manifest)}) into "
          f"{db.display_url(settings.effective_database_url)} and {settings.data_dir}; "
          f"{restored.files_added} files added; database now at revision "
          f"{restored.revision}.")  # fmt: skip

    async def record(engine: db.AsyncEngine) -> int:
        async with db.Database(engine).write() as session:
            await audit.append(session, audit.cli_actor(), "backup.restored",
                               subject_kind="backup", subject=src.name,
                               created_at=manifest["created_at"],
                               from_revision=manifest["alembic_revision"],
                               to_revision=restored.revision, forced=args.force)  # fmt: skip
        async with db.Database(engine).read() as session:
            verdict = await audit.verify(session)
        if verdict.problem is not None:
            print(f"cloudhelp: the restored audit trail is broken at row {verdict.problem.seq}: "
                  f"{verdict.problem.message}.", file=sys.stderr)  # fmt: skip
            return 1
        print(f"The audit trail holds: {verdict.rows} rows.")
        return 0

    return await with_database(settings, record)
