"""The event-loop lag monitor: its window, its ring buffer, and what /api/v1/health says."""

from __future__ import annotations

import asyncio
import time

from aiohttp import ClientSession

from cloudhelp.core.looplag import LoopLagMonitor


def test_the_summary_covers_only_the_window_and_the_buffer_is_bounded() -> None:
    monitor = LoopLagMonitor(capacity=100)
    for n in range(250):  # one sample a second; only the last 100 are kept
        monitor.record(float(n), lag_seconds=n / 1000)
    recent = monitor.summary(window_seconds=10, now=249.5)
    assert recent.samples == 10  # 240 … 249
    assert (recent.p50_ms, recent.max_ms) == (245.0, 249.0)
    kept = monitor.summary(window_seconds=1000, now=249.5)
    assert kept.samples == 100 and kept.max_ms == 249.0
    assert monitor.summary(window_seconds=1, now=1000.0).samples == 0


async def test_a_blocked_loop_shows_in_the_lag() -> None:
    monitor = LoopLagMonitor()
    monitor.start()
    try:
        await asyncio.sleep(0.1)
        time.sleep(0.2)  # noqa: ASYNC251 — the loop is blocked on purpose: the next timer fires late
        await asyncio.sleep(0.05)
    finally:
        await monitor.stop()
    lag = monitor.summary(window_seconds=5)
    assert lag.samples >= 5
    assert lag.max_ms >= 150, lag


async def test_health_reports_the_event_loop_lag(http: ClientSession) -> None:
    await asyncio.sleep(0.2)
    async with http.get("/api/v1/health?window=5") as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok" and body["event_loop"]["window_seconds"] == 5
    assert body["event_loop"]["samples"] >= 5
    async with http.get("/api/v1/health?window=0") as response:
        assert response.status == 400
        assert "window" in (await response.json())["error"]["message"]
