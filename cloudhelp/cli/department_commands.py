"""``cloudhelp department set``: a department's ring, wrap-up and autopause settings."""

from __future__ import annotations

import argparse

from sqlalchemy import select

from cloudhelp.cli.failures import CommandFailed
from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.domain import audit
from cloudhelp.store import db
from cloudhelp.store.models import Department


async def cmd_department_set(args: argparse.Namespace) -> int:
    """Change the settings given; print the department's settings after the change."""
    settings = settings_of(args)
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
        async with db.session_factory(engine)() as session, session.begin():
            department = await session.scalar(
                select(Department).where(Department.code == args.code)
            )
            if department is None:
                known = (
                    await session.scalars(select(Department.code).order_by(Department.code))
                ).all()
                raise CommandFailed(
                    f"There is no department with code {args.code!r}; the departments are "
                    f"{', '.join(known) or 'none yet (cloudhelp catalog import FILE)'}."
                )
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

    return await with_database(settings, work)
