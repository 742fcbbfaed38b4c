"""A kiosk page reloaded in the middle of a call comes back to the same call (issue 10 item 9):
real server, headless Chromium for both pages, real WebRTC."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from cloudhelp.store.models import Ticket
from tests.browserkit import chromium, new_page, snap
from tests.callkit import running_server
from tests.test_browser import call_answered, enrolled_kiosk, signed_in_staff, wait_for_video

pytestmark = pytest.mark.timeout(240)

# Records each text the page's #banner shows, however briefly, in window.__banners.
BANNER_RECORDER = """() => {
  window.__banners = [];
  const banner = document.querySelector("#banner");
  new MutationObserver(() => {
    if (!banner.hidden && banner.textContent) window.__banners.push(banner.textContent);
  }).observe(banner, {attributes: true, childList: true, characterData: true, subtree: true});
}"""


async def test_kiosk_reload_mid_call_resumes_the_call(sqlite_demo_url: str) -> None:
    async with (
        running_server(sqlite_demo_url, grace_seconds=15.0) as server,
        chromium() as browser,
    ):
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")
        await kiosk.fill("#search", "yyblxkz")
        await kiosk.click("#results [data-item=NYNC-002]")
        await kiosk.click("#call-button")
        await wait_for_video(kiosk, "#preview")
        await kiosk.click("#start-call")
        await expect(staff.locator("#ring")).to_be_visible()
        await staff.click("#ring-accept")
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
        assert await wait_for_video(kiosk, "#remote-main") > 0
        assert await wait_for_video(staff, "#remote-main") > 0
        async with server.state.db.read() as s:
            ticket_id = await s.scalar(select(Ticket.id).where(Ticket.status == "connected"))
            assert ticket_id is not None

        # The kiosk page is reloaded: the console says at once that the resident is reconnecting.
        started = time.monotonic()
        await kiosk.reload()
        await expect(staff.locator("#banner")).to_be_visible(timeout=3000)
        told_after = time.monotonic() - started
        await snap(staff, "reload-1-staff-told")

        # The reloaded page resumes its session and the same call; media flow again both ways.
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible(timeout=15_000)
        await staff.wait_for_function(
            "document.querySelector('#remote-main').srcObject?.getVideoTracks()[0]?.readyState"
            " === 'live'",
            timeout=20_000,
        )
        assert await wait_for_video(kiosk, "#remote-main") > 0
        assert await wait_for_video(staff, "#remote-main") > 0
        await expect(staff.locator("#banner")).to_be_hidden(timeout=20_000)
        await snap(kiosk, "reload-2-kiosk-back-in-call")
        await snap(staff, "reload-3-staff-back-in-call")
        assert told_after < 3.5

        # Chat still reaches the other side, and the ticket was never ended.
        await kiosk.fill("#chat-input", "刷新后还能继续")
        await kiosk.click("#chat-form button")
        await expect(staff.locator("#chat li.them").last).to_have_text("刷新后还能继续")
        await asyncio.sleep(0.5)
        async with server.state.db.read() as s:
            row = await s.get(Ticket, ticket_id)
            assert row is not None and row.status == "connected" and row.ended_at is None


async def test_staff_console_reload_mid_call_resumes_the_call(sqlite_demo_url: str) -> None:
    async with (
        running_server(sqlite_demo_url, grace_seconds=15.0) as server,
        chromium() as browser,
    ):
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")
        await kiosk.fill("#search", "yyblxkz")
        await kiosk.click("#results [data-item=NYNC-002]")
        await kiosk.click("#call-button")
        await wait_for_video(kiosk, "#preview")
        await kiosk.click("#start-call")
        await expect(staff.locator("#ring")).to_be_visible()
        await staff.click("#ring-accept")
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
        assert await wait_for_video(kiosk, "#remote-main") > 0

        # The kiosk's banner may show only for a moment (the console's page is back within a
        # second on a quiet machine): every text it shows is recorded from now on.
        await kiosk.evaluate(BANNER_RECORDER)
        await staff.reload()
        await kiosk.wait_for_function(
            "window.__banners.some((text) => text.includes('工作人员'))", timeout=10_000
        )
        await snap(kiosk, "reload-4-kiosk-told-staff-reconnecting")
        await expect(staff.locator("#call")).to_be_visible(timeout=15_000)
        assert await wait_for_video(staff, "#remote-main") > 0
        await kiosk.wait_for_function(
            "document.querySelector('#remote-main').srcObject?.getVideoTracks()[0]?.readyState"
            " === 'live'",
            timeout=20_000,
        )
        assert await wait_for_video(kiosk, "#remote-main") > 0
        await expect(kiosk.locator("#banner")).to_be_hidden(timeout=20_000)
        await snap(staff, "reload-5-staff-back-in-call")
        await staff.fill("#chat-input", "页面刷新了，我们继续")
        await staff.click("#chat-form button")
        await expect(kiosk.locator("#chat li.them").last).to_have_text("页面刷新了，我们继续")
        async with server.state.db.read() as s:
            row = await s.scalar(select(Ticket).where(Ticket.status == "connected"))
            assert row is not None and row.ended_at is None


async def test_a_server_restart_mid_call_ends_the_call_on_both_pages(
    sqlite_demo_url: str, tmp_path
) -> None:
    """The server stops mid-call and starts again on the same port and database: both pages
    reconnect, learn their sessions are gone, and leave the call saying why — no frozen call
    screen whose 挂断 does nothing. The ticket was closed by the restart (queue.recover)."""
    async with chromium() as browser:
        async with running_server(sqlite_demo_url, data_dir=tmp_path) as server:
            port = server.server.port
            kiosk = await new_page(browser, server.base_url)
            staff = await new_page(browser, server.base_url)
            await enrolled_kiosk(server, kiosk)
            await signed_in_staff(server, staff, "zhaogang")
            await call_answered(kiosk, staff)
        async with running_server(sqlite_demo_url, port=port, data_dir=tmp_path) as server:
            await expect(kiosk.locator("[data-screen=done]")).to_be_visible(timeout=30_000)
            await expect(kiosk.locator("#done-reason")).to_contain_text("通话已结束")
            await expect(kiosk.locator("#done-reason")).to_contain_text("服务重启")
            await snap(kiosk, "restart-1-kiosk-call-ended")
            await expect(staff.locator("#banner")).to_contain_text("原通话已结束", timeout=30_000)
            await expect(staff.locator("#call")).to_be_hidden()
            await expect(staff.locator("#state")).to_have_text("暂离")  # a new session starts away
            await snap(staff, "restart-2-console-call-ended")
            async with server.state.db.read() as s:
                ticket = await s.scalar(select(Ticket).order_by(Ticket.id.desc()))
            assert ticket is not None and ticket.end_reason == "server_restart"
            # Both go on: the console takes calls again and the resident's new call rings.
            await staff.click("#toggle-state")
            await expect(staff.locator("#state")).to_have_text("可接听")
            await kiosk.click("#done-home")
            await kiosk.click("#hot [data-item=NYNC-002]")
            await kiosk.click("#call-button")
            await wait_for_video(kiosk, "#preview")
            await kiosk.click("#start-call")
            await expect(staff.locator("#ring")).to_be_visible(timeout=20_000)
