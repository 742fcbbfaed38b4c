"""The kiosk page and the staff console in real headless Chromium, through the real server."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from playwright.async_api import Page, Route, expect
from sqlalchemy import select

from cloudhelp.domain import accounts
from cloudhelp.store.filestore import storage_path
from cloudhelp.store.models import (
    Case,
    FollowUp,
    MaterialCheck,
    Rating,
    Ticket,
    TicketEvent,
    TicketFile,
)
from tests.browserkit import (
    chromium,
    new_page,
    opens_file_picker_from_keyboard,
    snap,
    wait_for_video,
)
from tests.callkit import DEMO_PASSWORD, CallServer, running_server


async def enrolled_kiosk(server: CallServer, page: Page, code: str = "QG-01") -> None:
    async with server.state.db.write() as session:
        enrol_code = await accounts.enrol_kiosk(session, "DLW-QG", code)
    await page.goto(f"/kiosk?enrol={enrol_code}")
    await expect(page.locator("[data-screen=home]")).to_be_visible()
    await expect(page.locator("#station")).to_contain_text("前关社区驿站")


async def signed_in_staff(
    server: CallServer, page: Page, username: str, *, available: bool = True
) -> None:
    """Sign in at /staff with the demo password and, unless not ``available``, 开始接听 (a
    supervisor with no items has no such button)."""
    await server.set_demo_password(username)
    await page.goto("/staff")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-form button")
    await expect(page.locator("#state")).to_have_text("暂离")
    if available:
        await page.click("#toggle-state")
        await expect(page.locator("#state")).to_have_text("可接听")


async def call_answered(kiosk: Page, staff: Page, item: str = "NYNC-002") -> None:
    """The resident calls about ``item`` from the kiosk page and the console answers the ring:
    both pages are in the call, the console with the resident's video."""
    await kiosk.click(f"#hot [data-item={item}]")
    await kiosk.click("#call-button")
    await wait_for_video(kiosk, "#preview")
    await kiosk.click("#start-call")
    await expect(staff.locator("#ring")).to_be_visible()
    await staff.click("#ring-accept")
    await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
    await wait_for_video(staff, "#remote-main")


async def test_fishing_licence_renewal_call(sqlite_demo_url: str, tmp_path) -> None:
    # A grace time longer than the kiosk's 4.5 s offline below (the tests' default is 2 s).
    serving = running_server(sqlite_demo_url, data_dir=tmp_path, grace_seconds=10)
    async with serving as server, chromium() as browser:
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk)
        await snap(kiosk, "kiosk-1-home")
        await signed_in_staff(server, staff, "zhaogang")

        # The resident finds the fishing-licence renewal by pinyin initials and calls.
        await kiosk.fill("#search", "yyblxkz")
        await kiosk.click("#results [data-item=NYNC-002]")
        await expect(kiosk.locator("#item-name")).to_have_text("渔业捕捞许可证换发（延续）")
        await expect(kiosk.locator("#item-materials li")).to_have_count(7)
        await snap(kiosk, "kiosk-2-item")
        await kiosk.click("#call-button")
        await wait_for_video(kiosk, "#preview")
        await snap(kiosk, "kiosk-3-device-check")
        await kiosk.click("#start-call")

        # Staff are rung; the kiosk shows its ticket number while it rings.
        await expect(staff.locator("#ring")).to_be_visible()
        await expect(staff.locator("#ring-ticket")).to_have_text("B001")
        await expect(kiosk.locator("#ticket-number")).to_have_text("B001")
        await snap(kiosk, "kiosk-4-waiting")
        await snap(staff, "staff-1-ringing")
        await staff.click("#ring-accept")

        # Each page shows the other's video; the resident sees who is helping, with what.
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
        await expect(kiosk.locator("#call-with")).to_have_text(
            "工作人员 赵刚 为您服务\n渔业捕捞许可证换发（延续）"
        )
        assert await wait_for_video(kiosk, "#remote-main") > 0
        assert await wait_for_video(staff, "#remote-main") > 0
        await snap(kiosk, "kiosk-5-call")

        # Staff share their screen; the kiosk shows it large (the 1280x720 test pattern).
        await staff.click("#share-screen")
        await expect(kiosk.locator("#screen-label")).to_be_visible()
        assert await wait_for_video(kiosk, "#remote-main", 1000) >= 1000
        await snap(kiosk, "kiosk-6-staff-screen")

        # The kiosk sends a 5 MiB photo; it arrives intact and is kept on the server.
        photo = b"\xff\xd8\xff\xe0" + os.urandom(5 * 1024 * 1024 - 4)
        await kiosk.set_input_files(
            "#file-input",
            files=[{"name": "营业执照.jpg", "mimeType": "image/jpeg", "buffer": photo}],
        )
        saved = staff.locator("#files li[data-saved='1']")
        await expect(saved).to_have_count(1, timeout=60_000)
        digest = hashlib.sha256(photo).hexdigest()
        assert await saved.get_attribute("data-sha256") == digest
        async with server.state.db.read() as session:
            row = await session.scalar(select(TicketFile))
            assert row is not None and row.sha256 == digest and row.size == len(photo)
            assert row.name == "营业执照.jpg" and row.sender == "kiosk"
        assert storage_path(server.state.settings.data_dir, digest).read_bytes() == photo
        await expect(kiosk.locator("#files-sent li.ok")).to_have_count(1)
        await expect(kiosk.locator("#files-received li")).to_have_count(0)  # sent, not received
        await snap(staff, "staff-2-call-with-file")

        # Staff send a filled-in sample form (发送文件 is a button the keyboard reaches, as on
        # the kiosk); the kiosk receives it and the server keeps it.
        await opens_file_picker_from_keyboard(staff, "发送文件")
        sample = b"%PDF-1.4\n" + os.urandom(64 * 1024)
        await staff.set_input_files(
            "#file-input",
            files=[{"name": "申请书样表.pdf", "mimeType": "application/pdf", "buffer": sample}],
        )
        await expect(kiosk.locator("#files-received li")).to_have_count(1, timeout=30_000)
        # The console's line says it went: no progress bar left at 100 %.
        sent_line = staff.locator("#files li", has_text="申请书样表.pdf")
        await expect(sent_line.locator(".label")).to_have_text("申请书样表.pdf 已发送")
        await expect(sent_line.locator("progress")).to_have_count(0)
        sample_digest = hashlib.sha256(sample).hexdigest()
        for _ in range(100):
            async with server.state.db.read() as session:
                kept = await session.scalar(
                    select(TicketFile).where(TicketFile.sha256 == sample_digest)
                )
            if kept is not None:
                break
            await asyncio.sleep(0.1)
        assert kept is not None and kept.sender == "staff" and kept.name == "申请书样表.pdf"

        # Chat both ways.
        await kiosk.fill("#chat-input", "我的船检证书快到期了")
        await kiosk.click("#chat-form button")
        await expect(staff.locator("#chat li.them")).to_have_text("我的船检证书快到期了")
        await staff.fill("#chat-input", "没关系，先拍照发过来")
        await staff.click("#chat-form button")
        await expect(kiosk.locator("#chat li.them")).to_have_text("没关系，先拍照发过来")

        # Pre-review beside the video: open the case, check each material, issue the notice.
        from tests.test_cases import ID_NUMBER

        await staff.fill("#applicant-name", "刘海生")
        await staff.fill("#applicant-phone", "13812345678")
        await staff.fill("#applicant-id", ID_NUMBER)
        await staff.click("#case-form button")
        await expect(staff.locator("#case-status")).to_have_text("预审中")
        await expect(staff.locator("#checklist li")).to_have_count(7)
        for position in range(1, 8):
            check = "needs_correction" if position in (3, 4) else "ok"
            await staff.click(f"#checklist li[data-position='{position}'] [data-check={check}]")
        await staff.select_option("#checklist li[data-position='3'] .reason", index=1)
        await staff.fill(
            "#checklist li[data-position='4'] .typed-reason", "船检证书未年检，请先年检"
        )
        await staff.select_option("#checklist li[data-position='4'] .file", label="营业执照.jpg")
        await snap(staff, "staff-3-checklist")
        # The notice's page held back: the kiosk says it is opening it, 打印 waits.
        notice_sent = asyncio.Event()

        async def held_back(route: Route) -> None:
            await notice_sent.wait()
            await route.continue_()

        await kiosk.route("**/notices/**", held_back)
        await staff.click("#verdict-correction")
        await expect(staff.locator("#case-status")).to_have_text("待补正")
        # The console says what the step came to, where its buttons were.
        await expect(staff.locator("#case-result")).to_have_text(
            "已出具第 1 次一次性告知书，居民的屏幕上已显示（可打印）。"
        )
        await expect(kiosk.locator("#notice-overlay")).to_be_visible()
        loading = kiosk.locator("#notice-loading")
        await expect(loading).to_have_text("正在打开告知书，请稍候……")
        await expect(kiosk.locator("#notice-print")).to_be_disabled()
        await snap(kiosk, "kiosk-6a-notice-loading")
        notice_sent.set()
        notice = kiosk.frame_locator("#notice-frame")
        await expect(notice.locator(".items li")).to_have_count(2)
        await expect(loading).to_be_hidden()
        await expect(kiosk.locator("#notice-print")).to_be_enabled()
        await kiosk.unroute("**/notices/**")
        await snap(kiosk, "kiosk-6b-correction-notice")
        await kiosk.click("#notice-close")

        # The kiosk's network goes for 4.5 s mid-call: it resumes and the call goes on. A chat
        # line typed while it is away goes out once it is back. The page reconnects as soon as
        # the browser says it is online, not at its next backoff step (7.5 s after the drop).
        await kiosk.context.set_offline(True)
        await kiosk.evaluate("window.cloudhelp.connection.dropSocket()")
        await expect(kiosk.locator("#banner")).to_contain_text("正在重新连接")
        await kiosk.fill("#chat-input", "网络恢复了")
        await kiosk.click("#chat-form button")
        await kiosk.wait_for_timeout(4500)
        await kiosk.context.set_offline(False)
        # Playwright's emulation lifts the block but, on this page, leaves navigator.onLine
        # false and fires no "online" event (a bare page gets both): the page is told here.
        await kiosk.evaluate("navigator.onLine || dispatchEvent(new Event('online'))")
        await expect(kiosk.locator("#banner")).to_be_hidden(timeout=2_000)
        await expect(staff.locator("#chat li.them").last).to_have_text("网络恢复了")
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()

        # The resident hangs up just as the network fails: the socket swallows the hang-up (it
        # is written, then the socket dies). After the resume the page sends it again.
        await kiosk.evaluate(
            """() => {
              const send = WebSocket.prototype.send;
              WebSocket.prototype.send = function (data) {
                if (String(data).includes('"call.hangup"') && !window.hangupSwallowed) {
                  window.hangupSwallowed = true;
                  this.close();
                  return;
                }
                send.call(this, data);
              };
            }"""
        )
        await kiosk.click("#hangup")  # 结束通话吗？
        pressed = await kiosk.evaluate(
            """() => {
              document.getElementById("hangup-confirm").click();
              const button = document.getElementById("hangup");
              return [button.disabled, button.textContent];
            }"""
        )
        assert pressed == [True, "正在挂断…"]  # until the call ends
        await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
        assert await kiosk.evaluate("window.hangupSwallowed")
        await expect(kiosk.locator("#done-number")).to_have_text("排队号 B001")
        # The resident rates the session: a bad rating asks why, and opens a follow-up.
        await expect(kiosk.locator("#rating-levels .button")).to_have_count(5)
        # Good ones green, bad ones red, 基本满意 (3) neither.
        borders = await kiosk.locator("#rating-levels .button").evaluate_all(
            "bs => bs.map((b) => [b.dataset.level, getComputedStyle(b).borderTopColor])"
        )
        assert dict(borders) == {"5": "rgb(26, 127, 55)", "4": "rgb(26, 127, 55)",
                                 "3": "rgb(91, 100, 112)", "2": "rgb(176, 0, 32)",
                                 "1": "rgb(176, 0, 32)"}, borders  # fmt: skip
        # While the rating is open 返回首页 is an ordinary button, not the big red one: rating
        # is the step to take; once rated, going home is.
        home = kiosk.locator("#done-home")
        await expect(home).to_have_css("background-color", "rgb(255, 255, 255)")
        await snap(kiosk, "kiosk-7-done-and-rating")
        await kiosk.click("#rating-levels [data-level='2']")
        await kiosk.click("#rating-reasons .chip >> text=等待时间长")
        await snap(kiosk, "kiosk-8-bad-rating-reasons")
        # The reasons are said in English after a switch (they stayed Chinese), the ticked one
        # still ticked; what is stored is the list's own words (below).
        await kiosk.click("#lang")
        await expect(kiosk.locator("#rating-reasons .chip.chosen")).to_have_text(["Long wait"])
        await expect(kiosk.locator("#rating-reasons .chip").last).to_have_text("Other")
        await kiosk.click("#lang")
        await expect(kiosk.locator("#rating-reasons .chip.chosen")).to_have_text(["等待时间长"])
        await kiosk.click("#rating-send")
        await expect(kiosk.locator("#rating-thanks")).to_be_visible()
        await expect(home).to_have_css("background-color", "rgb(200, 16, 46)")  # --brand
        await expect(staff.locator("#wrapup")).to_be_visible()
        await staff.select_option("#outcome", "needs_correction")
        await staff.fill("#note", "船检证书需年检后补正")
        await snap(staff, "staff-4-wrapup")
        await staff.click("#wrapup button")
        await expect(staff.locator("#state")).to_have_text("可接听")
        async with server.state.db.read() as session:
            ticket = await session.scalar(select(Ticket))
            assert ticket is not None and ticket.status == "completed"
            assert ticket.outcome == "needs_correction" and ticket.end_reason == "kiosk_hangup"
            rating = await session.scalar(select(Rating))
            assert rating is not None and rating.level == 2 and rating.reasons == ["等待时间长"]
            assert await session.scalar(select(FollowUp)) is not None
            case = await session.scalar(select(Case))
            assert case is not None and case.status == "correction_needed"
            checks = {
                c.material_id: c for c in (await session.scalars(select(MaterialCheck))).all()
            }
            linked = [c for c in checks.values() if c.file_ids]
            assert len(linked) == 1 and linked[0].status == "needs_correction"
            assert linked[0].reason == "船检证书未年检，请先年检"
            assert rating.case_id == case.id
            # The session is logged against the case: file, case, checklist, verdict, end.
            kinds = [e.kind for e in (await session.scalars(select(TicketEvent))).all()]
            for kind in ("connected", "file", "case_opened", "checklist", "verdict", "ended"):
                assert kind in kinds, kinds
            ended = await session.scalar(select(TicketEvent).where(TicketEvent.kind == "ended"))
            assert ended is not None and ended.detail["chats"] >= 3
            assert [s["on"] for s in ended.detail["screen"]] == [True]
            assert ticket.case_id == case.id
        # The case page's session timeline says who sent each file (the staff's sample form
        # was listed as 收到文件, a README walk found).
        await staff.goto(f"/cases/{case.number}")
        events = staff.locator(".session-events")
        await expect(events).to_contain_text("收到居民的文件")
        await expect(events).to_contain_text("工作人员发送文件")


async def test_refused_camera_tells_the_resident_what_to_do(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium(fake_ui=False) as browser:
        kiosk = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk)
        await kiosk.goto("/kiosk")
        await kiosk.click("#hot [data-item=NYNC-002]")
        await kiosk.click("#call-button")
        problem = kiosk.locator("#device-problem")
        await expect(problem).to_be_visible()
        await expect(problem).to_be_in_viewport()
        await expect(problem).to_contain_text("驿站的工作人员")  # a kiosk has no address bar
        await expect(problem).not_to_contain_text("地址栏")
        await expect(kiosk.locator("#start-call")).to_be_disabled()
        await snap(kiosk, "kiosk-9-camera-refused")


async def test_relay_only_call_through_coturn(sqlite_demo_url: str) -> None:
    url = os.environ.get("CLOUDHELP_TEST_TURN_URL")
    secret = os.environ.get("CLOUDHELP_TEST_TURN_SECRET")
    if not url or not secret:
        pytest.fail("CLOUDHELP_TEST_TURN_URL/SECRET are not set: run `bash scripts/test.sh`.")
    async with (
        running_server(
            sqlite_demo_url, turn_urls=[url], turn_secret=secret, ice_transport_policy="relay"
        ) as server,
        chromium() as browser,
    ):
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")
        await kiosk.click("#hot [data-item=NYNC-002]")
        await kiosk.click("#call-button")
        await wait_for_video(kiosk, "#preview")
        await kiosk.click("#start-call")
        await staff.click("#ring-accept")
        assert await wait_for_video(staff, "#remote-main") > 0
        # The nominated pair's stats may lag the first frames (a CI run under load found none
        # yet): asked again until there is one.
        pair = await staff.wait_for_function(
            """async () => {
                const stats = await window.cloudhelp.call.pc.getStats();
                let pair;
                stats.forEach((s) => {
                    const ok = s.type === 'candidate-pair' && s.nominated;
                    if (ok && s.state === 'succeeded') pair = s;
                });
                return pair ? stats.get(pair.localCandidateId).candidateType : null;
            }""",
            polling=200,
        )
        assert await pair.json_value() == "relay"


async def test_correction_notice_page(sqlite_demo_url: str) -> None:
    from tests.test_cases import ID_NUMBER

    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                                  "id_number": ID_NUMBER}}  # fmt: skip
        async with server.http.post("/api/v1/cases", json=body, cookies=cookies) as r:
            number = (await r.json())["case"]["number"]
        marks = [{"position": n, "status": "ok"} for n in range(1, 8)]
        marks[1] = {"position": 2, "status": "missing"}
        marks[3] = {
            "position": 4,
            "status": "needs_correction",
            "reason": "船检证书未年检，请先办理年检",
        }
        base = f"/api/v1/cases/{number}"
        async with server.http.put(f"{base}/checklist", json={"materials": marks}, cookies=cookies):
            pass
        async with server.http.post(
            f"{base}/verdict", json={"verdict": "correction_needed"}, cookies=cookies
        ) as r:
            url = (await r.json())["case"]["notice"]["url"]
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 900, "height": 1200})
        await page.goto(url)
        await expect(page.locator("h1")).to_have_text("材料补正一次性告知书")
        await expect(page.locator(".items li")).to_have_count(2)
        assert await page.locator(".qr svg").count() == 1
        await snap(page, "notice-1-correction")


async def test_case_search_and_case_page(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        async with server.state.db.write() as session:
            from cloudhelp.devtools import demo

            await demo.seed_cases(session, "210211")
        page = await new_page(browser, server.base_url)
        await page.goto("/cases")
        await expect(page.locator("#login")).to_be_visible()  # sign in first
        await signed_in_staff(server, page, "sunhua", available=False)
        await page.goto("/cases")
        await expect(page.locator("tbody tr")).to_have_count(7)
        await page.select_option("select[name=status]", "correction_needed")
        await page.click("form.search button")
        await expect(page.locator("tbody tr")).to_have_count(1)
        await expect(page.locator("tbody")).to_contain_text("138****0002")
        await snap(page, "cases-1-search")
        await page.click("tbody a")
        await expect(page.locator("h1")).to_contain_text("待补正")
        await expect(page.locator(".materials li").first).to_contain_text("需补正")
        await expect(page.locator("text=第 1 次告知")).to_be_visible()
        await snap(page, "cases-2-case")
        # Acceptance from the case page: 待受理 → 已受理, with the due dates shown.
        await page.goto("/cases?status=awaiting_acceptance")
        await page.click("tbody a")
        # Nothing is chosen at first: 办理 alone moves nothing and asks for a state.
        await expect(page.locator("#move select[name=to]")).to_have_value("")
        await page.click("#move button")
        await expect(page.locator("#move-error")).to_have_text("请先选择新的状态。")
        await expect(page.locator("h1")).to_contain_text("待受理")
        await page.select_option("#move select[name=to]", "accepted")
        await page.click("#move button")
        await expect(page.locator("h1")).to_contain_text("已受理")
        await expect(page.locator(".facts")).to_contain_text("到期")
