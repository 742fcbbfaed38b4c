"""A server restarted in the middle of a call: both pages leave the call saying why (issue 10
item 9): real server, headless Chromium for both pages, real WebRTC. A page reloaded mid-call
is tested in test_kiosk_browser (either page) and test_staff_console."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import select

from cloudhelp.store.models import Ticket
from tests.browserkit import chromium, new_page, snap, wait_for_video
from tests.callkit import running_server
from tests.test_browser import call_answered, enrolled_kiosk, signed_in_staff


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
