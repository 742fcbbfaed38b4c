"""Report benchmark: a year of a busy district, every report timed on SQLite and PostgreSQL.

    python -m benchmarks.reports [--quick] [--tickets N] [--pg-url URL]

Loads the sample catalog and network into a new database, generates a year of history
(``cloudhelp.history``: ≥ 1,000,000 tickets by default, 30,000 with ``--quick``), builds the
daily rollups once, then times each report over the whole year and over its last 30 days
(median of 5 runs, milliseconds). The baseline, in the same run: the year's total computed the
old way, by reading every ticket of the range into Python (``metrics.ticket_facts``). Then
"today": a working day in progress at the year's rate, its report page timed with its rows
fresh (baseline), stale after 10 tickets changed (rebuilt from those), and stale rebuilt from
scratch.

PostgreSQL runs when ``--pg-url`` or ``CLOUDHELP_TEST_PG_URL`` names a server the benchmark
may create (and afterwards drop) a database on. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time as clock
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, make_url, select, update

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.devtools import demo, history
from cloudhelp.domain import metrics, workcalendar
from cloudhelp.http.report_routes import DUE_SOON_WORKING_DAYS
from cloudhelp.store import db
from cloudhelp.store.models import Ticket

RUNS = 5


def tickets_per_working_day(target: int, first: date, last: date) -> float:
    """The average a day must have for the range to hold ``target`` tickets (2 % over, as the
    generator's days vary at random)."""
    load, day = 0.0, first
    while day <= last:
        if workdays.is_working_day(day)[0]:
            load += history.WEEKDAY_LOAD[day.weekday()]
        day += timedelta(days=1)
    return target * 1.02 / load


async def median_ms(work: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(RUNS):
        start = clock.perf_counter()
        await work()
        times.append((clock.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


async def run_one(url: str, target: int) -> dict[str, Any]:
    engine = db.create_engine(url)
    database = db.Database(engine)
    try:
        await db.upgrade(engine)
        async with database.write() as s:
            await demo.load_samples(s)
            await workcalendar.refresh(s)  # working days from the database's calendar
        midnight = datetime.combine(datetime.now(LOCAL_TZ).date(), time(), LOCAL_TZ)
        last = midnight.date() - timedelta(days=1)
        first = last - timedelta(days=364)
        per_day = tickets_per_working_day(target, first, last)
        start = clock.perf_counter()
        await history.generate(database, 365, tickets_per_day=per_day, until=midnight)
        generate_s = clock.perf_counter() - start
        async with database.read() as s:
            tickets = await s.scalar(select(func.count()).select_from(Ticket))
        start = clock.perf_counter()
        await metrics.refresh(database, first, last)
        rollup_s = clock.perf_counter() - start

        reports: dict[str, float] = {}
        for label, (a, b) in {
            "year": (first, last),
            "30d": (last - timedelta(days=29), last),
        }.items():
            async with database.read() as s:
                for by in metrics.GROUPS:
                    reports[f"{label}.by_{by}"] = await median_ms(
                        lambda by=by, a=a, b=b: metrics.table(s, a, b, by)
                    )
                reports[f"{label}.total"] = await median_ms(lambda a=a, b=b: metrics.total(s, a, b))
                reports[f"{label}.peak_hours"] = await median_ms(
                    lambda a=a, b=b: metrics.peak_hours(s, a, b)
                )
                reports[f"{label}.hot_items"] = await median_ms(
                    lambda a=a, b=b: metrics.hot_items(s, a, b)
                )
            # What the report page asks for in one request (fresh-rollup check included).
            reports[f"{label}.whole_page"] = await median_ms(
                lambda a=a, b=b: _whole_page(database, a, b)
            )
        today = await _today(database, per_day, midnight)
        async with database.read() as s:
            reports["case_progress"] = await median_ms(
                lambda: metrics.case_progress(s, last, DUE_SOON_WORKING_DAYS)
            )
            start = clock.perf_counter()
            await metrics.ticket_facts(s, first, last)
            baseline_ms = (clock.perf_counter() - start) * 1000
        return {
            "tickets": tickets,
            "generate_s": round(generate_s, 1),
            "rollup_build_s": round(rollup_s, 1),
            "reports_ms": reports,
            "max_report_ms": max(reports.values()),
            "today": today,
            "baseline_read_every_ticket_ms": round(baseline_ms, 1),
        }
    finally:
        await engine.dispose()


async def _today(database: db.Database, per_day: float, midnight: datetime) -> dict[str, Any]:
    """The report page for a day in progress (the first working day from ``midnight``, up to
    15:00 of it, its tickets at the year's rate), "now" being 15:00 and later: with today's
    rows fresh (the baseline), stale with a few tickets changed since the last build (rebuilt
    from the changed tickets), and stale with the incremental state dropped (rebuilt from
    scratch, as before)."""
    day = midnight.date()
    while not workdays.is_working_day(day)[0]:
        day += timedelta(days=1)
    at = datetime.combine(day, time(15), LOCAL_TZ)
    tickets = await history.generate(database, 0, tickets_per_day=per_day, until=at)
    now = [at.astimezone(UTC)]
    await metrics.refresh(database, day, day, now=now[0])

    async def stale(changed: int, from_scratch: bool) -> float:
        """Median ms of the page after ``changed`` tickets changed (not timed) and 2 min."""
        times = []
        for _ in range(RUNS):
            now[0] += timedelta(minutes=2)  # older than the page's one minute
            async with database.write() as s:
                ids = (await s.scalars(select(Ticket.id).where(Ticket.day == day.isoformat())
                                       .order_by(func.random()).limit(changed))).all()  # fmt: skip
                await s.execute(
                    update(Ticket).where(Ticket.id.in_(ids)).values(version=Ticket.version + 1)
                )
            if from_scratch:
                metrics._ROLLUPS.pop(database, None)
            start = clock.perf_counter()
            await _whole_page(database, day, day, now[0])
            times.append((clock.perf_counter() - start) * 1000)
        return round(statistics.median(times), 2)

    return {
        "day": day.isoformat(),
        "tickets": tickets,
        "page_rows_fresh_ms": await median_ms(lambda: _whole_page(database, day, day, now[0])),
        "page_rows_stale_ms": await stale(10, False),
        "page_rows_stale_from_scratch_ms": await stale(10, True),
    }


async def _whole_page(
    database: db.Database, first: date, last: date, now: datetime | None = None
) -> None:
    await metrics.refresh(database, first, last, now=now)
    async with database.read() as s:
        await metrics.table(s, first, last, "station")
        await metrics.table(s, first, last, "day")
        await metrics.total(s, first, last)
        await metrics.peak_hours(s, first, last)
        await metrics.hot_items(s, first, last)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30,000 tickets: under a minute")
    parser.add_argument("--tickets", type=int, help="tickets in the year (default 1,000,000)")
    parser.add_argument("--pg-url", default=os.environ.get("CLOUDHELP_TEST_PG_URL"))
    args = parser.parse_args()
    target = args.tickets or (30_000 if args.quick else 1_000_000)
    result: dict[str, Any] = {"target_tickets": target, "runs": RUNS}
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = await run_one(f"sqlite:///{Path(tmp) / 'bench.db'}", target)
    if args.pg_url:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(args.pg_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
            result["postgresql"] = await run_one(url, target)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    else:
        print("PostgreSQL skipped: pass --pg-url or set CLOUDHELP_TEST_PG_URL", file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
