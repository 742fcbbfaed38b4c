"""The kiosk page on its own screens: ratings, idle reset, devices, enrolment, waits, layout.

Real headless Chromium against the real server; the staff side is a protocol client
(cloudhelp.peer.SignalingClient) where a second browser would add nothing. Time on the kiosk
page is driven with Playwright's clock, never slept through.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from cloudhelp.models import FollowUp, Rating
from cloudhelp.peer import SignalingClient
from tests.browserkit import chromium, new_page, snap
from tests.callkit import CallServer, running_server
from tests.test_browser import enrolled_kiosk

pytestmark = pytest.mark.timeout(180)

# Records every camera/microphone track the page opens, so a test can see that all were stopped.
TRACK_RECORDER = """
(() => {
  window.__tracks = [];
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    window.__tracks.push(...stream.getTracks());
    return stream;
  };
})();
"""


async def clocked_kiosk(browser: Browser, server: CallServer, **viewport: int) -> Page:
    """An enrolled kiosk page whose timers run on Playwright's clock (it also flows by itself)."""
    page = await new_page(browser, server.base_url)
    if viewport:
        await page.set_viewport_size({"width": viewport["width"], "height": viewport["height"]})
    await page.clock.install()
    await page.add_init_script(TRACK_RECORDER)
    await enrolled_kiosk(server, page)
    return page


async def call_from_kiosk(kiosk: Page, staff: SignalingClient, item: str = "NYNC-002") -> int:
    """The resident calls about ``item``; ``staff`` answers. Returns the ticket id."""
    await kiosk.click(f"#hot [data-item={item}]")
    await kiosk.click("#call-button")
    await expect(kiosk.locator("#start-call")).to_be_enabled()
    await kiosk.click("#start-call")
    ring = await staff.expect("ring")
    await staff.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
    await staff.expect("joined")
    await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
    return int(ring["ticket"]["id"])


async def rating_of(server: CallServer, ticket_id: int) -> tuple[Rating | None, FollowUp | None]:
    async with server.state.db.read() as session:
        rating = await session.scalar(select(Rating).where(Rating.ticket_id == ticket_id))
        follow_up = (
            await session.scalar(select(FollowUp).where(FollowUp.rating_id == rating.id))
            if rating
            else None
        )
        return rating, follow_up


async def wait_for_rating(server: CallServer, ticket_id: int, kiosk: Page) -> Rating:
    for _ in range(50):
        rating, _ = await rating_of(server, ticket_id)
        if rating is not None:
            return rating
        await kiosk.wait_for_timeout(100)
    raise AssertionError("no rating was stored")


async def test_slow_bad_rating_keeps_its_level_and_opens_a_follow_up(
    sqlite_demo_url: str,
) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        kiosk = await clocked_kiosk(browser, server, width=1366, height=768)
        staff = await server.staff("zhaogang")
        ticket = await call_from_kiosk(kiosk, staff)
        await staff.send({"type": "call.hangup"})
        await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
        await expect(kiosk.locator("#banner")).to_be_hidden()

        # 不满意, then 40 s of ticking reasons, a few seconds apart: the page waits.
        await kiosk.click("#rating-levels [data-level='2']")
        reasons = ["等待时间长", "解答不清楚", "视频或声音不清楚", "解答不清楚", "其他"]
        for reason in reasons:
            await kiosk.clock.run_for(8_000)
            await kiosk.click(f"#rating-reasons .chip >> text={reason}")
        await kiosk.clock.run_for(8_000)  # 48 s since the level was chosen
        await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
        await expect(kiosk.locator("#idle-overlay")).to_be_hidden()
        await expect(kiosk.locator("#rating-send")).to_be_in_viewport()
        await snap(kiosk, "kiosk-rating-1-slow-reasons")
        assert (await rating_of(server, ticket))[0] is None  # nothing sent yet

        # The resident walks away without pressing 提交: "还在吗？", then home — and the
        # chosen level goes out with the reasons ticked.
        await kiosk.clock.run_for(31_000)
        await expect(kiosk.locator("#idle-overlay")).to_be_visible()
        await snap(kiosk, "kiosk-rating-2-still-there")
        await kiosk.clock.run_for(21_000)
        await expect(kiosk.locator("[data-screen=home]")).to_be_visible()
        rating = await wait_for_rating(server, ticket, kiosk)
        assert rating.level == 2 and rating.outcome == "rated"
        assert sorted(rating.reasons) == ["其他", "等待时间长", "视频或声音不清楚"]
        assert (await rating_of(server, ticket))[1] is not None  # the follow-up is open


async def test_not_rated_is_recorded_as_such(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        kiosk = await clocked_kiosk(browser, server)
        staff = await server.staff("zhaogang")
        # One resident walks away from the rating ...
        first = await call_from_kiosk(kiosk, staff)
        await staff.send({"type": "call.hangup"})
        await staff.send({"type": "wrapup.done", "outcome": "resolved"})
        await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
        await kiosk.clock.run_for(60_000)
        await expect(kiosk.locator("[data-screen=home]")).to_be_visible()
        walked_away = await wait_for_rating(server, first, kiosk)
        assert walked_away.level is None and walked_away.outcome == "no_answer"
        # ... the next one presses 跳过.
        second = await call_from_kiosk(kiosk, staff)
        await staff.send({"type": "call.hangup"})
        await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
        await kiosk.click("#rating-skip")
        await expect(kiosk.locator("[data-screen=home]")).to_be_visible()
        skipped = await wait_for_rating(server, second, kiosk)
        assert skipped.level is None and skipped.outcome == "declined"
        assert (await rating_of(server, second))[1] is None
