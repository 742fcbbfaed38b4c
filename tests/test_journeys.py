"""Journeys of residents, staff and supervisors through the pages, on the demo's own data.

Each test serves its own copy of what `cloudhelp demo --history 2` made (scripts/demo.sh's
command; tests/journeykit.py) with `cloudhelp serve`, and walks one story in headless Chromium
the way people do; every step is photographed into test-artifacts/journey-*.png. English text
on a zh-CN page and axe-core's critical or serious WCAG 2.2 AA violations found on the way are
reported at the end of each story.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from cloudhelp.devtools.demo import DEMO_CASES
from tests.browserkit import wait_for_video, watch
from tests.journeykit import (
    DEMO_PASSWORD,
    DemoServer,
    Journey,
    browser,
    demo_server,
    enrol_kiosk,
    open_page,
    photo_of_a_document,
    sign_in_staff,
)

TICKET_NUMBER = re.compile(r"^[A-Z]\d{3,}$")
FISHING_RENEWAL = "NYNC-002"  # 渔业捕捞许可证换发（延续）, handled by 赵刚 (zhaogang)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DemoServer]:
    """A fresh demo per journey: each leaves calls, tickets and sessions behind."""
    with demo_server(tmp_path / "demo") as running:
        yield running


async def resident_calls(journey: Journey, kiosk: Page, staff: Page) -> str:
    """Search by pinyin initials, open the item, check devices, call; staff are rung."""
    async with journey.step("resident searches yyblx", "kiosk"):
        await kiosk.fill("#search", "yyblx")
        await expect(kiosk.locator(f"#results [data-item={FISHING_RENEWAL}]")).to_be_visible()
        await journey.check("kiosk", "search")
    async with journey.step("resident opens the item", "kiosk"):
        await kiosk.click(f"#results [data-item={FISHING_RENEWAL}]")
        await expect(kiosk.locator("#item-name")).to_have_text("渔业捕捞许可证换发（延续）")
        await journey.check("kiosk", "item")
    async with journey.step("resident checks camera and microphone", "kiosk"):
        await kiosk.click("#call-button")
        await wait_for_video(kiosk, "#preview")
        # The check says which item the call is about (one tap back could change it).
        chosen = kiosk.locator("#check-item")
        await expect(chosen).to_contain_text("您要办理的事项")
        await expect(chosen.locator("strong")).to_have_text("渔业捕捞许可证换发（延续）")
        await journey.check("kiosk", "device-check")
    async with journey.step("resident starts the call and gets a number"):
        await kiosk.click("#start-call")
        await expect(kiosk.locator("#ticket-number")).to_have_text(TICKET_NUMBER)
        number = (await kiosk.locator("#ticket-number").text_content() or "").strip()
        await expect(staff.locator("#ring")).to_be_visible()
        await expect(staff.locator("#ring-ticket")).to_have_text(number)
        await journey.check("kiosk", "waiting")
        await journey.check("staff", "ringing")
    return number


async def staff_accepts(journey: Journey, kiosk: Page, staff: Page) -> None:
    async with journey.step("staff accept; each sees the other"):
        await staff.click("#ring-accept")
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
        await expect(staff.locator("#call")).to_be_visible()
        assert await wait_for_video(kiosk, "#remote-main") > 0
        assert await wait_for_video(staff, "#remote-main") > 0
        await journey.check("kiosk", "call")
        await journey.check("staff", "call")


async def chat_both_ways(kiosk: Page, staff: Page, from_kiosk: str, from_staff: str) -> None:
    await kiosk.fill("#chat-input", from_kiosk)
    await kiosk.click("#chat-form button")
    await expect(staff.locator("#chat li", has_text=from_kiosk)).to_have_count(1)
    await staff.fill("#chat-input", from_staff)
    await staff.click("#chat-form button")
    await expect(kiosk.locator("#chat li", has_text=from_staff)).to_have_count(1)


async def case_of(server: DemoServer, status: str, applicant: str) -> dict:
    """A case in a state, found by its applicant in `cloudhelp case list --json`, page by page."""
    page, pages = 1, 1
    while page <= pages:
        body = json.loads(
            await server.cli("case", "list", "--status", status, "--json", "--page", str(page))
        )
        for case in body["cases"]:
            if case["applicant"]["name"] == applicant:
                return case
        pages = int(body.get("pages", 1))
        page += 1
    raise AssertionError(f"no {status} case of {applicant} in `cloudhelp case list`")


async def test_journey_1_resident_first_call_to_rating(server: DemoServer) -> None:
    """Enrol link → search → call → accept → chat, file, screen → case, notice printed → rate."""
    journey = Journey("1-resident")
    async with browser() as chromium:
        kiosk = await open_page(chromium, server)
        staff = await open_page(chromium, server, 1600, 900)
        journey.pages = {"kiosk": kiosk, "staff": staff}
        async with journey.step("kiosk opens the printed enrolment link", "kiosk"):
            await enrol_kiosk(kiosk, server)
            await journey.check("kiosk", "home")
        async with journey.step("zhaogang signs in and is available", "staff"):
            await sign_in_staff(staff, "zhaogang")
            await journey.check("staff", "available")
        number = await resident_calls(journey, kiosk, staff)
        await staff_accepts(journey, kiosk, staff)

        async with journey.step("chat both ways"):
            await chat_both_ways(kiosk, staff, "我的捕捞许可证快到期了", "好的，请把材料拍照发过来")
        async with journey.step("resident sends a photo; staff keep it"):
            photo = await photo_of_a_document(kiosk, "渔业船舶检验证书")
            await kiosk.set_input_files(
                "#file-input",
                files=[{"name": "船舶检验证书.jpg", "mimeType": "image/jpeg", "buffer": photo}],
            )
            await expect(staff.locator("#files li[data-saved='1']")).to_have_count(
                1, timeout=30_000
            )
            await expect(kiosk.locator("#files-sent li.ok")).to_have_count(1)
        async with journey.step("staff share their screen; the kiosk shows it large"):
            await staff.click("#share-screen")
            await expect(kiosk.locator("#screen-label")).to_be_visible()
            assert await wait_for_video(kiosk, "#remote-main", 1000) >= 1000
            await journey.check("kiosk", "staff-screen")
            await staff.click("#share-screen")
            await expect(kiosk.locator("#screen-label")).to_be_hidden()

        async with journey.step("staff open the case and check the materials", "staff"):
            await staff.fill("#applicant-name", "刘海生")
            await staff.fill("#applicant-phone", "13812345678")
            await staff.fill("#applicant-id", "210211196503121012")
            await staff.click("#case-form button")
            await expect(staff.locator("#case-number")).to_have_text(re.compile(r"\d{6}-\d{8}-"))
            rows = staff.locator("#checklist li")
            await expect(rows).to_have_count(7)
            for position in range(1, 8):
                check = "needs_correction" if position == 4 else "ok"
                await staff.click(f"#checklist li[data-position='{position}'] [data-check={check}]")
            await staff.fill(
                "#checklist li[data-position='4'] .typed-reason", "船检证书未年检，请先年检"
            )
            await journey.check("staff", "checklist")
        case_number = (await staff.locator("#case-number").text_content() or "").strip()

        async with journey.step("staff issue the notice; the kiosk shows it"):
            await staff.click("#verdict-correction")
            await expect(kiosk.locator("#notice-overlay")).to_be_visible()
            notice = kiosk.frame_locator("#notice-frame")
            await expect(notice.locator(".items li")).to_have_count(1)
            await expect(notice.locator("body")).to_contain_text(case_number)
            await expect(notice.locator("body")).to_contain_text("赵刚")  # 告知人 by name
            await expect(notice.locator("body")).not_to_contain_text("zhaogang")
            await journey.check("kiosk", "notice")
        async with journey.step("resident prints the notice", "kiosk"):
            await kiosk.evaluate(
                """() => { const w = document.getElementById('notice-frame').contentWindow;
                           w.__printed = 0; w.print = () => { w.__printed += 1; }; }"""
            )
            await kiosk.click("#notice-print")
            printed = await kiosk.evaluate(
                "document.getElementById('notice-frame').contentWindow.__printed"
            )
            assert printed == 1, "the print button did not print the notice"
            await kiosk.click("#notice-close")
            await expect(kiosk.locator("#notice-overlay")).to_be_hidden()

        async with journey.step("resident hangs up; the done screen shows both numbers"):
            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            done = kiosk.locator("[data-screen=done]")
            await expect(done).to_be_visible()
            await expect(done).to_contain_text(number)
            await expect(done).to_contain_text(case_number)
            await expect(staff.locator("#wrapup")).to_be_visible()
            # A notice was issued: the wrap-up does not default to 已解决.
            await expect(staff.locator("#outcome")).not_to_have_value("resolved")
            await journey.check("kiosk", "done")
            await journey.check("staff", "wrapup")
        async with journey.step("resident rates 非常满意", "kiosk"):
            await kiosk.click("#rating-levels [data-level='5']")
            await expect(kiosk.locator("#rating-thanks")).to_be_visible()
        async with journey.step("staff finish wrap-up; nothing of the last resident left", "staff"):
            await staff.click("#wrapup button")
            await expect(staff.locator("#state")).to_have_attribute("data-state", "available")
            for leftover in ("#chat li", "#files li", "#checklist li"):
                await expect(staff.locator(leftover)).to_have_count(0)
            await journey.check("staff", "available-after-call")
        async with journey.step("the case page keeps the session: file and rating", "staff"):
            await staff.goto(f"/cases/{case_number}")
            record = staff.locator("body")
            await expect(record).to_contain_text(number)
            await expect(record).to_contain_text("船舶检验证书.jpg")
            await expect(record).to_contain_text("非常满意")
            # The marks read at a glance: 合格 green, 需补正 red (not all one grey).
            marks = staff.locator("ol.materials .badge")
            fine, to_correct = marks.filter(has_text="合格"), marks.filter(has_text="需补正")
            await expect(fine.first).to_have_css("color", "rgb(26, 127, 55)")
            await expect(to_correct.first).to_have_css("color", "rgb(176, 0, 32)")
            await journey.check("staff", "case-page")
    journey.assert_no_findings()


async def test_journey_2_correction_round_two_to_accepted(server: DemoServer) -> None:
    """The demo's 待补正 case: by case number → the same reviewer → round 2 → pass → accepted."""
    journey = Journey("2-correction")
    # 刘梅 handles fishing licences too (the operator's CLI): the ring must still go to the
    # reviewer of round 1, 赵刚, although 刘梅 has been waiting longer.
    owed, _ = await asyncio.gather(
        case_of(server, "correction_needed", "王德福"),
        server.cli(
            "staff", "add", "liumei", "--name", "刘梅", "--station", "GJZ-HALL",
            "--departments", "ZJJ,CGJ,NYNC", "--password-stdin", stdin=DEMO_PASSWORD + "\n",
        ),
    )  # fmt: skip
    case_number = owed["number"]
    async with browser() as chromium:
        kiosk = await open_page(chromium, server)
        staff = await open_page(chromium, server, 1600, 900)
        other = await open_page(chromium, server, 1280, 720)
        journey.pages = {"kiosk": kiosk, "staff": staff, "other-staff": other}
        await enrol_kiosk(kiosk, server)
        async with journey.step("liumei, then zhaogang, the reviewer, sign in", "staff"):
            await sign_in_staff(other, "liumei")
            await sign_in_staff(staff, "zhaogang")
        async with journey.step("resident enters the case number and phone digits", "kiosk"):
            await kiosk.fill("#case-query", case_number)
            # The resident's own mobile number (the demo's), whose last four they type.
            phone = next(p for _, name, p, *_ in DEMO_CASES if name == "王德福")
            await kiosk.fill("#case-last4", phone[-4:])
            await kiosk.click("#correction-form button")
            await wait_for_video(kiosk, "#preview")
            await journey.check("kiosk", "correction-device-check")
        async with journey.step("resident calls; the reviewer is rung for 补正"):
            await kiosk.click("#start-call")
            await expect(kiosk.locator("#ticket-number")).to_have_text(TICKET_NUMBER)
            await expect(staff.locator("#ring")).to_be_visible()
            await expect(staff.locator("#ring")).to_contain_text("补正")
            await expect(staff.locator("#ring")).to_contain_text(case_number)
            await expect(other.locator("#ring")).to_be_hidden()
            await journey.check("staff", "correction-ring")
        await staff_accepts(journey, kiosk, staff)
        async with journey.step("round 2 opens beside the video with round-1 marks", "staff"):
            await expect(staff.locator("#case-number")).to_have_text(case_number)
            await expect(staff.locator("#verdict-passed")).to_be_visible()
            rows = staff.locator("#checklist li")
            await expect(rows.first).to_be_visible()
            await expect(staff.locator("#case-panel")).to_contain_text("申请人未签字")
            await journey.check("staff", "round-2")
        async with journey.step("the reviewer checks every material and passes it", "staff"):
            for index in range(await rows.count()):
                await rows.nth(index).locator("[data-check=ok]").click()
            await staff.click("#verdict-passed")
            await expect(staff.locator("#case-status")).to_have_text("待受理")
        async with journey.step("resident hangs up and rates"):
            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
            await kiosk.click("#rating-levels [data-level='5']")
            await expect(kiosk.locator("#rating-thanks")).to_be_visible()
            await expect(staff.locator("#wrapup")).to_be_visible()
            await staff.click("#wrapup button")
        async with journey.step("the case page accepts it: 已受理", "staff"):
            await staff.goto(f"/cases/{case_number}")
            await expect(staff.locator("h1")).to_contain_text("待受理")
            await journey.check("staff", "case-page-awaiting")
            await staff.select_option("#move select[name=to]", "accepted")
            await staff.click("#move button")
            await expect(staff.locator("h1")).to_contain_text("已受理")
            await journey.check("staff", "case-page-accepted")
    journey.assert_no_findings()


async def test_journey_3_slow_bad_rating_opens_follow_up(server: DemoServer) -> None:
    """A bad rating whose reasons take 40 s is kept; sunhua closes its follow-up in the page."""
    journey = Journey("3-bad-rating")
    async with browser() as chromium:
        kiosk = await open_page(chromium, server)
        staff = await open_page(chromium, server, 1600, 900)
        journey.pages = {"kiosk": kiosk, "staff": staff}
        await kiosk.clock.install()  # the page's timers follow our clock from here on
        await enrol_kiosk(kiosk, server)
        await sign_in_staff(staff, "zhaogang")
        number = await resident_calls(journey, kiosk, staff)
        await staff_accepts(journey, kiosk, staff)
        async with journey.step("resident hangs up and picks 不满意", "kiosk"):
            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
            await kiosk.click("#rating-levels [data-level='2']")
            await expect(kiosk.locator("#rating-reasons")).to_be_visible()
            await journey.check("kiosk", "bad-rating-reasons")
        async with journey.step("resident takes 40 s over the reasons", "kiosk"):
            reasons = kiosk.locator("#rating-reasons .chip")
            chosen = [(await reasons.nth(i).text_content() or "").strip() for i in (0, 1)]
            for second in range(40):
                await kiosk.clock.run_for(1000)
                if second == 12:
                    await reasons.nth(0).click()
                if second == 33:
                    await reasons.nth(1).click()
            await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
            await expect(kiosk.locator("#rating-send")).to_be_visible()
        async with journey.step("resident sends the rating; it is saved", "kiosk"):
            await kiosk.click("#rating-send")
            await expect(kiosk.locator("#rating-thanks")).to_be_visible()
            await staff.select_option("#outcome", "other")  # no case: nothing to propose
            await staff.click("#wrapup button")

        supervisor = await open_page(chromium, server, 1920, 1080)
        journey.pages["supervisor"] = supervisor
        async with journey.step("sunhua finds the follow-up of the bad rating", "supervisor"):
            await sign_in_staff(supervisor, "sunhua", available=False)
            await supervisor.goto("/board")
            await supervisor.get_by_role("link", name=re.compile("回访")).first.click()
            cards = supervisor.locator("[data-follow-up]")
            await expect(cards.first).to_be_visible()
            # The history's follow-ups came first: the newest one is this resident's.
            ids = [await c.get_attribute("data-follow-up") for c in await cards.all()]
            newest = max(int(i or 0) for i in ids)
            card = supervisor.locator(f"[data-follow-up='{newest}']")
            await expect(card).to_contain_text(number)
            await expect(card).to_contain_text("不满意")
            for reason in chosen:
                await expect(card).to_contain_text(reason)
            await card.scroll_into_view_if_needed()
            await journey.check("supervisor", "follow-ups")
        async with journey.step("sunhua closes it with a note", "supervisor"):
            await card.get_by_role("textbox").fill("已电话回访，居民表示理解")
            await card.get_by_role("button").first.click()
            await supervisor.locator("#show-closed").check()
            await expect(card).to_contain_text("孙华")
            await expect(card).to_contain_text("已电话回访，居民表示理解")
            await card.scroll_into_view_if_needed()
            await journey.check("supervisor", "follow-up-closed")
    journey.assert_no_findings()


async def test_journey_4_board_beside_a_call_keeps_both(server: DemoServer) -> None:
    """A supervisor who answers calls opens /board mid-call: console, call and board stay up."""
    journey = Journey("4-board-and-console")
    # The district lets its supervisor answer fishing-licence calls (the operator's CLI).
    await server.cli(
        "staff", "add", "sunhua", "--name", "孙华", "--station", "GJZ-HALL",
        "--role", "supervisor", "--departments", "NYNC", "--password-stdin",
        stdin=DEMO_PASSWORD + "\n",
    )  # fmt: skip
    async with browser() as chromium:
        kiosk = await open_page(chromium, server)
        console = await open_page(chromium, server, 1600, 900)
        journey.pages = {"kiosk": kiosk, "staff": console}
        await enrol_kiosk(kiosk, server)
        async with journey.step("sunhua signs in at the console", "staff"):
            await sign_in_staff(console, "sunhua")
        await resident_calls(journey, kiosk, console)
        await staff_accepts(journey, kiosk, console)
        async with journey.step("sunhua opens /board in a second tab"):
            board = await console.context.new_page()
            watch(board)
            await board.set_viewport_size({"width": 1920, "height": 1080})
            journey.pages["board"] = board
            await board.goto("/board")
            await expect(board.locator("#wall")).to_be_visible()
            await expect(board.locator("#calls li")).to_have_count(1)
            await expect(board.locator("#calls li")).to_contain_text("孙华")
            await journey.check("board", "wall")
        async with journey.step("the console and the call are still up"):
            await console.wait_for_timeout(2000)  # a takeover closes the console within ms
            await expect(console.locator("#console")).to_be_visible()
            await expect(console.locator("#call")).to_be_visible()
            await expect(console.locator("#state")).to_have_attribute("data-state", "in_call")
            await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
            await chat_both_ways(kiosk, console, "还在吗", "在的，请继续")
        async with journey.step("the call ends; the board follows it live"):
            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            await expect(console.locator("#wrapup")).to_be_visible()
            await expect(board.locator("#calls li")).to_have_count(0)
            await expect(board.locator("#wall")).to_be_visible()
    journey.assert_no_findings()
