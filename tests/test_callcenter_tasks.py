"""The call centre's background work: guarded loops keep running after a failure and log its
traceback, back off while failing, and are cancelled and awaited on stop; the board's figures
are rebuilt by a loop, never by a push."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

import pytest
from sqlalchemy import delete, func, select

from cloudhelp.callcenter.tasks import TaskSet, Timers, run_guarded
from cloudhelp.core.clock import today
from cloudhelp.core.logs import JsonLineFormatter
from cloudhelp.store.db import Database
from cloudhelp.store.models import daily_stats
from tests.callkit import running_server
from tests.test_call_core import take_ticket


async def test_a_loop_whose_body_raises_keeps_running_and_logs_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[float] = []
    four = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def body() -> None:  # fails twice, then works
        calls.append(loop.time())
        if len(calls) <= 2:
            raise RuntimeError(f"boom {len(calls)}")
        if len(calls) == 4:
            four.set()

    caplog.set_level(logging.ERROR, logger="cloudhelp")
    task = asyncio.create_task(run_guarded("test.check", body, 0.05))
    try:
        await asyncio.wait_for(four.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    failures = [r for r in caplog.records if r.getMessage() == "test.check_failed"]
    assert len(failures) == 2
    lines = [json.loads(JsonLineFormatter().format(r)) for r in failures]
    assert lines[0]["level"] == "error" and lines[0]["failures"] == 1
    assert lines[0]["error"].startswith("Traceback (most recent call last)")
    assert "RuntimeError: boom 1" in lines[0]["error"] and "in body" in lines[0]["error"]
    assert "RuntimeError: boom 2" in lines[1]["error"] and lines[1]["failures"] == 2
    # Backing off: 2 × then 4 × the interval after one and two failures in a row; back to
    # the interval once the body works again.
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2
    assert gaps[2] < gaps[1]


async def test_backing_off_stops_at_the_cap() -> None:
    calls: list[float] = []
    enough = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def body() -> None:
        calls.append(loop.time())
        if len(calls) == 7:
            enough.set()
        raise ValueError("always")

    task = asyncio.create_task(run_guarded("test.capped", body, 0.01, max_backoff=0.03))
    try:
        await asyncio.wait_for(enough.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert all(gap >= 0.02 for gap in gaps)  # 0.02, then the cap (0.03) …
    assert max(gaps) < 0.5  # … where doubling would have reached 0.64


async def test_stop_cancels_and_awaits_loops_and_lets_tasks_finish() -> None:
    tasks = TaskSet(closing=lambda: False)
    inside, cleaned_up, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_body() -> None:
        inside.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # a rollback takes a moment
            cleaned_up.set()

    async def one_off() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    loop_task = tasks.loop("test.slow", slow_body, 0.0)
    tasks.spawn(one_off())
    timers = Timers(tasks)
    fired: list[int] = []

    async def fire() -> None:
        fired.append(1)

    timers.arm("ring", 1, 3600, fire)
    await asyncio.wait_for(inside.wait(), 5)
    assert len(tasks) == 1 and len(timers) == 1
    timers.cancel_all()
    await tasks.stop()
    assert loop_task.cancelled() and cleaned_up.is_set()  # awaited, not only cancelled
    assert finished.is_set() and len(tasks) == 0 and fired == [] and len(timers) == 0


async def test_a_timer_runs_its_work_as_a_tracked_task() -> None:
    tasks = TaskSet(closing=lambda: False)
    timers = Timers(tasks)
    done = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.01)
        done.set()

    timers.arm("wrapup", 7, 0.01, work)
    timers.arm("wrapup", 7, 0.02, work)  # replaces the first: one run only
    await asyncio.sleep(0.025)
    assert ("wrapup", 7) not in timers and len(tasks) == 1
    await asyncio.wait_for(done.wait(), 5)
    await tasks.stop()
    assert len(tasks) == 0


async def test_the_call_centre_awaits_its_loops_on_stop(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, warning_check_seconds=3600) as server:
        center = server.state.callcenter
        loops = center._tasks.loops
        names = sorted(task.get_name() for task in loops)
        assert names == [
            "calls.ended_elsewhere",
            "deadlines.sweep",
            "kiosks.revocation_check",
            "rollups.refresh",
            "sessions.orphans",
            "warnings.check",
        ]
        assert not any(task.done() for task in loops)
    assert all(task.cancelled() for task in loops)
    assert center._tasks.loops == ()


async def _rows_of_today(database: Database) -> int:
    async with database.read() as s:
        count = select(func.count()).select_from(daily_stats).where(daily_stats.c.day == today())
        return int(await s.scalar(count) or 0)


async def test_a_board_push_only_reads_the_rollups_the_loop_rebuilds_them(
    sqlite_demo_url: str,
) -> None:
    async with running_server(sqlite_demo_url) as server:
        database, center = server.state.db, server.state.callcenter
        async with database.write() as s:
            await s.execute(delete(daily_stats).where(daily_stats.c.day == today()))
        kiosk = await server.kiosk()
        await take_ticket(kiosk, "NYNC-002")
        # A board snapshot (what every push sends) writes nothing, even with today's rows gone.
        frame = await center.pushes.board_frame()
        assert frame["type"] == "board" and await _rows_of_today(database) == 0
        # A supervisor opens the board: the rollups loop rebuilds today's rows at once and the
        # board is pushed again with today's figures.
        supervisor = await server.staff("sunhua", available=False)
        await supervisor.send({"type": "board.watch"})
        board = await supervisor.expect_where("board", lambda b: b["today"]["tickets"] >= 1)
        assert board["departments"] and await _rows_of_today(database) > 0
