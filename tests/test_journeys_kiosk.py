"""Kiosk journeys on the demo's data: idle reset, no devices, reload mid-call, used link, layout.

Started as scripts/demo.sh starts the demo (tests/journeykit.py); every step is photographed into
test-artifacts/journey-5*.png and journey-6*.png.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, expect

from tests.browserkit import ARTIFACTS, wait_for_video
from tests.journeykit import (
    DemoServer,
    Journey,
    browser,
    demo_server,
    enrol_kiosk,
    open_page,
    outside_viewport,
    sign_in_staff,
)
from tests.test_journeys import (
    FISHING_RENEWAL,
    TICKET_NUMBER,
    chat_both_ways,
    resident_calls,
    staff_accepts,
)

VIEWPORTS = [(1366, 768), (1920, 1080), (1080, 1920)]
IDLE_LIMIT_SECONDS = 600  # the longest idle timeout a kiosk may reasonably be set to


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DemoServer]:
    """A fresh demo for each journey with a call: calls leave tickets and sessions behind."""
    with demo_server(tmp_path / "demo") as running:
        yield running


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """One demo for the journeys that call nobody (each enrols its own kiosk)."""
    with demo_server(tmp_path_factory.mktemp("demo-quiet")) as running:
        yield running


async def open_item(kiosk: Page) -> None:
    await kiosk.fill("#search", "yyblx")
    await kiosk.click(f"#results [data-item={FISHING_RENEWAL}]")
    await expect(kiosk.locator("[data-screen=item]")).to_be_visible()


async def test_journey_5a_idle_kiosk_resets_itself(quiet_server: DemoServer) -> None:
    """Left on the device check, the kiosk asks 还在吗？, then goes home with everything reset."""
    journey = Journey("5a-idle-reset")
    async with browser() as chromium:
        kiosk = await open_page(chromium, quiet_server)
        journey.pages = {"kiosk": kiosk}
        await kiosk.clock.install()
        await enrol_kiosk(kiosk, quiet_server)
        async with journey.step("resident picks English and large text, opens the camera"):
            await kiosk.click("#lang")
            await expect(kiosk.locator("html")).to_have_attribute("lang", "en")
            await kiosk.click("#elderly")
            await open_item(kiosk)
            await kiosk.click("#call-button")
            await wait_for_video(kiosk, "#preview")
            await kiosk.evaluate(
                "window.__tracks = document.getElementById('preview').srcObject.getTracks()"
            )
        async with journey.step("the resident walks away: 还在吗？ is asked"):
            prompt = kiosk.locator("#idle-overlay")
            for _ in range(IDLE_LIMIT_SECONDS):
                await kiosk.clock.run_for(1000)
                if await prompt.is_visible():
                    break
            await expect(prompt).to_be_visible()
        async with journey.step("nobody answers: the kiosk goes home"):
            home = kiosk.locator("[data-screen=home]")
            for _ in range(IDLE_LIMIT_SECONDS):
                await kiosk.clock.run_for(1000)
                if await home.is_visible():
                    break
            await expect(home).to_be_visible()
            await expect(prompt).to_be_hidden()
        async with journey.step("camera off, language and text size back, visit cleared"):
            live = await kiosk.evaluate(
                "window.__tracks.filter((t) => t.readyState !== 'ended').map((t) => t.kind)"
            )
            assert live == [], f"tracks still live after the reset: {live}"
            await expect(kiosk.locator("html")).to_have_attribute("lang", "zh-CN")
            await expect(kiosk.locator("body")).not_to_have_class(re.compile(r"\belderly\b"))
            await kiosk.reload()
            await expect(home).to_be_visible()
            await expect(kiosk.locator("html")).to_have_attribute("lang", "zh-CN")
            await journey.check("kiosk", "home-after-reset")
    journey.assert_no_findings()


async def test_journey_5b_kiosk_without_camera_or_microphone(server: DemoServer) -> None:
    """No devices: said at the top, no silent call. Microphone only: staff see a badge, chat."""
    journey = Journey("5b-no-devices")
    async with browser(devices=False) as bare, browser(allow_all=False) as chromium:
        kiosk = await open_page(bare, server)
        journey.pages = {"kiosk": kiosk}
        await enrol_kiosk(kiosk, server)
        async with journey.step("no camera, no microphone: the top says what to do"):
            await open_item(kiosk)
            await kiosk.click("#call-button")
            problem = kiosk.locator("#device-problem")
            await expect(problem).to_be_visible()
            await expect(problem).to_contain_text("工作人员")  # ask the station's attendant
            await expect(problem).not_to_contain_text("地址栏")  # a kiosk has no address bar
            for target, what in [
                (problem, "the device problem"),
                (kiosk.locator("[data-screen=check] h1"), "the device check title"),
            ]:
                outside = await outside_viewport(kiosk, target, what)
                assert outside is None, outside
            start = kiosk.locator("#start-call")
            assert not await start.is_visible() or await start.is_disabled(), (
                "开始呼叫 is offered although there is neither camera nor microphone"
            )
            await journey.check("kiosk", "no-devices")

        voice = await open_page(chromium, server)  # a kiosk whose camera does not work
        await voice.context.grant_permissions(["microphone"], origin=server.base_url)
        staff = await open_page(chromium, server, 1600, 900)
        await staff.context.grant_permissions(["camera", "microphone"], origin=server.base_url)
        journey.pages = {"kiosk": kiosk, "voice-kiosk": voice, "staff": staff}
        await enrol_kiosk(voice, server)
        await sign_in_staff(staff, "zhaogang")
        async with journey.step("microphone only: a voice call is offered", "voice-kiosk"):
            await open_item(voice)
            await voice.click("#call-button")
            await expect(voice.locator("#device-problem")).to_be_visible()
            await expect(voice.locator("#start-call")).to_be_enabled()
            await journey.check("voice-kiosk", "microphone-only")
            await voice.click("#start-call")
            await expect(voice.locator("#ticket-number")).to_have_text(TICKET_NUMBER)
            await expect(staff.locator("#ring")).to_be_visible()
        async with journey.step("staff see the badge and chat is offered"):
            await staff.click("#ring-accept")
            await expect(voice.locator("[data-screen=call]")).to_be_visible()
            await expect(staff.locator("#console")).to_contain_text("无摄像头")
            await expect(staff.locator("#chat-input")).to_be_visible()
            await chat_both_ways(voice, staff, "我这边摄像头坏了", "没关系，我们打字沟通")
            await journey.check("staff", "call-without-camera")
    journey.assert_no_findings()


async def test_journey_5c_kiosk_reload_mid_call_resumes(server: DemoServer) -> None:
    """A reload within the grace time resumes the same call; media and chat come back."""
    journey = Journey("5c-reload")
    async with browser() as chromium:
        kiosk = await open_page(chromium, server)
        staff = await open_page(chromium, server, 1600, 900)
        journey.pages = {"kiosk": kiosk, "staff": staff}
        await enrol_kiosk(kiosk, server)
        await sign_in_staff(staff, "zhaogang")
        number = await resident_calls(journey, kiosk, staff)
        await staff_accepts(journey, kiosk, staff)
        async with journey.step("the kiosk page reloads mid-call; staff are told at once"):
            # The reloaded page's script is held back 4 s, so the gap can be seen at the console.
            release = asyncio.Event()

            async def hold(route: Route) -> None:
                await release.wait()
                await route.continue_()

            await kiosk.route("**/static/js/kiosk.js*", hold)
            reloading = asyncio.create_task(kiosk.reload())
            try:
                told = staff.locator("#banner")  # e.g. 视频连接不稳定，正在恢复……
                await expect(told).to_be_visible(timeout=4000)
                await expect(told).not_to_have_text("")
                await staff.screenshot(
                    path=str(ARTIFACTS / "journey-5c-reload-01b-staff-told-kiosk-reconnecting.png")
                )
            finally:
                release.set()
                await reloading
                await kiosk.unroute("**/static/js/kiosk.js*")
            await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
            await expect(staff.locator("#call")).to_be_visible()
            await expect(staff.locator("#state")).to_have_attribute("data-state", "in_call")
        async with journey.step("video and chat come back on both sides"):
            assert await wait_for_video(staff, "#remote-main") > 0
            assert await wait_for_video(kiosk, "#remote-main") > 0
            await chat_both_ways(kiosk, staff, "刚才页面刷新了", "看到您了，继续")
            await expect(staff.locator("#banner")).to_be_hidden()
            await journey.check("kiosk", "resumed-call")
        async with journey.step("hang-up ends the same session"):
            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            await expect(kiosk.locator("[data-screen=done]")).to_contain_text(number)
            await expect(kiosk.locator("#banner")).to_be_hidden()
    journey.assert_no_findings()


async def test_journey_5d_used_enrolment_link_is_explained(quiet_server: DemoServer) -> None:
    """A used code in /kiosk?enrol=CODE explains itself instead of a blank page."""
    journey = Journey("5d-used-link")
    async with browser() as chromium:
        first = await open_page(chromium, quiet_server)
        await enrol_kiosk(first, quiet_server)
        used = quiet_server.used_codes[-1]
        await first.context.close()
        kiosk = await open_page(chromium, quiet_server)
        journey.pages = {"kiosk": kiosk}
        async with journey.step("the used link is opened on another kiosk", "kiosk"):
            await kiosk.goto(f"/kiosk?enrol={used}")
            await expect(kiosk.locator("[data-screen=enrol]")).to_be_visible()
            await expect(kiosk.locator("#enrol-error")).to_be_visible()
            await expect(kiosk.locator("#enrol-error")).not_to_have_text("")
            await journey.check("kiosk", "used-link")
    journey.assert_no_findings()


async def test_journey_6_primary_actions_in_view_and_no_english(server: DemoServer) -> None:
    """At 1366×768, 1920×1080 and 1080×1920 each kiosk screen's main action is in view."""
    journey = Journey("6-layout")
    problems: list[str] = []

    async def in_view(page: Page, screen: str, *selectors: str) -> None:
        for width, height in VIEWPORTS:
            await page.set_viewport_size({"width": width, "height": height})
            await page.wait_for_timeout(150)  # let the layout settle
            for selector in selectors:
                problem = await outside_viewport(
                    page, page.locator(selector), f"{screen} {selector}"
                )
                if problem:
                    problems.append(problem)
            await page.screenshot(
                path=str(ARTIFACTS / f"journey-6-layout-{screen}-{width}x{height}.png")
            )
            await journey.check("kiosk", f"{screen}-{width}x{height}", axe=False)
        await page.set_viewport_size({"width": 1366, "height": 768})

    async with browser() as chromium:
        kiosk = await open_page(chromium, server)
        staff = await open_page(chromium, server, 1600, 900)
        journey.pages = {"kiosk": kiosk, "staff": staff}
        async with journey.step("enrolment screen", "kiosk"):
            await kiosk.goto("/kiosk")
            await expect(kiosk.locator("[data-screen=enrol]")).to_be_visible()
            await in_view(kiosk, "enrol", "#enrol-code", "#enrol-form button")
        async with journey.step("home screen", "kiosk"):
            await enrol_kiosk(kiosk, server)
            await in_view(kiosk, "home", "#search")
        async with journey.step("item screen: 视频求助", "kiosk"):
            await open_item(kiosk)
            await in_view(kiosk, "item", "#call-button")
        async with journey.step("device check: title and 开始呼叫", "kiosk"):
            await kiosk.click("#call-button")
            await wait_for_video(kiosk, "#preview")
            await in_view(kiosk, "check", "[data-screen=check] h1", "#start-call", "#preview")
        await sign_in_staff(staff, "zhaogang", available=False)
        async with journey.step("waiting screen: number and 取消", "staff"):
            await kiosk.click("#start-call")
            await expect(kiosk.locator("#ticket-number")).to_have_text(TICKET_NUMBER)
            await in_view(kiosk, "waiting", "#ticket-number", "#cancel-ticket")
        async with journey.step("call screen: 挂断", "staff"):
            await staff.click("#toggle-state")
            await staff.click("#ring-accept")
            await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
            await in_view(kiosk, "call", "#hangup", "#chat-input")
        async with journey.step("done screen: rating", "staff"):
            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
            await in_view(kiosk, "done", "#rating-levels", "[data-screen=done] [data-go=home]")
    assert not problems, "primary actions outside the viewport:\n" + "\n".join(problems)
    journey.assert_no_findings()


async def test_journey_5e_papers_sent_back_say_where_they_are(quiet_server: DemoServer) -> None:
    """README step 4's 我的材料/证照 for 赵永强 (phone ending 0005): his certificate waits at the
    station with its pickup code; his originals, not collected in time, are back at the hall,
    said as such (it read "now at the hall, will be sent to the hall")."""
    journey = Journey("5e-papers")
    async with browser() as chromium:
        staff = await open_page(chromium, quiet_server)
        await sign_in_staff(staff, "zhaogang", available=False)
        found = await (await staff.request.get("/api/v1/cases?phone=13840000005")).json()
        [number] = [c["number"] for c in found["cases"]]
        kiosk = await open_page(chromium, quiet_server)
        journey.pages = {"kiosk": kiosk}
        await enrol_kiosk(kiosk, quiet_server)
        async with journey.step("赵永强 asks where his papers are", "kiosk"):
            await kiosk.fill("#papers-number", number)
            await kiosk.fill("#papers-last4", "0005")
            await kiosk.locator("#papers-form button").click()
            papers = kiosk.locator("#papers-list li")
            await expect(papers.filter(has_text="待取件").first).to_contain_text("取件码")
            # His certificate has waited on the shelf past the pickup limit (16 days of 14): the
            # kiosk says so as the station's shelf does (it said only 待取件).
            await expect(papers.filter(has_text="已超过领取期限")).to_have_count(1)
            await expect(papers.filter(has_text="已超过领取期限")).to_contain_text(
                "道路运输证（副本）"
            )
            returned = papers.filter(has_text="已退回大厅")
            await expect(returned).to_contain_text("未按时领取，已退回")
            await expect(returned).not_to_contain_text("将送到")
            await journey.check("kiosk", "papers")
    journey.assert_no_findings()
