"""The ``cloudhelp`` command, run as a person would run it."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cloudhelp import cli
from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.devtools.demo import HALL_CLOSES, HALL_OPENS
from cloudhelp.domain import case_lookup
from cloudhelp.domain.ratings import FOLLOW_UP_WORKING_DAYS
from tests.callkit import running_server
from tests.helpers import ROOT, demo_database, run_cli, serve_and_read_url, start_cli

# The demo campaign's cases: their sessions were booked appointments.
CAMPAIGN_CASES = (
    "SELECT cases.number FROM cases JOIN tickets ON tickets.case_id = cases.id"
    " WHERE tickets.appointment_id IS NOT NULL"
)


def test_demo_export_and_import(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = run_cli("demo", "--db", db)
    assert demo.returncode == 0, demo.stderr
    assert "service items (sample data)" in demo.stdout
    assert "wangli" in demo.stdout and "cloudhelp-demo" in demo.stdout
    assert "QG-01" in demo.stdout and "/kiosk?enrol=" in demo.stdout
    # Every case (not one page: the demo's licence cases were opened weeks ago, behind the
    # campaign's).
    listed = json.loads(run_cli("case", "list", "--json", "--limit", "1000", "--db", db).stdout)[
        "cases"
    ]
    assert {c["status"]["code"] for c in listed} == {
        "pre_review", "correction_needed", "awaiting_acceptance", "accepted", "concluded",
        "delivered", "not_accepted",
    }  # fmt: skip
    number = next(c["number"] for c in listed if c["status"]["code"] == "correction_needed")
    waiting = json.loads(run_cli("case", "show", number, "--json", "--db", db).stdout)
    assert waiting["notices"][0]["items"][0]["reason"] == "申请人未签字"
    assert waiting["checklists"][0]["round"] == 1
    # Each demo case was opened in a video session, rated by the resident; a bad rating has
    # its follow-up.
    (session,) = waiting["sessions"]
    assert session["status"] == "completed" and session["outcome"] == "needs_correction"
    assert [e["kind"] for e in session["events"]] == [
        "enqueued", "offered", "connected", "case_opened", "ended", "wrapup_done",
    ]  # fmt: skip
    assert session["rating"]["level"] == 2 and session["rating"]["reasons"]
    assert session["rating"]["follow_up"]["closed_at"] is None
    # Due five working days after the day it was rated (not after the demo was loaded: a
    # README walk found one demo follow-up due days after the others of its day).
    rated_on = date.fromisoformat(session["day"])
    due = workdays.add_working_days(rated_on, FOLLOW_UP_WORKING_DAYS).day
    assert session["rating"]["follow_up"]["due_date"] == due.isoformat()
    shown = run_cli("case", "show", number, "--db", db)
    assert shown.returncode == 0, shown.stderr
    for part in ("Sessions:", "rating: 不满意 (等待时间长, 解答不清楚)", "follow-up due",
                 "Checklist, round 1:", "申请人未签字", "Correction notice, round 1"):  # fmt: skip
        assert part in shown.stdout, shown.stdout
    # The demo cases (the demo campaign's cases, sessions of booked appointments on their own
    # days, are rated by nobody).
    with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
        campaign = {n for (n,) in conn.execute(CAMPAIGN_CASES)}
    records = {
        c["number"]: json.loads(run_cli("case", "show", c["number"], "--json", "--db", db).stdout)
        for c in listed
        if c["number"] not in campaign
    }
    assert len(records) == 7
    assert all(len(r["sessions"]) == 1 for r in records.values())
    numbered = [(r["sessions"][0]["day"], r["sessions"][0]["ticket"]) for r in records.values()]
    assert len(numbered) == len(set(numbered))  # one numbering: no two sessions of a day share one
    assert [r["sessions"][0]["rating"]["outcome"] for r in records.values()].count("declined") == 1
    again = run_cli("demo", "--db", db)  # idempotent: no second set of cases
    assert again.returncode == 0 and "demo cases" not in again.stdout

    exported = run_cli("catalog", "export", "--db", db)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert len(data["items"]) >= 79

    csv_file = tmp_path / "catalog.csv"
    as_csv = run_cli("catalog", "export", "--db", db, "--format", "csv", "-o", str(csv_file))
    assert as_csv.returncode == 0 and as_csv.stdout == ""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = run_cli("catalog", "import", str(csv_file), "--db", other)
    assert imported.returncode == 0, imported.stderr
    assert f"Imported {len(data['items'])} items, 7 departments and 6 categories" in imported.stdout
    again = run_cli("catalog", "export", "--db", other)
    assert json.loads(again.stdout) == data


def test_bad_catalog_file_is_rejected_with_the_record_named(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "departments": [{"code": "D1", "name": "部门"}],
                "categories": [{"code": "c1", "letter": "A", "name": "类别"}],
                "items": [
                    {"code": "I-1", "name": "事项", "department": "D1", "category": "c1",
                     "statutory_days": 5, "promised_days": 9, "tiers": ["district"]},
                ],
            }
        )
    )  # fmt: skip
    result = run_cli("catalog", "import", str(bad), "--db", db)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "rejected and nothing was changed" in result.stderr
    assert "items[0] (code I-1)" in result.stderr and "exceeds statutory_days" in result.stderr
    exported = run_cli("catalog", "export", "--db", db)
    assert json.loads(exported.stdout)["items"] == []


def test_unreachable_database_is_one_sentence() -> None:
    """A command, and the server (whose database lock is taken first), say it in one line."""
    for command in (("db", "upgrade"), ("serve", "--port", "0")):
        result = run_cli(*command, "--db", "postgresql://u:pw@127.0.0.1:1/x")
        assert result.returncode == 2, result.stderr
        assert "CloudHelp is running" not in result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cloudhelp: Cannot connect to the database")
        assert "pw" not in lines[0]


def test_db_upgrade_reports_revision(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", "--db", f"sqlite:///{tmp_path / 'y.db'}")
    assert result.returncode == 0, result.stderr
    assert "is at revision" in result.stdout and "None" not in result.stdout


def test_a_failed_migration_is_one_sentence_saying_what_is_left(tmp_path: Path) -> None:
    path = tmp_path / "taken.db"
    with sqlite3.connect(path) as conn:  # a table in the way of the first migration
        conn.execute("CREATE TABLE stations (x INTEGER)")
    result = run_cli("db", "upgrade", "--db", f"sqlite:///{path}")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    # SQLite's driver commits DDL as it goes: the sentence says part may be left, and how
    # to undo it (PostgreSQL's migrations run in one transaction and leave nothing).
    assert "could not be brought up to date and may hold part of the failed step" in (result.stderr)
    assert "cloudhelp restore --force" in result.stderr
    assert "table stations already exists" in result.stderr


def test_serve_with_config_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "cloudhelp.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "conf.db"}"\nport = 0\n')
    assert run_cli("demo", env={"CLOUDHELP_CONFIG": str(config)}).returncode == 0
    cheap = {"CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES": "1"}  # as the test command sets it
    process = start_cli("serve", env={"CLOUDHELP_CONFIG": str(config)} | cheap)
    try:
        url = serve_and_read_url(process)
        with urllib.request.urlopen(url + "api/v1/items/SCJG-004") as response:
            item = json.loads(response.read())
        assert item["promised_days"] == 0.5
        # A workbook is made in a worker process (core/workers.py, forkserver), started here
        # from a server run as people run it.
        signed_in = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        login = urllib.request.Request(
            url + "api/v1/auth/login",
            data=json.dumps({"username": "sunhua", "password": "cloudhelp-demo"}).encode(),
            headers={"Content-Type": "application/json", "Origin": url.rstrip("/")},
        )
        signed_in.open(login, timeout=30).close()
        with signed_in.open(url + "api/v1/reports?by=day&format=xlsx", timeout=60) as response:
            assert response.read(2) == b"PK"  # a zip: the workbook
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.stderr is not None
    logged = [json.loads(line) for line in process.stderr.read().splitlines() if line.strip()]
    assert any(e.get("event") == "passwords.insecure_test_hashes" for e in logged), logged


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_demo_with_history_fills_the_reports_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'history.db'}"
    first = run_cli("demo", "--db", db, "--history", "30", "--per-day", "30")
    assert first.returncode == 0, first.stderr
    made = int(first.stdout.split(" tickets of history")[0].rsplit(maxsplit=1)[-1])
    assert made > 100  # at least 12 working days in any 30 (Golden Week included) at ~30 a day
    # Every audit row the demo wrote (history, cases, papers, campaign) says it is demo data:
    # its time is the loading's, not the moment the history has it happen.
    with contextlib.closing(sqlite3.connect(tmp_path / "history.db")) as conn:
        details = [json.loads(d) for (d,) in conn.execute("SELECT detail FROM audit_events")]
    assert len(details) > 100 and all(d.get("demo") is True for d in details), details[:3]

    def tickets_by_day() -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(tmp_path / "history.db")) as conn:
            return dict(conn.execute("SELECT day, count(*) FROM tickets GROUP BY day").fetchall())

    before = tickets_by_day()
    again = run_cli("demo", "--db", db, "--history", "30", "--per-day", "30")
    assert again.returncode == 0, again.stderr
    after, today = tickets_by_day(), datetime.now(LOCAL_TZ).date().isoformat()
    # Every day that had tickets is kept as it was. Only today can gain some: the first run
    # found none before the hall opened (this test once ran across 9:00 in the district).
    assert {d: n for d, n in after.items() if d != today} == {
        d: n for d, n in before.items() if d != today
    }
    if today in before or today not in after:
        assert after == before
        assert "were there already, kept as they were" in again.stdout
    bad = run_cli("demo", "--db", db, "--history", "0")
    assert bad.returncode == 2 and "--history" in bad.stderr


def test_every_demo_case_number_is_one_a_resident_can_type(tmp_path: Path) -> None:
    """The demo's cases (its own, its history's and its campaign's served boats) are numbered
    as live ones are, 18 digits, so that each is found at the kiosk's 补正材料 and 我的材料/证照
    (the campaign's were numbered …-Y0032, which the kiosk never found)."""
    db = demo_database(tmp_path / "numbers.db")
    with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
        numbers = [n for (n,) in conn.execute("SELECT number FROM cases")]
        campaign = len(conn.execute(CAMPAIGN_CASES).fetchall())
    assert campaign > 20 and len(numbers) > campaign
    typed = {n: case_lookup.case_number(n.replace("-", " ")) for n in numbers}
    assert [n for n, found in typed.items() if found != n] == []


def test_the_demo_campaign_books_nobody_in_the_halls_lunch_break(tmp_path: Path) -> None:
    """The demo's campaign hours keep the hall's lunch break (12:00–13:30, as the kiosk tells
    residents), so no boat owner is booked when nobody answers at the hall."""
    db = demo_database(tmp_path / "lunch.db")
    with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
        hours = set(conn.execute("SELECT break_starts, break_ends FROM service_hours"))
        rows = conn.execute("SELECT starts_at, ends_at FROM appointments").fetchall()
    booked = [
        tuple(
            datetime.fromisoformat(t).replace(tzinfo=UTC).astimezone(LOCAL_TZ).time() for t in row
        )
        for row in rows
    ]
    assert hours == {("12:00", "13:30")}
    assert len(booked) > 60
    assert [b for b in booked if b[0] < clock_time(13, 30) and clock_time(12) < b[1]] == []


def test_the_demo_papers_move_in_the_halls_opening_hours(tmp_path: Path) -> None:
    """Every move of the demo's papers (registered, carried, received, shelved) is dated in the
    hall's opening hours of a working day, whenever the demo is loaded (a parcel was received
    at 03:06 and shelved on a Saturday)."""
    db = demo_database(tmp_path / "papers.db")
    with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
        moments = [
            at
            for sql in (
                "SELECT at FROM tracked_item_events",
                "SELECT ready_at FROM tracked_items",
                "SELECT received_at FROM logistics_runs",
            )
            for (at,) in conn.execute(sql)
            if at is not None
        ]
    assert len(moments) > 40
    outside = []
    for at in moments:
        moment = datetime.fromisoformat(at)
        local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(LOCAL_TZ)
        open_then = HALL_OPENS <= local.time() <= HALL_CLOSES
        if not (open_then and workdays.is_working_day(local.date())[0]):
            outside.append(local.isoformat())
    assert outside == []


async def test_the_demo_cases_leave_today_to_the_history(tmp_path: Path) -> None:
    """The demo cases' sessions are today's tickets; a day with tickets is skipped by the
    history, so the demo must not seed its cases first (today's history went missing)."""
    from sqlalchemy import func, select

    from cloudhelp.devtools import history
    from cloudhelp.devtools.demo import DEMO_CASES
    from cloudhelp.store import db as cdb
    from cloudhelp.store.models import Case, Ticket
    from tests.conftest import load_sample_data

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run_cli("demo", "--db", url, "--history", "1", "--per-day", "60").returncode == 0
    # What the history alone makes of today, on the same samples, a moment later.
    alone = cdb.create_engine(f"sqlite:///{tmp_path / 'alone.db'}")
    await cdb.upgrade(alone)
    await load_sample_data(cdb.session_factory(alone))
    await history.generate(cdb.Database(alone), 1, tickets_per_day=60)
    today = datetime.now(LOCAL_TZ).date().isoformat()
    demo_phones = [phone for _, _, phone, *_ in DEMO_CASES]
    counts = []
    for engine in (cdb.create_engine(url), alone):
        async with cdb.session_factory(engine)() as s:
            counts.append(
                await s.scalar(
                    select(func.count())
                    .select_from(Ticket)
                    .outerjoin(Case, Case.id == Ticket.case_id)
                    .where(Ticket.day == today)
                    .where(Case.id.is_(None) | Case.applicant_phone.not_in(demo_phones))
                    .where(Ticket.appointment_id.is_(None))  # not the demo campaign's sessions
                )
            )
        await engine.dispose()
    demo_day, history_day = counts
    # The two runs are seconds apart: an arrival may fall between them.
    assert abs(demo_day - history_day) <= 2, (demo_day, history_day)


def test_the_demo_sessions_fall_in_the_halls_opening_hours() -> None:
    """The demo's own sessions end now while the hall is open, else when it last closed: a
    demo loaded at night or at a weekend has no resident calling at 00:23 on a Saturday."""
    from cloudhelp.devtools.demo import sessions_end

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 12, day, hour, minute, tzinfo=LOCAL_TZ)

    friday_close = at(4, 17, 30)
    assert sessions_end(at(4, 11)) == at(4, 11)  # Friday morning: now
    assert sessions_end(at(4, 20)) == friday_close  # Friday night: that day's close
    assert sessions_end(at(5, 0, 23)) == friday_close  # Saturday
    assert sessions_end(at(7, 0, 23)) == friday_close  # Monday before opening
    assert sessions_end(at(7, 9)) == friday_close  # too early for every session yet
    assert sessions_end(at(7, 10)) == at(7, 10)  # Monday morning: now


async def test_the_demos_papers_are_picked_up_and_carried_in_the_halls_opening_hours(
    sessions: async_sessionmaker[AsyncSession], demo_engine: AsyncEngine, tmp_path: Path
) -> None:
    """Loaded at 00:23 on a Saturday, the demo's 陈丽华 was delivered, and its papers were
    picked up, carried, shelved and reported, by the time the hall last closed (the rule of
    the demo's sessions), not at the moment it was loaded."""
    from cloudhelp.core.clock import utcnow
    from cloudhelp.devtools import demo, demo_items
    from cloudhelp.store.models import Case, CaseEvent, LogisticsRun, TrackedItem, TrackedItemEvent

    today = utcnow().astimezone(LOCAL_TZ).date()
    saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)  # the last one before
    loaded = datetime.combine(saturday, clock_time(0, 23), LOCAL_TZ)
    closed = demo.sessions_end(loaded)  # Friday's close, or an earlier one after a holiday
    local = closed.astimezone(LOCAL_TZ)
    assert local.time() == clock_time(17, 30) and local.weekday() < 5, local
    async with sessions() as session, session.begin():
        assert await demo.seed_cases(session, "210211", now=loaded) == len(demo.DEMO_CASES)
        assert await demo_items.seed_items(session, tmp_path, now=loaded) > 10
    async with sessions() as session:
        case = await session.scalar(select(Case).where(Case.applicant_phone == "13840000006"))
        assert case is not None and case.status == "delivered"
        assert case.delivered_at == closed
        delivered = await session.scalar(
            select(CaseEvent.at).where(
                CaseEvent.case_id == case.id, CaseEvent.to_state == "delivered"
            )
        )
        assert delivered == closed
        events = (
            await session.scalars(select(TrackedItemEvent).order_by(TrackedItemEvent.id))
        ).all()
        (picked_up,) = [e for e in events if e.kind == "picked_up"]
        assert closed - timedelta(minutes=1) < picked_up.at <= closed, picked_up.at
        # Nothing of the papers happened after the hall closed, and each item's story is in
        # order (what the rules did at load time was moved back, not reordered).
        moments = [e.at for e in events]
        for item in (await session.scalars(select(TrackedItem))).all():
            moments += [item.created_at, item.ready_at, item.finished_at, item.exception_at]
            story = [e.at for e in events if e.item_id == item.id]
            assert story == sorted(story), item.code
        for run in (await session.scalars(select(LogisticsRun))).all():
            moments += [run.created_at, run.dispatched_at, run.received_at]
        latest = max(at for at in moments if at is not None)
        assert latest <= closed, latest.astimezone(LOCAL_TZ)


async def test_the_demos_licences_are_issued_after_their_cases_concluded(
    sessions: async_sessionmaker[AsyncSession], demo_engine: AsyncEngine, tmp_path: Path
) -> None:
    """Loaded on a Tuesday morning, 陈丽华's licence (her case concluded "4 days ago", the Friday;
    shelved "2 days ago", the Sunday: the Friday too) was issued the Thursday, before her case
    concluded. Each licence on the shelf is issued after its case concluded, and shelved at
    least half a day later, before the demo's now."""
    from cloudhelp.devtools import demo, demo_items
    from cloudhelp.store.models import Case, TrackedItem

    loaded = datetime(2026, 12, 1, 10, 0, tzinfo=LOCAL_TZ)  # a Tuesday, the hall open
    async with sessions() as session, session.begin():
        await demo.seed_cases(session, "210211", now=loaded)
        await demo_items.seed_items(session, tmp_path, now=loaded)
    async with sessions() as session:
        shelved = (
            await session.scalars(
                select(TrackedItem).where(
                    TrackedItem.kind == "certificate", TrackedItem.ready_at.is_not(None)
                )
            )
        ).all()
        assert len(shelved) == 3
        for item in shelved:
            assert item.ready_at is not None and item.ready_at <= loaded, item.description
            assert item.ready_at - item.created_at >= timedelta(hours=12), item.description
            case = await session.get(Case, item.case_id)
            assert case is not None and case.concluded_at is not None
            assert case.concluded_at <= item.created_at, (
                item.description, case.concluded_at, item.created_at)  # fmt: skip


ENROL_LINK = re.compile(r"^ +(\S+) +(http://127\.0\.0\.1:8080/kiosk\?enrol=(\w{4}-\w{4}))  ", re.M)


async def test_running_the_demo_again_keeps_kiosks_and_printed_codes(tmp_path: Path) -> None:
    env = {"CLOUDHELP_DATA_DIR": str(tmp_path)}  # the secret key the demo codes derive from
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    first = run_cli("demo", "--db", db, env=env)
    assert first.returncode == 0, first.stderr
    assert "Start the server with:  cloudhelp serve   (then open http://127.0.0.1:8080/)" in (
        first.stdout
    )
    links = {kiosk: (link, code) for kiosk, link, code in ENROL_LINK.findall(first.stdout)}
    assert set(links) == {"DLW-01", "QG-01", "QG-02", "SG-01", "TL-01", "WJ-01"}
    async with running_server(db) as server:
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": links["QG-01"][1]}) as r:
            assert r.status == 200
            credential = (await r.json())["credential"]
        again = run_cli("demo", "--db", db, env=env)
        assert again.returncode == 0, again.stderr
        relinks = {kiosk: (link, code) for kiosk, link, code in ENROL_LINK.findall(again.stdout)}
        # The enrolled kiosk keeps its credential; every other code printed before still works.
        assert "QG-01    enrolled already: http://127.0.0.1:8080/kiosk on that device" in (
            again.stdout
        )
        assert relinks == {k: v for k, v in links.items() if k != "QG-01"}
        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        assert kiosk.welcome["principal"]["kiosk"] == "QG-01"
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": links["QG-02"][1]}) as r:
            assert r.status == 200
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": links["QG-01"][1]}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "enrol_code_used"


def test_serve_on_a_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        db = f"sqlite:///{tmp_path / 'port.db'}"
        for command in (("serve",), ("demo", "--serve")):
            result = run_cli(*command, "--db", db, "--port", port)
            assert result.returncode == 1
            assert "Traceback" not in result.stderr
            assert result.stderr.splitlines() == [
                f"cloudhelp: Port {port} on 127.0.0.1 is already in use (is CloudHelp already "
                "running?); stop that program or pick another port with --port."
            ]


def test_demo_serve_prints_the_url_first_and_logs_warnings_as_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {"CLOUDHELP_DATA_DIR": str(tmp_path), "CLOUDHELP_WARNING_CHECK_SECONDS": "0.2"}
    process = start_cli(
        "demo", "--history", "20", "--per-day", "30", "--serve", "--port", "0", "--db", db,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        assert first.startswith("CloudHelp demo: open http://127.0.0.1:"), first
        url = first.split()[3]
        lines = [first]
        while not lines[-1].startswith("CloudHelp is running"):
            lines.append(process.stdout.readline())
            assert lines[-1], "".join(lines) + process.stderr.read()
        assert lines[-1] == f"CloudHelp is running: open {url}\n"
        assert not any("Start the server with" in line for line in lines)
        assert f"{url}kiosk?enrol=" in "".join(lines)
        with urllib.request.urlopen(url + "api/v1/health") as response:
            assert json.loads(response.read())["status"] == "ok"
        deadline = time.monotonic() + 30
        logged: list[dict[str, object]] = []
        while not any(e["event"] == "warnings.raised" for e in logged):
            assert time.monotonic() < deadline, logged
            logged.append(json.loads(process.stderr.readline()))
    finally:
        process.terminate()
        process.wait(timeout=10)
    rest = [json.loads(line) for line in process.stderr.read().splitlines() if line.strip()]
    raised = [e for e in logged + rest if e["event"] == "warnings.raised"]
    assert raised[0]["level"] == "info" and raised[0]["count"] == sum(raised[0]["kinds"].values())
    assert raised[0]["count"] > 5  # the history's late follow-ups and cases due: one line
    assert not [e for e in logged + rest if e["event"] == "warning.raised"]


def test_case_list_is_paged_with_a_constant_number_of_queries(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cases.db'}"
    made = run_cli("demo", "--db", db, "--history", "20", "--per-day", "30")
    assert made.returncode == 0, made.stderr
    everything = json.loads(run_cli("case", "list", "--json", "--limit", "1000", "--db", db).stdout)
    total = everything["total"]
    assert total > 100 and len(everything["cases"]) == total
    page = run_cli("case", "list", "--db", db)
    assert page.returncode == 0, page.stderr
    lines = page.stdout.splitlines()
    assert len(lines) == 22  # a page of 20, where it is, how to get the next
    assert lines[20] == f"Cases 1–20 of {total} (page 1 of {-(-total // 20)}, newest first)."
    assert lines[21] == "Next page: cloudhelp case list --page 2"
    second = json.loads(run_cli("case", "list", "--json", "--page", "2", "--limit", "7",
                                "--db", db).stdout)  # fmt: skip
    assert [c["number"] for c in second["cases"]] == [
        c["number"] for c in everything["cases"][7:14]
    ]

    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        small, large = [], []
        for limit, seen in (("5", small), ("200", large)):
            statements.clear()
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli.main(["case", "list", "--limit", limit, "--db", db]) == 0
            seen.extend(s for s in statements if "cases" in s or "case_events" in s)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert len(small) == len(large) <= 4, large  # no query per case


async def test_case_show_json_is_what_the_case_page_shows(tmp_path: Path) -> None:
    db = demo_database(tmp_path / "page.db")
    # Every case (not one page: the demo's licence cases were opened weeks ago, behind the
    # campaign's).
    listed = json.loads(run_cli("case", "list", "--json", "--limit", "1000", "--db", db).stdout)[
        "cases"
    ]
    # One case of each status (each command is a process of its own: ~2 s to start).
    one_each = {case["status"]["code"]: case for case in listed}.values()
    assert len(one_each) == 7
    async with running_server(db) as server:
        cookies = {"cloudhelp_session": await server.staff_token("sunhua")}
        for case in one_each:
            shown = json.loads(run_cli("case", "show", case["number"], "--json", "--db", db).stdout)
            async with server.http.get(f"/api/v1/cases/{case['number']}", cookies=cookies) as r:
                page = (await r.json())["case"]
            assert shown == page


def test_demo_script_prints_the_url_first_and_starts_the_server(tmp_path: Path) -> None:
    """scripts/demo.sh as a new user runs it, with a stand-in virtual env whose pip installs
    nothing (the suite's environment already has CloudHelp) and whose ``cloudhelp`` is this tree."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(
        f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n'
    )
    (bin_dir / "cloudhelp").write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m cloudhelp "$@"\n'
    )
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CLOUDHELP_VENV": str(tmp_path / "venv"),
           "CLOUDHELP_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    process = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        assert lines[0].startswith(f"CloudHelp demo: http://127.0.0.1:{port}/ "), lines
        while not lines[-1].startswith("CloudHelp is running"):
            lines.append(process.stdout.readline())
            assert lines[-1], "".join(lines)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert lines[-1] == f"CloudHelp is running: open http://127.0.0.1:{port}/\n"
    assert not any("Start the server with" in line for line in lines)
    links = re.findall(rf"http://127\.0\.0\.1:{port}/kiosk\?enrol=\w{{4}}-\w{{4}}", "".join(lines))
    assert len(links) == 6


# Modules a command may need but ``--help``, ``--version`` and a usage error must not load: the
# suite runs the CLI many times, and ``cloudhelp --help`` took 2.3 s when they were imported.
HEAVY = ("sqlalchemy", "alembic", "aiohttp", "pypinyin", "argon2", "aiortc", "pydantic", "fpdf")


def test_help_and_usage_errors_import_no_command_module() -> None:
    probe = """
import contextlib, io, sys
from cloudhelp import cli
asked = (["--help"], ["--version"], ["case", "list", "--help"], ["demo", "--per-day", "0"])
for argv in asked:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.main(argv)
        except SystemExit:
            pass
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
print(" ".join(sorted(name for name in sys.modules if name.endswith("_commands"))))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    top, commands = done.stdout.splitlines()
    assert not set(HEAVY) & set(top.split()), top
    assert commands == "", commands


def test_every_command_names_a_function_that_runs_it() -> None:
    import argparse

    from cloudhelp.cli.parser import build_parser, command_of

    def commands(parser: argparse.ArgumentParser) -> list[str]:
        found = [parser.get_default("run")] if parser.get_default("run") else []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += commands(sub)
        return found

    targets = commands(build_parser())
    assert len(targets) == len(set(targets)) == 20, targets
    for target in targets:
        run = command_of(argparse.Namespace(run=target))
        assert inspect.iscoroutinefunction(run), target


def test_calendar_set_takes_the_kinds_the_calendar_knows() -> None:
    from cloudhelp.cli.parser import DAY_KINDS
    from cloudhelp.domain.workcalendar import KINDS

    assert DAY_KINDS == KINDS


def test_refusals_name_the_bad_value(tmp_path: Path) -> None:
    """A refused command says which value was wrong, not that "the file was rejected"."""
    db = demo_database(tmp_path / "refusals.db")

    def refused(*args: str, status: int = 1, stdin: str | None = None) -> list[str]:
        result = run_cli(*args, "--db", db, input_text=stdin)
        assert result.returncode == status, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
        return result.stderr.splitlines()

    assert refused("department", "set", "NOPE", "--ring-seconds", "15") == [
        "cloudhelp: There is no department with code 'NOPE'; the departments are "
        "CGJ, JTJ, NYNC, RSJ, SCJG, WJJ, ZJJ."
    ]
    assert refused(
        "staff", "add", "bob", "--name", "鲍勃", "--station", "NOPE", "--departments", "NYNC,XX",
        "--password-stdin", stdin="a-long-password\n",
    ) == [
        "cloudhelp: Staff member 'bob' was rejected and nothing was changed (2 problems):",
        "  - field station: unknown station 'NOPE'",
        "  - field departments: unknown department 'XX'",
    ]  # fmt: skip
    assert refused("demo", "--per-day", "many", status=2)[-1] == (
        "cloudhelp demo: error: argument --per-day: 'many' is not a whole number"
    )
    assert refused("case", "list", "--limit", "0", status=2)[-1] == (
        "cloudhelp case list: error: argument --limit: must be at least 1, not 0"
    )
    assert refused("calendar", "set", "2026-02-30", "holiday", status=2)[-1] == (
        "cloudhelp calendar set: error: argument date: '2026-02-30' is not a date written "
        "YYYY-MM-DD"
    )
    missing = tmp_path / "missing.json"
    assert refused("network", "import", str(missing)) == [
        f"cloudhelp: Cannot read {missing}: No such file or directory."
    ]
    broken = tmp_path / "network.json"
    broken.write_text('{"stations": [', encoding="utf-8")
    assert refused("network", "import", str(broken)) == [
        f"cloudhelp: {broken} was rejected and nothing was changed (1 problem):",
        "  - line 1, column 15: broken JSON (Expecting value)",
    ]
    calendar = tmp_path / "holidays.txt"
    calendar.write_text("2026-10-01,holiday,国庆节\n", encoding="utf-8")
    assert refused("calendar", "import", str(calendar)) == [
        f"cloudhelp: {calendar} was rejected and nothing was changed (1 problem):",
        "  - A calendar file ends in .json or .csv.",
    ]
    nowhere = tmp_path / "no-such-folder" / "catalog.json"
    assert refused("catalog", "export", "-o", str(nowhere)) == [
        f"cloudhelp: Cannot write {nowhere}: No such file or directory."
    ]
