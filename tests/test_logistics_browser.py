"""The logistics desk and the station attendant's page in headless Chromium, through the real
server: register a certificate and pack and dispatch its run by scanning; receive a run against
its manifest with an extra item, shelve, and hand over with pickup code, ID digits and a
signature drawn on the screen. Screenshots in test-artifacts/logistics-*.png."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import local_date
from cloudhelp.devtools import demo, demo_items
from cloudhelp.domain.logistics import codes, items, runs
from cloudhelp.domain.logistics import states as logistics_states
from cloudhelp.store.models import Case, Staff, TrackedItem, utcnow
from tests.browserkit import chromium, new_page, snap
from tests.callkit import DEMO_PASSWORD, CallServer, running_server
from tests.journeykit import axe_violations
from tests.test_board_browser import signed_in
from tests.test_browser import enrolled_kiosk
from tests.test_logistics import ID_NUMBER, PHONE, concluded_case


async def sign_in(server: CallServer, page: Page, path: str, username: str) -> None:
    """Sign in on the page's own form."""
    await server.set_demo_password(username)
    await page.goto(path)
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-form button")
    await expect(page.locator("#desk")).to_be_visible()


async def scan(page: Page, code: str) -> None:
    """What a USB scanner does: types the digits into the focused field and presses Enter."""
    await page.locator("#scan").focus()
    await page.keyboard.type(code)
    await page.keyboard.press("Enter")


async def staff(session: AsyncSession, username: str) -> Staff:
    found = await session.scalar(select(Staff).where(Staff.username == username))
    assert found is not None
    return found


async def on_its_way_to_the_station(server: CallServer, number: str) -> tuple[str, str, str]:
    """A certificate for the case, carried hall → street centre and dispatched on to 前关驿站:
    its code, its pickup code and the arriving run's code."""
    async with server.state.db.write() as session:
        desk, street = await staff(session, "zhaogang"), await staff(session, "wujun")
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case is not None
        item = await items.register(session, desk, case, "certificate", "渔业捕捞许可证（正本）")
        first = await runs.open_run(session, desk, "DLW")
        await runs.add_item(session, desk, first, item.code)
        await runs.dispatch(session, desk, first)
        await runs.receive(session, street, first, [item.code])
        second = await runs.open_run(session, street, "DLW-QG")
        await runs.add_item(session, street, second, item.code)
        await runs.dispatch(session, street, second)
        return item.code, item.pickup_code, second.code


async def test_the_logistics_desk_registers_packs_and_dispatches(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        number = await concluded_case(server)
        page = await new_page(browser, server.base_url)
        await page.goto("/logistics")
        await expect(page.locator("#login")).to_be_visible()
        await snap(page, "logistics-desk-0-sign-in")
        await sign_in(server, page, "/logistics", "zhaogang")
        await expect(page.locator("#where")).to_contain_text("甘井子区行政审批服务大厅")
        await expect(page.locator("#site-nav a[aria-current=page]")).to_have_text("物流交接台")

        form = page.locator("#register-form")
        await form.locator("input[name=case]").fill(number)
        await form.locator("input[name=description]").fill("渔业捕捞许可证（正本）")
        await form.locator("button").click()
        await expect(page.locator("#registered")).to_contain_text("取件码")
        await expect(page.locator("#registered a")).to_have_attribute(
            "href", re.compile(r"label\.pdf$")
        )
        await expect(page.locator("#registered a")).to_be_in_viewport()  # not below the screen
        code = re.sub(
            r"\D", "", (await page.locator("#registered p").first.inner_text()).split("，")[0]
        )
        assert codes.valid(code)
        await expect(page.locator("#waiting li")).to_have_count(1)
        await expect(page.locator("#waiting li")).to_contain_text("下一站：大连湾街道便民服务中心")
        assert await axe_violations(page, "logistics-desk") == []
        await snap(page, "logistics-desk-1-registered")

        # A typo is caught by the check digit; nothing else happens.
        await scan(page, code[:-1] + str((int(code[-1]) + 1) % 10))
        await expect(page.locator("#scan-result")).to_contain_text("不是有效的追踪码")

        await page.get_by_role("button", name="新建交接单 → 大连湾街道便民服务中心").click()
        await expect(page.locator("#scan-mode")).to_contain_text("装入交接单")
        await scan(page, code)
        await expect(page.locator("#scan-result")).to_contain_text("已装入")
        await expect(page.locator("#packing li")).to_contain_text("1 件")
        # Not sent yet: no time it was sent (a run being packed showed one, of 1970).
        await expect(page.locator("#packing li small")).not_to_contain_text("发出")
        await expect(page.locator("#waiting li")).to_contain_text("已装入交接单")
        run_code = await page.locator("#packing li").get_attribute("data-run")
        await expect(page.locator("#packing a")).to_have_attribute(
            "href", f"/api/v1/logistics/runs/{run_code}/manifest.pdf"
        )
        await snap(page, "logistics-desk-2-packing")
        await page.locator("#packing li").get_by_role("button", name="发出").click()
        await expect(page.locator("#scan-result")).to_contain_text(
            "交接单已发往大连湾街道便民服务中心（1 件）"
        )
        await expect(page.locator("#waiting-empty")).to_be_visible()

        # Looking the item up shows its history.
        await scan(page, code)
        await expect(page.locator("#item-events li")).to_have_count(2)
        await expect(page.locator("#item-title")).to_contain_text("运送中")
        await snap(page, "logistics-desk-3-dispatched")

        # English is one press away, with every word from the catalog.
        await page.click("#lang")
        await expect(page.locator("#scan-form label")).to_have_text(
            "Scan or type a tracking or run code"
        )
        await snap(page, "logistics-desk-4-english")

        # The street centre's attendant receives the run and hands the item on to the station.
        street = await new_page(browser, server.base_url)
        await sign_in(server, street, "/station", "wujun")
        await expect(street.locator("#arriving li")).to_contain_text("来自甘井子区行政审批服务大厅")
        # Runs on their way here, whatever day they were sent (the list said 今日到达, and
        # showed runs sent days before: a README walk): each says when it was sent.
        await expect(street.locator("#arriving-title")).to_contain_text("待接收")
        await expect(street.locator("#arriving li small")).to_contain_text(
            re.compile(r"\d{1,2}/\d{1,2}\s\d{2}:\d{2} 发出")
        )
        await street.locator("#arriving li").get_by_role("button", name="按清单接收").click()
        await scan(street, code)
        await expect(street.locator("#receiving-list li.seen")).to_have_count(1)
        await street.click("#receive-confirm")
        await expect(street.locator("#scan-result")).to_have_text("已接收 1 件。")
        await expect(street.locator("#waiting li")).to_contain_text("下一站：前关社区驿站")
        await street.get_by_role("button", name="新建交接单 → 前关社区驿站").click()
        await expect(street.locator("#scan-mode")).to_contain_text("装入交接单")
        await scan(street, code)
        await expect(street.locator("#packing li")).to_contain_text("1 件")
        await snap(street, "logistics-street-packing")
        await street.locator("#packing li").get_by_role("button", name="发出").click()
        await expect(street.locator("#scan-result")).to_contain_text(
            "交接单已发往前关社区驿站（1 件）"
        )
        async with server.state.db.read() as session:
            item = await items.by_code(session, code)
            kinds = [e.kind for e in await items.events_of(session, item)]
        assert kinds == ["registered", "dispatched", "received", "handed_on"]
        assert item.status == "in_transit"


async def test_the_station_receives_shelves_and_hands_over(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        number = await concluded_case(server)
        code, pickup_code, run_code = await on_its_way_to_the_station(server, number)
        extra_body = "7" + "1" * 10
        extra = extra_body + codes.luhn_digit(extra_body)

        # An attendant of another station sees nothing of it and can do nothing with it.
        other = await new_page(browser, server.base_url)
        await sign_in(server, other, "/station", "hetao")
        await expect(other.locator("#arriving-empty")).to_be_visible()
        await scan(other, code)
        await expect(other.locator("#scan-result")).to_contain_text("不在本站")
        await snap(other, "logistics-station-0-other-station")

        page = await new_page(browser, server.base_url)
        await page.goto("/station")
        await expect(page.locator("#login h1")).to_have_text("驿站工作人员登录")
        await sign_in(server, page, "/station", "zhouyan")
        await expect(page.locator("#where")).to_contain_text("前关社区驿站")
        arriving = page.locator("#arriving li")
        await expect(arriving).to_have_count(1)
        await expect(arriving).to_contain_text("来自大连湾街道便民服务中心")
        assert await axe_violations(page, "logistics-station") == []
        await snap(page, "logistics-station-1-arriving")

        # Receive against the manifest: scanning the run's code opens it, then each item.
        await scan(page, run_code)
        await expect(page.locator("#receiving")).to_be_visible()
        await scan(page, code)
        await scan(page, extra)
        await expect(page.locator("#receiving-list li.seen")).to_have_count(1)
        await expect(page.locator("#receiving-extra")).to_contain_text(codes.grouped(extra))
        await snap(page, "logistics-station-2-receiving")
        await page.click("#receive-confirm")
        await expect(page.locator("#scan-result")).to_contain_text("已接收 1 件")
        await expect(page.locator("#scan-result")).to_contain_text("多件")

        await page.locator("#waiting li").get_by_role("button", name="上架待取").click()
        ready = page.locator("#ready li")
        await expect(ready).to_have_count(1)
        await expect(ready).to_contain_text("今日上架")
        await snap(page, "logistics-station-3-ready")

        # The resident at the station's kiosk: 我的材料/证照 by case number and phone digits.
        kiosk = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk)
        await kiosk.fill("#papers-number", number.replace("-", ""))
        await kiosk.fill("#papers-last4", "0000")
        await kiosk.locator("#papers-form button").click()
        await expect(kiosk.locator("#papers-error")).to_contain_text("没有找到")
        await kiosk.fill("#papers-last4", PHONE[-4:])
        await kiosk.locator("#papers-form button").click()
        paper = kiosk.locator("#papers-list li")
        await expect(paper).to_contain_text("待取件")
        await expect(paper).to_contain_text("已到前关社区驿站")
        # The pickup code on a line of its own, in large digits.
        await expect(paper.locator(".pickup-code strong")).to_have_text(pickup_code)
        assert await axe_violations(kiosk, "logistics-kiosk-papers") == []
        await snap(kiosk, "logistics-kiosk-papers")
        # In English the papers are said again at once (they stayed Chinese), and back.
        await kiosk.click("#lang")
        await expect(paper.locator(".badge")).to_have_text("Awaiting pickup")
        await expect(paper).not_to_contain_text("已到前关社区驿站")
        await expect(paper.locator(".pickup-code strong")).to_have_text(pickup_code)
        await kiosk.click("#lang")
        await expect(paper).to_contain_text("待取件")

        # Hand over: a wrong ID number is refused, then the right one with a signature.
        await ready.get_by_role("button", name="交付").click()
        dialog = page.locator("#handover")
        await expect(dialog).to_be_visible()
        # The signature box is named for a screen reader in the page's words (it was named by
        # its catalog key: set before the catalog loaded).
        await expect(dialog.get_by_role("img", name="请申请人在下框内手写签名")).to_be_visible()
        await dialog.locator("input[name=pickup_code]").fill(pickup_code)
        await dialog.locator("input[name=id_last4]").fill("0000")
        await dialog.get_by_role("button", name="核验并交付").click()
        await expect(page.locator("#handover-error")).to_have_text("请申请人先在框内签名。")
        box = await page.locator("#signature").bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + 40, box["y"] + 120)
        await page.mouse.down()
        for step in range(1, 30):
            await page.mouse.move(box["x"] + 40 + step * 14, box["y"] + 120 - (step % 6) * 12)
        await page.mouse.up()
        await expect(page.locator("#handover-error")).to_have_text("")  # signed: asked no more
        await dialog.get_by_role("button", name="核验并交付").click()
        await expect(page.locator("#handover-error")).to_contain_text("取件码或身份证号后四位不符")
        await dialog.locator("input[name=id_last4]").fill(ID_NUMBER[-4:])
        await snap(page, "logistics-station-4-handover")
        await dialog.get_by_role("button", name="核验并交付").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#scan-result")).to_contain_text("签名已保存")
        await expect(page.locator("#ready-empty")).to_be_visible()
        await snap(page, "logistics-station-5-handed-over")

        async with server.state.db.read() as session:
            item = await items.by_code(session, code)
            assert item.status == "picked_up" and item.signature_sha256
            assert item.case.status == "delivered"

        # The case page follows the certificate from the hall to the resident's hand.
        hall = await new_page(browser, server.base_url)
        await signed_in(server, hall, "zhaogang")
        await hall.goto(f"/cases/{number}")
        await expect(hall.locator("h1 .badge")).to_have_text("已送达")
        paper = hall.locator("article.paper")
        await expect(paper).to_contain_text("已取件")
        await expect(paper.locator("li")).to_have_count(7)
        await expect(paper.locator("li").last).to_contain_text("已取件 · 前关社区驿站")
        await paper.scroll_into_view_if_needed()
        await snap(hall, "logistics-case-page")


async def test_the_demo_papers_populate_the_pages_and_the_board(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        async with server.state.db.write() as session:
            await demo.seed_cases(session, "210211")
            made = await demo_items.seed_items(session, server.state.settings.data_dir)
            states = set((await session.scalars(select(TrackedItem.status))).all())
        assert made == 12
        assert states == set(logistics_states.STATES)  # every state, as the issue asks
        # Plausible dates: a paper shelved at a station was registered (a licence issued) after
        # its case was opened, days before it was shelved; today's pickup was issued days ago.
        async with server.state.db.read() as session:
            shelved = (
                await session.scalars(select(TrackedItem).where(TrackedItem.ready_at.is_not(None)))
            ).all()
            for item in shelved:
                assert item.ready_at is not None
                case = await session.get(Case, item.case_id)
                assert case is not None and case.created_at < item.created_at, (
                    item.description,
                    item.created_at,
                    item.ready_at,
                    case.created_at,
                    case.concluded_at,
                )
                assert item.ready_at - item.created_at >= timedelta(hours=12), item.description
                assert (case.concluded_at or case.created_at) <= item.created_at or (
                    item.kind != "certificate"
                ), item.description
                opened = datetime.strptime(case.number.split("-")[1], "%Y%m%d").date()
                assert opened < local_date(item.ready_at), (
                    case.number,
                    item.description,
                    item.ready_at,
                )
            # Every demo case is numbered for the day it was opened.
            for case in (await session.scalars(select(Case))).all():
                opened = datetime.strptime(case.number.split("-")[1], "%Y%m%d").date()
                assert opened == local_date(case.created_at), case.number

        page = await new_page(browser, server.base_url)
        await sign_in(server, page, "/station", "zhouyan")
        await expect(page.locator("#arriving li")).to_have_count(1)
        await expect(page.locator("#ready li")).to_have_count(2)
        await expect(page.locator("#ready li.late")).to_contain_text("已超期")
        await expect(page.locator("#waiting li")).to_have_count(1)
        await snap(page, "logistics-demo-station")

        desk = await new_page(browser, server.base_url)
        await desk.set_viewport_size({"width": 1920, "height": 1080})
        await sign_in(server, desk, "/logistics", "zhaogang")
        await expect(desk.locator("#waiting li")).to_have_count(1)  # a certificate still here
        await expect(desk.locator("#exceptions li")).to_have_count(1)  # the damaged originals
        await expect(desk.locator("#exceptions li")).to_contain_text("损坏")
        await snap(desk, "logistics-demo-desk")

        board = await new_page(browser, server.base_url)
        await board.set_viewport_size({"width": 1920, "height": 1080})
        await signed_in(server, board, "sunhua")
        await server.state.callcenter.check_warnings(utcnow())  # the warnings loop's pass
        await board.goto("/board")
        # The pickup was "now" while the hall is open, else when it last closed (a demo loaded
        # at night or at a weekend): only one of today counts among today's trips saved.
        async with server.state.db.read() as session:
            picked_at = await session.scalar(
                select(TrackedItem.finished_at).where(TrackedItem.status == "picked_up")
            )
        assert picked_at is not None and picked_at <= demo.sessions_end(utcnow())
        picked_today = local_date(picked_at) == local_date(utcnow())
        await expect(board.locator("#l-trips")).to_have_text("1" if picked_today else "0")
        await expect(board.locator("#l-awaiting")).to_have_text("2")
        await expect(board.locator("#l-overdue")).to_have_text("1")
        # Issued days before today's pickup: the median is days' worth of hours, not 0.
        hours = await board.locator("#l-hours").inner_text()
        if picked_today:
            assert re.fullmatch(r"\d+(\.\d)? 小时", hours) and float(hours.split()[0]) >= 24, hours
        else:
            assert hours == "—", hours
        await expect(board.locator("#l-hops li")).to_have_count(2)
        await expect(board.locator("#warnings")).to_contain_text("证照逾期未取")
        # The overdue licence's case was opened before it fell due, and it fell due before today.
        late = board.locator("#warnings li.group[data-kind=pickup_overdue] li[data-warning]")
        await expect(late).to_have_count(1)
        number = (await late.locator(".number").inner_text()).replace("\u2011", "-")
        due = re.search(r"(\d{4}-\d{2}-\d{2}) 到期", await late.inner_text())
        assert due, await late.inner_text()
        opened = datetime.strptime(number.split("-")[1], "%Y%m%d").date()
        assert opened < date.fromisoformat(due.group(1)) < local_date(utcnow()), (number, due)
        await snap(board, "logistics-demo-board")
