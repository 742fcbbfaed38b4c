"""The staff console in real headless Chromium: a correction session's round 2 to 已受理, and
what the console says and clears between residents."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Page, Route, expect
from sqlalchemy import select, update

from cloudhelp.core import i18n
from cloudhelp.store.models import Case, Department, Ticket
from tests.browserkit import ARTIFACTS, chromium, new_page, snap, wait_for_video
from tests.callkit import RELOAD_GRACE_SECONDS, CallServer, running_server
from tests.journeykit import axe_violations, english_in
from tests.test_browser import call_answered, enrolled_kiosk, signed_in_staff
from tests.test_cases import ID_NUMBER
from tests.test_correction_session import LAST4, case_needing_correction
from tests.test_peer_data_browser import a_png


async def staff_answers(kiosk: Page, staff: Page) -> None:
    await staff.click("#ring-accept")
    await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
    await wait_for_video(staff, "#remote-main")


async def english_on(page: Page) -> list[str]:
    return english_in(await page.locator("body").inner_text())


# Where the resident's video and the case panel's buttons are on screen, and how far the page
# and the side column (which scrolls inside itself on a desk's window) are scrolled.
WHERE_ON_SCREEN = """() => {
  const video = document.getElementById("remote-main").getBoundingClientRect();
  const actions = document.getElementById("case-actions").getBoundingClientRect();
  return { videoTop: Math.round(video.top), videoBottom: Math.round(video.bottom),
           actionsTop: Math.round(actions.top), scrollY: Math.round(scrollY),
           sideScroll: Math.round(document.getElementById("side-scroll").scrollTop),
           height: innerHeight };
}"""
SCROLLED = "() => [scrollY, document.getElementById('side-scroll').scrollTop]"


async def side_to_top(page: Page) -> None:
    """Scroll the side column back to the case's number, as a reviewer does (at once, ending
    any smooth scroll still under way)."""
    await page.locator("#side-scroll").evaluate("s => s.scrollTo({ top: 0, behavior: 'instant' })")
    await page.wait_for_function("document.getElementById('side-scroll').scrollTop === 0")


async def press_in_place(
    page: Page, button: str, status: str, *, page_bottom: bool = False
) -> dict[str, int]:
    """Press a case button scrolled into view at the bottom of the side column, as a reviewer
    at the end of a long checklist does (``page_bottom``: the column scrolled as far down as
    it goes with the button still whole, as after reading the chat below); the case reaches
    ``status``. The video is in view before and after, and neither it nor the buttons' box has
    moved on screen (where they were)."""
    await page.locator(button).evaluate("b => b.scrollIntoView({ block: 'end' })")
    if page_bottom:
        await page.locator(button).evaluate(
            """b => { const side = document.getElementById("side-scroll");
                      side.scrollTo(0, side.scrollHeight);
                      b.scrollIntoView({ block: "nearest" }); }"""
        )
    before = await page.evaluate(WHERE_ON_SCREEN)
    # The side column is scrolled (the checklist is long); the page itself is not.
    assert before["sideScroll"] > 0 and before["scrollY"] == 0, before
    await page.click(button)
    await expect(page.locator("#case-status")).to_have_text(status)
    after = await page.evaluate(WHERE_ON_SCREEN)
    assert 0 <= after["videoTop"] and after["videoBottom"] <= after["height"], (before, after)
    for key in ("videoTop", "videoBottom", "actionsTop"):
        assert abs(after[key] - before[key]) <= 1, (key, before, after)
    return after


async def test_correction_round_two_passes_and_is_accepted_at_the_console(
    sqlite_demo_url: str,
) -> None:
    async with (
        running_server(sqlite_demo_url, prefer_reviewer_seconds=60) as server,
        chromium() as browser,
    ):
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, _ = await case_needing_correction(server, cookies)
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await staff.set_viewport_size({"width": 1366, "height": 768})
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")

        # The resident comes back with the case number (and the phone's last four digits); the
        # reviewer's ring says 补正 and names the case before it is answered.
        await kiosk.fill("#case-query", number)
        await kiosk.fill("#case-last4", LAST4)
        await kiosk.click("#correction-form button")
        await wait_for_video(kiosk, "#preview")
        await kiosk.click("#start-call")
        ring = staff.locator("#ring")
        await expect(ring).to_be_visible()
        await expect(staff.locator("#ring-title")).to_have_text("补正会话来电")
        await expect(staff.locator("#ring-case")).to_contain_text(number)
        await expect(staff.locator("#ring-case")).to_contain_text("补正")
        await snap(staff, "console-1-correction-ring")
        # It pulses, unless the system asks for less motion: then it stands still, highlighted.
        pulse = "e => [getComputedStyle(e).animationName, getComputedStyle(e).boxShadow]"
        assert (await ring.evaluate(pulse))[0] == "pulse"
        await staff.emulate_media(reduced_motion="reduce")
        name, shadow = await ring.evaluate(pulse)
        assert name == "none" and shadow != "none", (name, shadow)
        await staff.emulate_media(reduced_motion="no-preference")
        await staff_answers(kiosk, staff)

        # Round 2 opens beside the video: fresh marks, round 1's shown for reference.
        await expect(staff.locator("#case-number")).to_have_text(number)
        await expect(staff.locator("#case-status")).to_have_text("预审中")
        await expect(staff.locator("#round-info")).to_contain_text("第 2 轮预审")
        rows = staff.locator("#checklist li")
        await expect(rows).to_have_count(7)
        fourth = staff.locator("#checklist li[data-position='4']")
        await expect(fourth.locator(".previous")).to_have_text("上轮：需补正 · 船检证书未年检")
        await expect(staff.locator("#checklist .check.chosen")).to_have_count(0)
        await expect(staff.locator("#verdict-passed")).to_be_visible()
        await snap(staff, "console-2-round-2")
        # The resident writes while the reviewer is at the checklist (the chat is below it, out
        # of view): nothing moves, the line is said above the chat's input, and pressing it goes
        # to the chat.
        at = await staff.evaluate(SCROLLED)
        await kiosk.fill("#chat-input", "请问还要带什么材料？")
        await kiosk.press("#chat-input", "Enter")
        unseen = staff.locator("#chat-unseen")
        await expect(unseen).to_have_text("居民发来：请问还要带什么材料？（点此查看）")
        await expect(unseen).to_be_in_viewport(ratio=1)
        assert await staff.evaluate(SCROLLED) == at
        await snap(staff, "console-2-chat-unseen")
        await unseen.click()
        await expect(staff.locator("#chat li.them").last).to_be_in_viewport()
        await expect(unseen).to_be_hidden()
        # ... and above the chat's input, not under it.
        await staff.wait_for_function(
            """() => { const line = document.querySelector('#chat li.them:last-child');
                 const input = document.getElementById('chat-form').getBoundingClientRect();
                 return line && line.getBoundingClientRect().bottom <= input.top + 1; }"""
        )
        await snap(staff, "console-2-chat-seen")
        # Pressing the notice put the keyboard in the chat's input, ready for the answer.
        await expect(staff.locator("#chat-input")).to_be_focused()
        # An answer sent from there leaves the column where the reviewer is (the checklist):
        # it jumped to the chat at each reply.
        await side_to_top(staff)
        await staff.fill("#chat-input", "请稍等，我看一下")
        await staff.press("#chat-input", "Enter")
        await expect(staff.locator("#chat li.me").last).to_have_text("请稍等，我看一下")
        assert await staff.evaluate(SCROLLED) == [0, 0]
        # A line scrolled to by hand (the wheel) is seen too: the notice goes.
        await kiosk.fill("#chat-input", "好的")
        await kiosk.press("#chat-input", "Enter")
        await expect(unseen).to_contain_text("居民发来：好的")
        await staff.locator("#side-scroll").evaluate("s => s.scrollTo(0, s.scrollHeight)")
        await expect(unseen).to_be_hidden()
        await side_to_top(staff)
        # So is one answered without looking: a reply in the chat means it was read.
        await kiosk.fill("#chat-input", "谢谢")
        await kiosk.press("#chat-input", "Enter")
        await expect(unseen).to_contain_text("居民发来：谢谢")
        await staff.fill("#chat-input", "不客气")
        await staff.press("#chat-input", "Enter")
        await expect(unseen).to_be_hidden()
        # So is a photo the resident sends: the files are below the checklist too.
        await kiosk.click("#photo")
        await kiosk.click("#photo-send")
        await expect(unseen).to_contain_text("居民发来文件：")
        await expect(unseen).to_be_in_viewport(ratio=1)
        # ... above the chat's input, never over 发送 (a CI run found it covering the button).
        note = await unseen.bounding_box()
        send = await staff.locator("#chat-form button").bounding_box()
        assert note and send and note["y"] + note["height"] <= send["y"], (note, send)
        await snap(staff, "console-2-file-unseen")
        await unseen.click()
        await expect(staff.locator("#files li").last).to_be_in_viewport()
        await expect(unseen).to_be_hidden()
        await side_to_top(staff)
        assert await axe_violations(staff, "console-round-2") == []
        assert await english_on(staff) == []

        # 预审通过 with materials unmarked names every required one still unmarked and marks
        # its row (nothing is sent); marking a row takes its mark off.
        required = staff.locator("#checklist li[data-requirement=required]")
        names = await required.locator("strong").all_inner_texts()
        assert names
        await staff.click("#verdict-passed")
        error = staff.locator("#verdict-error")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text(f"以下 {len(names)} 项材料")
        for name in names:
            await expect(error).to_contain_text(f"「{name}」")
        await expect(staff.locator("#checklist li.unmarked")).to_have_count(len(names))
        await expect(staff.locator("#case-status")).to_have_text("预审中")
        await snap(staff, "console-2b-pass-with-unmarked")

        # Last round's passed materials are kept with one click; the corrected one is checked.
        # Neither verdict is the filled button before every required material is judged.
        correction, passed = staff.locator("#verdict-correction"), staff.locator("#verdict-passed")
        await expect(correction).not_to_have_class(re.compile(r"\bprimary\b"))
        await expect(passed).not_to_have_class(re.compile(r"\bprimary\b"))
        await staff.click("#carry-ok")
        await expect(staff.locator("#checklist .check.chosen")).to_have_count(6)
        await fourth.locator("[data-check=needs_correction]").click()  # the filled one follows
        await expect(correction).to_have_class(re.compile(r"\bprimary\b"))
        await expect(passed).not_to_have_class(re.compile(r"\bprimary\b"))
        await fourth.locator("[data-check=ok]").click()
        await expect(staff.locator("#checklist li.unmarked")).to_have_count(0)
        await expect(passed).to_have_class(re.compile(r"\bprimary\b"))
        await expect(correction).not_to_have_class(re.compile(r"\bprimary\b"))

        # On a 1366×768 laptop the buttons are at the end of a long checklist, down the page:
        # the video stays in view beside it, and a verdict moves neither it nor the buttons
        # (the checklist, now a record, shrinks above them). Each step says what it came to,
        # where the buttons were; the focus goes there from the button that went.
        result = staff.locator("#case-result")
        await expect(result).to_be_hidden()
        await snap(staff, "console-2c-before-pass")
        await press_in_place(staff, "#verdict-passed", "待受理")
        await expect(result).to_have_text("预审通过，待受理。")
        await expect(staff.locator("#acceptance")).to_be_visible()
        # The round's "please check again" is done; the last round's marks stay as a record.
        await expect(staff.locator("#round-info")).to_be_hidden()
        await expect(fourth.locator(".previous")).to_be_visible()
        # The checklist is a record now: the marks not chosen step back, none can be pressed.
        unchosen = staff.locator("#checklist .chip.check:not(.chosen)").first
        await expect(unchosen).to_be_disabled()
        await expect(unchosen).to_have_css("opacity", "0.35")
        await expect(staff.locator("#checklist .chip.check.chosen").first).to_have_css(
            "opacity", "1"
        )
        await snap(staff, "console-2d-passed")
        # 不予受理 beside 受理 is outlined, not filled: refusing must not look like the next step.
        await expect(staff.locator("#case-reject")).to_have_css(
            "background-color", "rgb(255, 255, 255)"
        )
        # At the page's very end: the buttons give way to a shorter line, and a page that got
        # shorter would be pulled down by the browser (34 px, seen in a walk).
        await press_in_place(staff, "#case-accept", "已受理", page_bottom=True)
        await expect(result).to_have_text(
            re.compile(
                r"^已受理（\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}）。"
                r"承诺办结日期：\d{4}年\d{1,2}月\d{1,2}日。$"
            )
        )
        await expect(result).to_be_focused()
        await expect(staff.locator("#acceptance")).to_be_hidden()
        await snap(staff, "console-3-accepted")
        # On a small window (the page scrolls, the input pinned to its bottom) the reviewer
        # answers with the chat out of view: the line sent comes into view above the input (it
        # stayed under it, seen in a walk). (On a desk's window the column stays: above.)
        await staff.set_viewport_size({"width": 1024, "height": 768})
        await staff.evaluate("window.scrollTo(0, 0)")
        await staff.fill("#chat-input", "已受理，请留意短信通知")
        await staff.press("#chat-input", "Enter")
        await staff.wait_for_function(
            """() => { const line = document.querySelector('#chat li.me:last-child');
                 const input = document.getElementById('chat-form').getBoundingClientRect();
                 const box = line && line.getBoundingClientRect();
                 return box && box.top >= 0 && box.bottom <= input.top + 1; }"""
        )
        await staff.set_viewport_size({"width": 1366, "height": 768})
        async with server.state.db.read() as session:
            case = await session.scalar(select(Case).where(Case.number == number))
            assert case is not None and case.status == "accepted" and case.rounds == 2

        # Wrap-up proposes what happened (已解决 for an accepted case); once done, nothing
        # of this resident stays on the console.
        await kiosk.fill("#chat-input", "材料都带齐了")
        await kiosk.click("#chat-form button")
        await expect(staff.locator("#chat li.them")).to_have_count(4)  # and the three earlier
        await expect(unseen).to_be_visible()  # the chat is below, out of view
        await kiosk.click("#hangup")
        await kiosk.click("#hangup-confirm")
        await expect(staff.locator("#wrapup")).to_be_visible()
        await expect(unseen).to_be_hidden()  # the line is in the chat; the wrap-up uncovered
        # Opened with the page scrolled down to the case's buttons: the wrap-up comes into view
        # (its title, countdown and outcome were above the screen).
        await expect(staff.locator("#wrapup h2")).to_be_in_viewport()
        await expect(staff.locator("#outcome")).to_be_in_viewport()
        assert await staff.locator("#outcome").input_value() == "resolved"
        # The chat stays to read; its input goes with the call (typed there, nothing was sent).
        await expect(staff.locator("#chat li.them")).to_have_count(4)
        await expect(staff.locator("#chat-input")).to_be_hidden()
        await snap(staff, "console-4-wrapup")
        # In a laptop browser's window (1366×650) the whole form is in view, 完成整理 too.
        await staff.set_viewport_size({"width": 1366, "height": 650})
        await expect(staff.locator("#wrapup button")).to_be_in_viewport(ratio=1)
        await snap(staff, "console-4-wrapup-650")
        await staff.click("#wrapup button")
        await expect(staff.locator("#state")).to_have_text("可接听")
        for leftover in ("#checklist li", "#chat li", "#files li"):
            await expect(staff.locator(leftover)).to_have_count(0)
        await expect(staff.locator("#case-panel")).to_be_hidden()
        await snap(staff, "console-5-available-again")
        assert await axe_violations(staff, "console-available") == []

        # The case page tells the whole story in words, not codes.
        await staff.goto(f"/cases/{number}")
        await expect(staff.locator("h1")).to_contain_text("已受理")
        sessions = staff.locator("article.session")
        await expect(sessions).to_have_count(1)
        await expect(sessions).to_contain_text("开始新一轮预审")
        await expect(sessions).to_contain_text("居民挂断")
        await expect(sessions).to_contain_text("已解决")
        await expect(staff.locator(".timeline")).to_contain_text("赵刚")
        await expect(staff.locator(".timeline")).not_to_contain_text("zhaogang")
        assert await english_on(staff) == []
        assert await axe_violations(staff, "case-page-round-2") == []
        await staff.screenshot(path=str(ARTIFACTS / "console-10-case-page.png"), full_page=True)
        # In English the marks are English too (round 1's 需补正 stayed Chinese).
        await staff.click("a.lang")
        await expect(staff.locator("html")).to_have_attribute("lang", "en")
        await expect(staff.locator(".badge.check-needs_correction").first).to_have_text(
            "Needs correction"
        )
        await expect(staff.locator(".badge.check-ok").first).to_have_text("OK")
        await staff.click("a.lang")
        await expect(staff.locator("html")).to_have_attribute("lang", "zh-CN")


async def ring_unanswered_twice(server: CallServer) -> None:
    """Rings of 1 s: two missed in a row set the staff member away."""
    async with server.state.db.write() as session:
        await session.execute(
            update(Department)
            .where(Department.code == "NYNC")
            .values(ring_seconds=1, max_missed_offers=2)
        )
    resident = await server.kiosk("TL-01", "DLW-TL")
    await resident.send({"type": "ticket.take", "item": "NYNC-002"})
    await resident.expect("ticket")


async def test_console_first_call_dialogs_outcome_and_auto_pause(sqlite_demo_url: str) -> None:
    # The console reloads mid-call below.
    async with (
        running_server(sqlite_demo_url, grace_seconds=RELOAD_GRACE_SECONDS) as server,
        chromium() as browser,
    ):
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await staff.set_viewport_size({"width": 1600, "height": 900})
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")
        await kiosk.click("#hot [data-item=NYNC-002]")
        await kiosk.click("#call-button")
        await wait_for_video(kiosk, "#preview")
        await kiosk.click("#start-call")
        # Usually rings within a second; once in CI (quiet machine) not within 5 s — a first
        # offer possibly lost and re-offered later: under investigation (session note), so the
        # wait is long enough for a re-offer while a call that never rings still fails.
        await expect(staff.locator("#ring")).to_be_visible(timeout=25_000)
        await expect(staff.locator("#ring-title")).to_have_text("新的视频求助")
        await expect(staff.locator("#ring-case")).to_be_hidden()
        # The countdown says what it counts; the idle hint is gone while a call rings.
        countdown = staff.locator("#ring-countdown")
        await expect(countdown).to_have_text(re.compile(r"^请在 \d+ 秒内接听$"))
        await expect(staff.locator("#idle")).to_be_hidden()
        await snap(staff, "console-0-ringing")
        await staff_answers(kiosk, staff)

        # The case form says what is wrong, in Chinese, field by field: every wrong field at
        # once (one a press, a walk found), the first focused.
        error = staff.locator("#case-error")
        await staff.click("#case-form button")
        await expect(error).to_have_text(
            "请填写申请人姓名（最多 50 个字）。手机号应为 11 位数字，以 1 开头。"
            "身份证号不正确，请核对（包括最后一位校验码）。"
        )
        await expect(staff.locator("#applicant-name")).to_be_focused()
        invalid = staff.locator("#case-form [aria-invalid=true]")
        await expect(invalid).to_have_count(3)
        await staff.fill("#applicant-name", "刘海生")
        await staff.fill("#applicant-id", ID_NUMBER)
        await staff.fill("#applicant-phone", "2381234567")
        await staff.click("#case-form button")
        await expect(error).to_have_text("手机号应为 11 位数字，以 1 开头。")
        await expect(invalid).to_have_count(1)
        await staff.fill("#applicant-phone", "13812345678")
        await staff.fill("#applicant-id", ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1"))
        await staff.click("#case-form button")
        await expect(error).to_have_text("身份证号不正确，请核对（包括最后一位校验码）。")
        await snap(staff, "console-6-case-form-error")
        await staff.fill("#applicant-id", ID_NUMBER)
        await staff.click("#case-form button")
        await expect(staff.locator("#case-status")).to_have_text("预审中")

        # 不予受理 asks for its reason in the page; an empty reason is refused there.
        await staff.click("#verdict-reject")
        dialog = staff.locator("#reject-dialog")
        await expect(dialog).to_be_visible()
        await staff.click("#reject-confirm")
        await expect(staff.locator("#reject-error")).to_have_text("不予受理必须填写理由。")
        await snap(staff, "console-7-reject-dialog")
        await dialog.locator("button[value=cancel]").click()
        await expect(dialog).to_be_hidden()

        # A notice with a 需补正 mark and no reason: the material is named and its reason field
        # focused; a reason clears the message.
        verdict_error = staff.locator("#verdict-error")
        first = staff.locator("#checklist li[data-position='1']")
        name = await first.locator("strong").inner_text()
        await first.locator("[data-check=needs_correction]").click()
        await staff.click("#verdict-correction")
        await expect(verdict_error).to_have_text(
            f"「{name}」标为需补正，请选择或填写需补正的原因。"
        )
        await expect(first.locator("select.reason, input.typed-reason").first).to_be_focused()
        await snap(staff, "console-7b-notice-without-reason")
        await first.locator("input.typed-reason").fill("照片不清晰")
        await expect(verdict_error).to_be_hidden()
        # A refusal about the marks goes once the marks change (here: all of them marked).
        await staff.click("#verdict-passed")
        await expect(verdict_error).to_be_visible()
        await first.locator("[data-check=ok]").click()
        await expect(verdict_error).to_be_hidden()

        # Passing with a material still to correct: the catalog's words, not the server's.
        for position in range(1, 8):
            check = "missing" if position == 2 else "ok"
            await staff.click(f"#checklist li[data-position='{position}'] [data-check={check}]")
        await staff.click("#verdict-passed")
        await expect(staff.locator("#verdict-error")).to_have_text(
            "还有材料需要补正，请出具一次性告知书。"
        )
        await staff.click("#verdict-correction")
        await expect(staff.locator("#case-status")).to_have_text("待补正")
        await expect(staff.locator("#notice-link")).to_be_visible()
        await expect(staff.locator("#case-result")).to_contain_text("已出具第 1 次一次性告知书")
        await staff.locator("#case-result").scroll_into_view_if_needed()
        await snap(staff, "console-7c-notice-issued")
        number = await staff.locator("#case-number").inner_text()

        # A reloaded console resumes the call and finds the session's case again (no second
        # case is opened by mistake).
        await staff.reload()
        await expect(staff.locator("#call")).to_be_visible()
        await expect(staff.locator("#case-number")).to_have_text(number)
        await expect(staff.locator("#case-status")).to_have_text("待补正")
        await expect(staff.locator("#case-form")).to_be_hidden()

        # Transfer shows who can take the call, and asks before it ends anything.
        await staff.click("#transfer")
        transfer = staff.locator("#transfer-dialog")
        await expect(transfer).to_be_visible()
        await expect(transfer.locator(".transfer-target")).not_to_have_count(0)
        await expect(transfer).to_contain_text("当前部门")
        await expect(transfer).to_contain_text("无人在岗")
        await staff.click("#transfer-confirm")
        await expect(staff.locator("#transfer-error")).to_have_text("请先选择一个部门。")
        await snap(staff, "console-8-transfer-dialog")
        await transfer.locator("button[value=cancel]").click()
        await expect(staff.locator("#call")).to_be_visible()
        assert await axe_violations(staff, "console-first-call") == []

        # 挂断 asks first, as the kiosk does: 继续通话 is the default, and Escape keeps the call;
        # with the keyboard alone the question is asked again and answered.
        hangup = staff.locator("#hangup")
        confirm = staff.locator("#hangup-overlay")
        await hangup.click()
        await expect(confirm).to_be_visible()
        await expect(confirm).to_contain_text("结束通话吗？")
        await expect(staff.locator("#hangup-keep")).to_be_focused()
        await snap(staff, "console-8b-hangup-asks-first")
        assert await axe_violations(staff, "console-hangup-confirm") == []
        await staff.keyboard.press("Escape")
        await expect(confirm).to_be_hidden()
        await expect(hangup).to_be_focused()
        await expect(staff.locator("#state")).to_have_text("通话中")
        await staff.keyboard.press("Enter")
        await expect(staff.locator("#hangup-keep")).to_be_focused()
        await staff.keyboard.press("Enter")  # 继续通话
        await expect(confirm).to_be_hidden()
        await expect(staff.locator("#call")).to_be_visible()
        await staff.keyboard.press("Enter")
        await staff.keyboard.press("Tab")
        await expect(staff.locator("#hangup-confirm")).to_be_focused()
        await staff.keyboard.press("Enter")  # 结束通话

        # After a notice the wrap-up proposes 需补正材料, not 已解决.
        await expect(staff.locator("#wrapup")).to_be_visible()
        await expect(confirm).to_be_hidden()
        assert await staff.locator("#outcome").input_value() == "needs_correction"
        await staff.click("#wrapup button")
        await expect(staff.locator("#state")).to_have_text("可接听")
        await expect(staff.locator("#case-panel")).to_be_hidden()
        async with server.state.db.read() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.case_id.is_not(None)))
            assert ticket is not None and ticket.outcome == "needs_correction"

        # Two rings left unanswered: the console says plainly it was set away, and how back.
        await ring_unanswered_twice(server)
        paused = staff.locator("#autopaused")
        await expect(paused).to_be_visible()
        await expect(paused).to_contain_text("连续 2 次未接听")
        await expect(staff.locator("#state")).to_have_text("暂离")
        await snap(staff, "console-9-auto-paused")
        await staff.click("#resume")
        await expect(staff.locator("#state")).not_to_have_text("暂离")
        await expect(paused).to_be_hidden()


# What the console holds of the call in progress, captured apart from the page's bookkeeping:
# the call and its file channel, the resident's tracks, the screen shared, the files' object URLs.
HOLD_CALL = """() => {
  const call = window.cloudhelp.call;
  const remote = call.pc.getReceivers().map((r) => r.track);
  const screen = call.transceivers[2].sender.track;
  const urls = [...document.querySelectorAll("#files img, #files a[download]")]
    .map((el) => el.src || el.href);
  window.__held = { call, files: window.cloudhelp.visit?.files, remote, screen, urls };
  return { remote: remote.length, screen: Boolean(screen), urls };
}"""
# Which held tracks are still live and which held object URLs still load.
STILL_HELD = """async () => {
  const held = window.__held;
  const live = [...held.remote, held.screen].filter((t) => t.readyState !== "ended")
    .map((t) => `${t.kind} ${t.label}`);
  const loading = [];
  for (const url of held.urls) {
    try { await fetch(url); loading.push(url); } catch { /* revoked */ }
  }
  return { live, loading };
}"""
# Late events from the ended call's objects (a chat line, a file that finished arriving).
LATE_EVENTS = """async () => {
  const { call, files } = window.__held;
  call.dispatchEvent(new CustomEvent("app", { detail: { kind: "chat", text: "迟到的消息" } }));
  const blob = new Blob(["late"], { type: "image/png" });
  files.dispatchEvent(new CustomEvent("file", { detail: {
    id: "late", name: "迟到的文件.png", type: "image/png", size: 4, sha256: "0", blob, ok: true,
  } }));
  await new Promise((resolve) => setTimeout(resolve, 200));
}"""


async def test_console_lets_go_of_the_call_when_it_ends(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await staff.set_viewport_size({"width": 1600, "height": 900})
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")
        await call_answered(kiosk, staff)

        # In the call: the staff member shares the screen, the resident sends a photo. The
        # console holds it all in one visit (window.cloudhelp.visit), like the kiosk.
        await staff.click("#share-screen")
        await expect(staff.locator("#share-screen")).to_have_text("停止共享")
        # (4:3, as a kiosk's camera takes it)
        photo = {"name": "户口本.png", "mimeType": "image/png", "buffer": a_png(640, 480)}
        await kiosk.set_input_files("#file-input", files=[photo])
        saved = staff.locator("#files li[data-saved='1'] img")
        await expect(saved).to_have_count(1, timeout=30_000)
        # The photo is whole in the files box, its name and 已存档 too (the chip was cut off).
        await saved.evaluate("img => img.decode()")
        assert await staff.evaluate(
            "(() => { const box = document.getElementById('files').getBoundingClientRect();"
            " const li = document.querySelector('#files li').getBoundingClientRect();"
            " return li.bottom <= box.bottom + 0.5; })()"
        )
        held = await staff.evaluate(HOLD_CALL)
        assert held["remote"] >= 2 and held["screen"] and len(held["urls"]) == 2, held
        visit = await staff.evaluate(
            "(() => { const v = window.cloudhelp.visit;"
            " return v && { ticket: v.ticket, urls: v.urls.length, files: v.received.size }; })()"
        )
        assert visit is not None and visit["ticket"] > 0, visit
        assert visit["urls"] == 1 and visit["files"] == 1, visit
        await snap(staff, "console-11-call-with-screen-and-photo")

        # The resident hangs up: the call's tracks stop at once; its files stay for the wrap-up.
        await kiosk.click("#hangup")
        await kiosk.click("#hangup-confirm")
        await expect(staff.locator("#wrapup")).to_be_visible()
        still = await staff.evaluate(STILL_HELD)
        assert still["live"] == [] and sorted(still["loading"]) == sorted(held["urls"]), still
        await expect(staff.locator("#files img")).to_have_count(1)
        assert await staff.evaluate("window.cloudhelp.call") is None
        await snap(staff, "console-12-wrapup-files-kept")

        # No case was opened: the wrap-up proposes nothing, and 完成整理 asks for the outcome
        # first (a quick press used to record 其他 for whatever happened).
        await expect(staff.locator("#outcome")).to_have_value("")
        await staff.click("#wrapup button")
        await expect(staff.locator("#outcome-error")).to_have_text(
            "请先选择办理结果（未办成事项时可选“其他”）。"
        )
        await expect(staff.locator("#outcome")).to_be_focused()
        await expect(staff.locator("#state")).not_to_have_text("可接听")
        await snap(staff, "console-12b-wrapup-choose-outcome")
        await staff.select_option("#outcome", "resolved")
        await expect(staff.locator("#outcome-error")).to_be_hidden()
        # Wrap-up done: nothing of the call is held (object URLs revoked), and late events
        # from its call or file channel reach nothing on the console.
        await staff.click("#wrapup button")
        await expect(staff.locator("#state")).to_have_text("可接听")
        assert await staff.evaluate(STILL_HELD) == {"live": [], "loading": []}
        assert await staff.evaluate("window.cloudhelp.visit") is None
        await staff.evaluate(LATE_EVENTS)
        for leftover in ("#chat li", "#files li"):
            await expect(staff.locator(leftover)).to_have_count(0)
        await snap(staff, "console-13-available-after-call")


# Whether the checklist scrolls inside itself, and which materials a verdict button covers.
CHECKLIST_LAYOUT = """() => {
  const list = document.getElementById("checklist");
  const buttons = [...document.querySelectorAll("#verdict button")]
    .map((b) => b.getBoundingClientRect());
  const covered = [];
  for (const li of list.children) {
    const r = li.getBoundingClientRect();
    const over = (b) => r.left < b.right && b.left < r.right
      && r.top < b.bottom && b.top < r.bottom;
    if (buttons.some(over)) {
      covered.push(li.dataset.position);
    }
  }
  const last = list.lastElementChild.getBoundingClientRect();
  return {
    scrolls: list.scrollHeight > list.clientHeight + 1,
    covered,
    listEndsAboveButtons: buttons.every((b) => last.bottom <= b.top),
  };
}"""
# Check buttons the screen does not show at their top, middle and bottom (covered by the
# chat's input, say): every one scrolled into view as a click does (``scroll``), or, as the
# screen stands, those inside the side column's box (a desk's window, where it scrolls).
CHECKS_COVERED = """(scroll) => [...document.querySelectorAll("#checklist .check")].filter((b) => {
  if (scroll) b.scrollIntoView({ block: "nearest" });
  const r = b.getBoundingClientRect(), x = r.left + r.width / 2;
  const box = document.getElementById("side-scroll").getBoundingClientRect();
  if (!scroll && (r.top < box.top || r.bottom > box.bottom)) return false;
  return [r.top + 2, r.top + r.height / 2, r.bottom - 2]
    .some((y) => !b.contains(document.elementFromPoint(x, y)));
}).map((b) => b.closest("li").dataset.position + ":" + b.dataset.check)"""
# Each material's name, scrolled into view: is it what the screen shows at its centre?
NAME_SHOWN = """(strong) => {
  strong.scrollIntoView({ block: "center" });
  const r = strong.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return top === strong || strong.contains(top);
}"""


async def test_the_whole_checklist_shows_and_a_correction_asks_for_its_reason(
    sqlite_demo_url: str,
) -> None:
    # A page reloads mid-call below.
    async with (
        running_server(sqlite_demo_url, grace_seconds=RELOAD_GRACE_SECONDS) as server,
        chromium() as browser,
    ):
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await staff.set_viewport_size({"width": 1366, "height": 768})
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")
        await call_answered(kiosk, staff)
        await staff.fill("#applicant-name", "刘海生")
        await staff.fill("#applicant-phone", "13812345678")
        await staff.fill("#applicant-id", ID_NUMBER)
        # While the case is opened the button says so (a busy server showed nothing for
        # seconds, a README walk found).
        opened = asyncio.Event()

        async def held_back(route: Route) -> None:
            await opened.wait()
            await route.continue_()

        await staff.route("**/api/v1/cases", held_back)
        await staff.click("#case-form button")
        await expect(staff.locator("#case-open")).to_have_text("正在建立办件…")
        await expect(staff.locator("#case-open")).to_be_disabled()
        opened.set()
        await expect(staff.locator("#case-status")).to_have_text("预审中")
        await staff.unroute("**/api/v1/cases", held_back)
        rows = staff.locator("#checklist li")
        await expect(rows).to_have_count(7)
        # With the case's seven materials the side column holds more than the window: it
        # scrolls inside itself, the page does not, and the chat's input below it is in view,
        # ready (a walk found it below the fold).
        await expect(staff.locator("#chat-input")).to_be_in_viewport(ratio=1)
        assert await staff.evaluate(
            "(s => s.scrollHeight > s.clientHeight)(document.getElementById('side-scroll'))"
        )
        assert await staff.evaluate("document.documentElement.scrollHeight <= innerHeight")

        # Every material is readable on a 1366×768 screen, in a laptop browser's window on one
        # (1366×650) and on a 1024 one: the list is as long as it needs (the side column or the
        # page scrolls), none hidden under the verdict buttons that follow it or the chat's input.
        for width, height in ((1366, 768), (1366, 650), (1024, 768)):
            await staff.set_viewport_size({"width": width, "height": height})
            layout = await staff.evaluate(CHECKLIST_LAYOUT)
            assert layout == {"scrolls": False, "covered": [], "listEndsAboveButtons": True}, (
                width,
                layout,
            )
            for row in await rows.all():
                assert await row.locator("strong").evaluate(NAME_SHOWN), await row.inner_text()
            assert await staff.evaluate(CHECKS_COVERED, True) == [], (width, height)
            if width > 1100:  # beside it the video's tools are whole (cut in half at 650)
                await expect(staff.locator("#hangup")).to_be_in_viewport(ratio=1)
            if width > 1100:  # (on a smaller window the page scrolls under the sticky input)
                for top in (0, 150, 300):
                    await staff.locator("#side-scroll").evaluate(f"s => s.scrollTo(0, {top})")
                    assert await staff.evaluate(CHECKS_COVERED, False) == [], (width, height)
            # The case number in the panel's heading stays on one line.
            lines = await staff.locator("#case-number").evaluate("e => e.getClientRects().length")
            assert lines == 1, width
            await staff.locator("#checklist li[data-position='6']").scroll_into_view_if_needed()
            await snap(staff, f"console-14-checklist-{width}x{height}")
        await staff.set_viewport_size({"width": 1366, "height": 768})

        # 需补正 opens a box for its reason under the material, its field focused; the reason
        # is required before any verdict, said in the box and under the buttons.
        sixth = staff.locator("#checklist li[data-position='6']")
        name = await sixth.locator("strong").inner_text()
        box = sixth.locator(".reason-box")
        await expect(box).to_be_hidden()
        mark = sixth.locator("[data-check=needs_correction]")
        at = await mark.bounding_box()
        await mark.click()
        await expect(box).to_be_visible()
        # The box is brought just into view, no further (focusing its field centred it: the
        # column moved by a third of the window).
        moved, opened = await mark.bounding_box(), await box.bounding_box()
        assert at and moved and opened and at["y"] - moved["y"] <= opened["height"] + 24, (
            at,
            moved,
            opened,
        )
        await expect(box.locator("legend")).to_have_text("需补正原因（必填）")
        await expect(box.locator("select.reason:visible, input.typed-reason").first).to_be_focused()
        await snap(staff, "console-15-reason-box")
        # In English mid-case the marks, the box and the case's state follow at once (they
        # stayed Chinese until a reload, a README walk found); and back.
        await staff.click("#lang")
        await expect(sixth.locator("[data-check=ok]")).to_have_text("OK")
        await expect(box.locator("legend")).to_have_text("Reason for correction (required)")
        await expect(box.locator("select.reason option").first).to_have_text(
            "Pick what must be corrected"
        )
        await expect(box.locator("input.typed-reason")).to_have_attribute(
            "placeholder", i18n.catalog("en")["staff.case.type_reason"]
        )
        await expect(staff.locator("#case-status")).to_have_text("Pre-review")
        # In English on a 1366×768 screen the call's four tools still keep to one row, 挂断
        # (Hang up) whole in view, and Send beside the chat's input (they wrapped, Hang up cut
        # off at the window's bottom, a README walk found).
        await expect(staff.locator("#hangup")).to_have_text("Hang up")
        tops = await staff.locator(".work .toolbar .button").evaluate_all(
            "bs => bs.map(b => Math.round(b.getBoundingClientRect().top))"
        )
        assert len(tops) == 4 and len(set(tops)) == 1, tops
        await expect(staff.locator("#hangup")).to_be_in_viewport(ratio=1)
        send, typed = staff.locator("#chat-form button"), staff.locator("#chat-input")
        send_box, typed_box = await send.bounding_box(), await typed.bounding_box()
        assert send_box and typed_box and send_box["x"] > typed_box["x"] + typed_box["width"]
        await snap(staff, "console-15b-english-in-call")
        await staff.click("#lang")
        await expect(box.locator("legend")).to_have_text("需补正原因（必填）")
        await expect(staff.locator("#case-status")).to_have_text("预审中")
        for position in (1, 2, 3, 4, 5, 7):
            await staff.click(f"#checklist li[data-position='{position}'] [data-check=ok]")
        await staff.click("#verdict-correction")
        await expect(staff.locator("#verdict-error")).to_have_text(
            f"「{name}」标为需补正，请选择或填写需补正的原因。"
        )
        await expect(box).to_have_class(re.compile(r"\binvalid\b"))
        await expect(box.locator(".reason-missing")).to_have_text(
            "请选择常见原因，或填写原因，再出具结论。"
        )
        await expect(box.locator("input.typed-reason")).to_have_attribute("aria-invalid", "true")
        await snap(staff, "console-16-reason-missing")
        assert await axe_violations(staff, "console-reason-missing") == []
        await box.locator("input.typed-reason").fill("复印件不清晰")
        await expect(box.locator(".reason-missing")).to_be_hidden()
        await expect(box).not_to_have_class(re.compile(r"\binvalid\b"))
        await expect(staff.locator("#verdict-error")).to_be_hidden()
        await staff.click("#verdict-correction")
        await expect(staff.locator("#case-status")).to_have_text("待补正")
        async with server.state.db.read() as session:
            case = await session.scalar(select(Case).where(Case.applicant_name == "刘海生"))
            assert case is not None and case.status == "correction_needed"
        # A reload mid-call keeps the link to the notice just issued (the call's memory).
        link = staff.locator("#notice-link a")
        href = await link.get_attribute("href")
        assert href and href.startswith(f"/notices/{case.number}/1?t="), href
        await staff.reload()
        await expect(staff.locator("#case-status")).to_have_text("待补正")
        await expect(link).to_be_visible()
        await expect(link).to_have_attribute("href", href)


# Send a message from the console's own connection; the code of the error frame refusing it.
SEND_AND_READ_THE_REFUSAL = """(message) => new Promise((resolve) => {
  const connection = window.cloudhelp.connection;
  const refused = (e) => {
    if (e.detail.type !== "error" || e.detail.ref !== message.type) return;
    connection.removeEventListener("message", refused);
    resolve(e.detail.code);
  };
  connection.addEventListener("message", refused);
  connection.send(message);
})"""


async def test_console_says_who_is_calling_and_why_the_call_ended(sqlite_demo_url: str) -> None:
    """In the call the console names the ticket and the item (not only 居民 · the station); a
    ring the resident cancelled says so, and so does the wrap-up of a call they hung up on
    (after a reload too)."""
    # A page reloads mid-call below.
    async with (
        running_server(sqlite_demo_url, grace_seconds=RELOAD_GRACE_SECONDS) as server,
        chromium() as browser,
    ):
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await staff.set_viewport_size({"width": 1600, "height": 900})
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")

        async def call() -> None:
            await kiosk.click("#hot [data-item=NYNC-002]")
            await kiosk.click("#call-button")
            await wait_for_video(kiosk, "#preview")
            await kiosk.click("#start-call")
            await expect(staff.locator("#ring")).to_be_visible()

        # The resident cancels while it rings: the ring goes, and the console says why.
        await call()
        await kiosk.click("#cancel-ticket")
        await expect(staff.locator("#ring")).to_be_hidden()
        await expect(staff.locator("#banner")).to_have_text("居民已取消呼叫。")
        await snap(staff, "console-20-resident-cancelled")

        await expect(kiosk.locator("[data-screen=home]")).to_be_visible()
        await call()
        ticket = await staff.locator("#ring-ticket").inner_text()
        assert re.fullmatch(r"[A-Z]\d{3}", ticket), ticket
        await staff_answers(kiosk, staff)
        await expect(staff.locator("#call-caption")).to_have_text(
            f"{ticket} · 渔业捕捞许可证换发（延续） · 居民 · 前关社区驿站"
        )
        await snap(staff, "console-21-in-call-caption")

        # The resident hangs up while the console asks 结束通话吗？: the question goes with the
        # call (nothing left to end); the wrap-up says why it ended, and still does after a reload.
        await staff.click("#hangup")
        await expect(staff.locator("#hangup-overlay")).to_be_visible()
        await kiosk.click("#hangup")
        await kiosk.click("#hangup-confirm")
        await expect(staff.locator("#wrapup")).to_be_visible()
        await expect(staff.locator("#hangup-overlay")).to_be_hidden()
        await expect(staff.locator("#hangup")).to_be_hidden()
        await expect(staff.locator("#wrapup-reason")).to_have_text("居民已挂断。")
        # The call's figures sent as it ended (the page's stats timer, racing the hang-up) are
        # refused with not_in_call: nothing the staff member did, so no red banner (a walk saw
        # 您当前不在通话中。 stay through the wrap-up); another refusal is still said.
        refused = await staff.evaluate(SEND_AND_READ_THE_REFUSAL, {"type": "call.stats", "fps": 20})
        assert refused == "not_in_call"
        await expect(staff.locator("#banner")).to_be_hidden()
        chat = {"type": "app", "to": "nobody", "data": {"kind": "chat", "text": "还在吗"}}
        assert await staff.evaluate(SEND_AND_READ_THE_REFUSAL, chat) == "not_in_call"
        await expect(staff.locator("#banner")).to_have_text("您当前不在通话中。")
        await snap(staff, "console-22-wrapup-resident-hung-up")
        await staff.reload()
        await expect(staff.locator("#wrapup")).to_be_visible()
        await expect(staff.locator("#wrapup-reason")).to_have_text("居民已挂断。")
        assert await english_on(staff) == []
        assert await axe_violations(staff, "console-wrapup-reason") == []


async def test_a_console_opened_in_another_window_says_this_one_no_longer_rings(
    sqlite_demo_url: str,
) -> None:
    """zhaogang opens the console again in a second window: the first says calls ring in the
    other one (it showed 可接听 and never rang while a resident waited), with the way to take
    the console back, refused while the other is in a call; calls ring where it was opened
    last. A window that takes over a console answering calls answers them (it started 暂离:
    a resident could wait on a console nobody had made available)."""
    async with (
        running_server(sqlite_demo_url, grace_seconds=RELOAD_GRACE_SECONDS) as server,
        chromium() as browser,
    ):
        first = await new_page(browser, server.base_url)
        await first.set_viewport_size({"width": 1366, "height": 768})
        await signed_in_staff(server, first, "zhaogang")
        second = await first.context.new_page()  # the same browser: signed in already
        await second.set_viewport_size({"width": 1366, "height": 768})
        await second.goto("/staff")
        await expect(second.locator("#state")).to_have_text("可接听")
        replaced = first.locator("#replaced")
        await expect(replaced).to_contain_text("您的工作台已在另一个窗口")
        await expect(first.locator("#state")).to_have_text("在另一窗口")
        await expect(first.locator("#toggle-state")).to_be_hidden()
        await expect(first.locator("#take-back")).to_be_focused()
        await snap(first, "console-replaced-by-another-window")
        # A resident calls: the window opened last rings. (A kiosk page opened twice says so in
        # the first too.)
        kiosk_before = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk_before)
        kiosk = await kiosk_before.context.new_page()
        await kiosk.goto("/kiosk")
        await expect(kiosk.locator("[data-screen=home]")).to_be_visible()
        replaced_kiosk = kiosk_before.locator("[data-screen=busy] h1")
        await expect(replaced_kiosk).to_have_text("本终端已在另一个窗口打开")
        await call_answered(kiosk, second)
        # Taking the console back while the other window is in a call is refused (it would cut
        # the resident off): the first window says why; the call goes on in the second.
        await first.click("#take-back")
        await expect(replaced).to_contain_text("正在另一个窗口通话")
        # ... saying it checked again (the same words alone looked as if nothing happened).
        await expect(first.locator("#replaced-checked")).to_contain_text("已再次确认")
        await expect(first.locator("#take-back")).to_be_focused()
        # In English the line and the badge follow (the line stayed Chinese, a walk found).
        await first.click("#lang")
        await expect(first.locator("#replaced-checked")).to_contain_text("Checked again")
        await expect(first.locator("#state")).to_have_text("In another window")
        await first.click("#lang")
        await expect(first.locator("#replaced-checked")).to_contain_text("已再次确认")
        await expect(first.locator("#login")).to_be_hidden()
        await snap(first, "console-busy-in-another-window")
        await kiosk.fill("#chat-input", "还在吗")
        await kiosk.press("#chat-input", "Enter")
        await expect(second.locator("#chat li.them").last).to_have_text("还在吗")
        await expect(second.locator("#state")).to_have_text("通话中")
        # So is a third window opened now (the console in the nav of /cases, say).
        third = await first.context.new_page()
        await third.goto("/staff")
        await expect(third.locator("#replaced")).to_contain_text("正在另一个窗口通话")
        await expect(third.locator("#replaced-checked")).to_be_hidden()
        await third.close()
        await expect(second.locator("#state")).to_have_text("通话中")
        # English mid-call: the caption, the signal and the kiosk's helper line follow at once
        # (they kept their Chinese until a reload, a README walk found).
        await second.click("#lang")
        await expect(second.locator("#call-caption")).to_contain_text("Resident")
        await expect(second.locator("#signal")).to_contain_text("Signal")
        await second.click("#lang")
        await expect(second.locator("#call-caption")).to_contain_text("居民")
        await kiosk.click("#lang")
        await expect(kiosk.locator("#call-with")).to_contain_text("赵刚 is helping you")
        await kiosk.reload()  # mid-call: the resident's language stays
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
        await expect(kiosk.locator("#call-with")).to_contain_text("赵刚 is helping you")
        await expect(kiosk.locator("#hangup")).to_have_text("Hang up")
        await kiosk.click("#lang")
        await expect(kiosk.locator("#call-with")).to_contain_text("工作人员 赵刚 为您服务")
        await kiosk.click("#hangup")
        await kiosk.click("#hangup-confirm")
        await expect(second.locator("#wrapup")).to_be_visible()
        await second.select_option("#outcome", "resolved")
        await second.click("#wrapup button")
        await expect(second.locator("#state")).to_have_text("可接听")
        # The first window takes the console back: it answers again, the second says so.
        await first.click("#take-back")
        await expect(replaced).to_be_hidden()
        await expect(first.locator("#state")).to_have_text("可接听")
        await expect(second.locator("#replaced")).to_be_visible()
