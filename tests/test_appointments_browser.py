"""Appointments and campaigns in Chromium: booking on /book (a holiday refused, a slot booked,
found and cancelled by code), checking in by code at the kiosk ahead of a walk-in (as the staff
console's queue shows), a campaign created, its roster refused then imported and scheduled,
and the demo's campaign under way (progress, burn-down, one-click rebook, the board).
Screenshots land in test-artifacts/appointments-*.png."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from playwright.async_api import Page, expect
from sqlalchemy import select

from cloudhelp.core.clock import utcnow
from cloudhelp.devtools import demo_campaign
from cloudhelp.store.models import Appointment
from tests.appointmentkit import (
    as_csv,
    as_xlsx,
    at,
    roster_rows,
    set_clock,
    supervisor,
    weekday_hours,
    with_three_bad_rows,
)
from tests.browserkit import ARTIFACTS, chromium, new_page, snap
from tests.callkit import running_server
from tests.journeykit import axe_violations, english_sentences
from tests.test_board_browser import signed_in
from tests.test_browser import enrolled_kiosk

MONDAY = date(2026, 6, 15)
HOLIDAY = date(2026, 6, 19)


async def checked(page: Page, label: str) -> None:
    """No critical or serious WCAG 2.2 AA violation (axe-core), no English on the zh-CN page."""
    assert await axe_violations(page, label) == []
    assert await english_sentences(page) == []


async def found_after_a_wrong_phone(page: Page, code: str, last4: str) -> None:
    """查找预约 with the code and a wrong phone ending: not found; with ``last4``: found."""
    await page.fill("#m-code", code)
    await page.fill("#m-last4", "0000")
    await page.click("#find-form button")
    await expect(page.locator("#banner")).to_contain_text("没有找到这个预约码")
    await page.fill("#m-last4", last4)
    await page.click("#find-form button")
    await expect(page.locator("#found-facts")).to_contain_text("已预约")


async def test_booking_a_slot_finding_and_cancelling_it(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        boss = await supervisor(server)
        await weekday_hours(server, boss, "DLW-QG", "09:00", "11:00", staff=1)
        set_clock(server, at(MONDAY - timedelta(days=3), "10:00"))
        page = await new_page(browser, server.base_url)
        await page.goto("/book")
        await expect(page.locator("#b-item")).to_have_value("NYNC-002")
        # The items listed under their departments.
        fishing = page.locator("#b-item optgroup[label='区农业农村局'] option[value='NYNC-002']")
        await expect(fishing).to_have_count(1)
        await page.select_option("#b-station", "DLW-QG")
        await page.fill("#b-date", HOLIDAY.isoformat())
        await page.click("#slot-form button")
        await expect(page.locator("#slots-state")).to_contain_text("不是工作日")
        await expect(page.locator("#slots button")).to_have_count(0)
        await page.fill("#b-date", MONDAY.isoformat())
        await page.click("#slot-form button")
        await expect(page.locator("#slots button")).to_have_count(12)
        await page.click("#slots button[data-time='09:10']")
        await page.fill("#b-name", "刘海生")
        await page.fill("#b-phone", "13812345678")
        # In English what the page drew from the server says so too, the slot still chosen
        # and what was typed kept (it stayed Chinese); and back.
        await page.click("#lang")
        await expect(page.locator("#slots-state")).to_contain_text("10-minute slots")
        await expect(page.locator("#slots button[data-time='09:10'] small")).to_have_text("1 left")
        await expect(page.locator("#chosen")).to_have_text("Chosen: 2026-06-15 09:10")
        await expect(page.locator("#b-name")).to_have_value("刘海生")
        await page.click("#lang")
        await expect(page.locator("#chosen")).to_have_text("已选：2026-06-15 09:10")
        await snap(page, "appointments-book-1-slot")
        await page.click("#person-form button")
        await expect(page.locator("#booked")).to_be_visible()
        code = (await page.locator("#done-code").text_content()) or ""
        assert len(code) == 9 and code[4] == "-"
        await expect(page.locator("#done-facts")).to_contain_text("2026-06-15 09:10–09:20")
        await snap(page, "appointments-book-2-booked")
        await checked(page, "appointments-book")
        async with server.state.db.read() as session:
            booked = await session.scalar(select(Appointment))
        assert booked is not None and booked.code == code.replace("-", "")
        # The slot shows as full now.
        await page.click("#slot-form button")
        await expect(page.locator("#slots button[data-time='09:10']")).to_be_disabled()
        # The same phone cannot book the item again while this appointment is to come.
        await page.click("#slots button[data-time='09:30']")
        await page.fill("#b-name", "刘海生")
        await page.fill("#b-phone", "13812345678")
        await page.click("#person-form button")
        await expect(page.locator("#banner")).to_contain_text("这个手机号已预约了该事项")
        # The slot stays chosen with what was typed (the form vanished: start again).
        await expect(page.locator("#person-form")).to_be_visible()
        await expect(page.locator("#b-name")).to_have_value("刘海生")
        await expect(page.locator("#slots button[data-time='09:30']")).to_have_attribute(
            "aria-pressed", "true"
        )
        await snap(page, "appointments-book-2b-already-booked")
        # A field typed wrong is said beside it, the field marked and focused (not a banner at
        # the window's top, far from the button pressed).
        await page.fill("#b-phone", "13812345679")
        await page.fill("#b-id", "210211196001011234")
        await page.click("#person-form button")
        await expect(page.locator("#person-error")).to_contain_text("身份证号")
        await expect(page.locator("#b-id")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#b-id")).to_be_focused()
        await page.fill("#b-id", "")
        await page.click("#person-form button")
        await expect(page.locator("#booked")).to_contain_text("09:30")
        await expect(page.locator("#person-error")).to_be_hidden()
        second = (await page.locator("#done-code").text_content()) or ""
        # A past day says its slots have gone, not that the station does not serve the item.
        set_clock(server, at(MONDAY, "11:30"))
        await page.click("#slot-form button")
        await expect(page.locator("#slots-state")).to_have_text(
            "这一天可约的时段都已过去，请选择以后的日期。"
        )
        set_clock(server, at(MONDAY - timedelta(days=3), "10:00"))
        # Found and cancelled by code and the phone's last four digits.
        await found_after_a_wrong_phone(page, code, "5678")
        await snap(page, "appointments-book-3-found")
        # One tap asks first (on a phone it cancelled at once); the second cancels.
        await page.click("#cancel")
        await expect(page.locator("#cancel")).to_have_text("确定取消这个预约？再按一次取消")
        await expect(page.locator("#banner")).to_be_hidden()
        await page.click("#cancel")
        await expect(page.locator("#banner")).to_contain_text("已取消")
        async with server.state.db.read() as session:
            row = await session.get(Appointment, booked.id)
        assert row is not None and row.status == "cancelled"

        # The resident comes back another day (a fresh page: nothing typed above) and moves the
        # second booking: 确认改约 did nothing there, stopped by the hidden name and phone.
        again = await new_page(browser, server.base_url)
        await again.set_viewport_size({"width": 390, "height": 844})
        await again.goto("/book")
        await expect(again.locator("#b-item")).to_have_value("NYNC-002")  # the page is ready
        await found_after_a_wrong_phone(again, second, "5679")
        await again.fill("#b-date", MONDAY.isoformat())
        await again.click("#slot-form button")
        await again.click("#slots button[data-time='09:50']")
        await expect(again.locator("#chosen")).to_contain_text("09:50")
        await again.click("#person-form button")
        await expect(again.locator("#booked")).to_contain_text("09:50")
        moved_code = (await again.locator("#done-code").text_content()) or ""
        assert len(moved_code) == 9 and moved_code != second
        # 改约或取消 below now holds the new code (the old one finds the booking as moved).
        await expect(again.locator("#m-code")).to_have_value(moved_code)
        await snap(again, "appointments-book-4-rebooked-on-a-phone")
        # In English the page fits the phone too (its top line ran past the screen's edge).
        await again.click("#lang")
        await expect(again.locator("#lang")).to_have_text("中文")
        assert await again.evaluate("document.documentElement.scrollWidth <= innerWidth")
        await snap(again, "appointments-book-4b-english-on-a-phone")
        await again.click("#lang")
        # What was refused before goes with a new search (it stayed over the page).
        await again.fill("#m-code", "9999-9999")
        await again.click("#find-form button")
        await expect(again.locator("#banner")).to_be_visible()
        await again.click("#slot-form button")
        await expect(again.locator("#banner")).to_be_hidden()


async def test_kiosk_check_in_goes_ahead_of_a_walk_in(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        boss = await supervisor(server)
        await weekday_hours(server, boss, "DLW-QG", "09:00", "11:00", staff=1)
        set_clock(server, at(MONDAY - timedelta(days=3), "10:00"))
        body = {"item": "NYNC-002", "station": "DLW-QG", "date": MONDAY.isoformat(),
                "time": "09:30", "name": "刘海生", "phone": "13812345678"}  # fmt: skip
        async with server.http.post("/api/v1/appointments", json=body) as r:
            code = (await r.json())["appointment"]["code"]
        # A walk-in for the same item is already waiting (another kiosk of the station).
        walk_in = await server.kiosk("QG-02")
        await walk_in.send({"type": "ticket.take", "item": "NYNC-002"})
        walk_ticket = (await walk_in.expect("ticket"))["ticket"]

        console = await new_page(browser, server.base_url)
        await console.set_viewport_size({"width": 1400, "height": 900})
        await signed_in(server, console, "zhaogang")  # away: the queue is only shown
        kiosk = await new_page(browser, server.base_url)
        await enrolled_kiosk(server, kiosk)
        # A made-up code: the kiosk asks only for the code, so its refusal names only the code
        # (the booking page's says "or the phone digits do not match").
        await kiosk.fill("#appointment-code", "9999-9999")
        await kiosk.click("#appointment-form button")
        await expect(kiosk.locator("#appointment-error")).to_have_text(
            "没有找到这个预约码，请核对预约单上的 8 位预约码。"
        )
        set_clock(server, at(MONDAY, "08:40"))  # too early: the window opens at 09:00
        await kiosk.fill("#appointment-code", code)
        await kiosk.click("#appointment-form button")
        await expect(kiosk.locator("#appointment-error")).to_contain_text(
            "还没到签到时间：2026-06-15 09:00 起可以签到"
        )
        await snap(kiosk, "appointments-kiosk-1-too-early")
        # Another of the home screen's forms used meanwhile: its answer alone is on screen.
        await kiosk.fill("#papers-number", "210211-20260615-0001")
        await kiosk.fill("#papers-last4", "0000")
        await kiosk.click("#papers-form button")
        await expect(kiosk.locator("#papers-error")).to_be_visible()
        await expect(kiosk.locator("#appointment-error")).to_be_hidden()
        set_clock(server, at(MONDAY, "09:25"))
        await kiosk.click("#appointment-form button")
        await expect(kiosk.locator("[data-screen=check]")).to_be_visible()
        # The code was accepted: the check screen says which appointment it found.
        await expect(kiosk.locator("#check-appointment")).to_be_visible()
        await expect(kiosk.locator("#check-appointment-time")).to_have_text(
            "2026-06-15 09:30–09:40"
        )
        await expect(kiosk.locator("#check-appointment")).to_contain_text("渔业捕捞许可证")
        await expect(kiosk.locator("#start-call")).to_be_enabled()
        await snap(kiosk, "appointments-kiosk-1b-found")
        await kiosk.click("#start-call")
        await expect(kiosk.locator("#wait-appointment")).to_be_visible()
        await expect(kiosk.locator("#wait-appointment-time")).to_have_text("2026-06-15 09:30–09:40")
        await expect(kiosk.locator("#ticket-number")).to_have_text("B002")
        await snap(kiosk, "appointments-kiosk-2-waiting")
        # The console's queue: the appointment first, marked, ahead of the earlier walk-in.
        items = console.locator("#queue li")
        await expect(items).to_have_count(2)
        await expect(items.nth(0)).to_contain_text("预约 09:30")
        assert await items.nth(1).get_attribute("data-ticket") == str(walk_ticket["id"])
        await snap(console, "appointments-kiosk-3-console-queue")
        # Available: the appointment rings first, and the ring says it is one.
        await console.click("#toggle-state")
        await expect(console.locator("#ring")).to_be_visible()
        await expect(console.locator("#ring-ticket")).to_have_text("B002")
        await expect(console.locator("#ring-case")).to_have_text("预约 09:30")
        await snap(console, "appointments-kiosk-4-console-ring")


async def test_a_campaign_from_the_pages(sqlite_demo_url: str, tmp_path: Path) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        set_clock(server, at(date(2026, 6, 1), "10:00"))
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1600, "height": 1000})
        await signed_in(server, page, "sunhua")
        await page.goto("/campaigns")
        await expect(page.locator("#empty")).to_be_visible()
        await page.fill("#c-name", "大连湾街道渔业捕捞许可证集中换发")
        await page.select_option("#c-street", "DLW")
        await expect(page.locator("#c-stations input")).to_have_count(2)
        await page.fill("#c-from", "2026-06-08")
        await page.fill("#c-to", "2026-06-29")
        # Items are ticks with a filter (no Ctrl on a touch screen); the fishing licence is
        # ticked to start with, and stays in view whatever the filter.
        fishing = page.locator("#c-item-list input[value=NYNC-002]")
        await expect(fishing).to_be_checked()
        chosen = page.locator("#c-items-chosen")
        await expect(chosen).to_have_text("已选 1 项：渔业捕捞许可证换发（延续）")
        await page.fill("#c-item-filter", "营业执照")
        shown = page.locator("#c-item-list label:visible")
        await expect(shown.filter(has_text="渔业捕捞许可证换发")).to_have_count(1)
        assert 1 < await shown.count() < await page.locator("#c-item-list label").count()
        await fishing.uncheck()
        await page.click("#new-campaign button")  # no item ticked: said under the list
        await expect(page.locator("#c-items-missing")).to_have_text("请至少勾选一个事项。")
        await fishing.check()
        await expect(page.locator("#c-items-missing")).to_be_hidden()
        await page.fill("#c-item-filter", "")
        await snap(page, "appointments-campaign-1-new")
        # The dates follow the name, not the long item list beside it (a walk found a
        # screen-high gap under 名称).
        name, starts = (
            await page.locator("#c-name").bounding_box(),
            await page.locator("#c-from").bounding_box(),
        )
        assert name and starts and starts["y"] - (name["y"] + name["height"]) < 80, (name, starts)
        await page.click("#new-campaign button")
        await page.wait_for_url("**/campaigns/*")
        await expect(page.locator("#facts")).to_contain_text("15 个工作日")
        await expect(page.locator("#not-come-empty")).to_have_text("还没有导入名单。")
        await expect(page.locator("#schedule-first")).to_be_hidden()  # nothing to schedule yet
        # The steps are numbered from 1, in the order they are taken.
        await expect(page.locator("section.step h2")).to_have_text(
            ["1. 服务时间与人数", "2. 导入名单", "3. 自动排期、预约单与提醒"]
        )
        # The hours, set on the page: weekdays at both stations, 棠梨 closed on 24 June. 前关
        # keeps the hall's lunch break the form fills in; 棠梨's is cleared (after a break
        # with one end only is refused, saying how).
        hours = page.locator("#hours tbody tr")
        await expect(hours).to_have_count(2)
        await expect(hours.nth(0)).to_contain_text("—")
        await expect(page.locator("#h-break-starts")).to_have_value("12:00")
        await expect(page.locator("#h-break-ends")).to_have_value("13:30")
        for station in ("DLW-QG", "DLW-TL"):
            await page.select_option("#h-station", station)
            await page.fill("#h-opens", "09:00")
            await page.fill("#h-closes", "16:00")
            await page.fill("#h-staff", "1")
            if station == "DLW-TL":
                await page.fill("#h-break-ends", "")
                await page.click("#hours-save")
                await expect(page.locator("#banner")).to_contain_text("午休时间不正确")
                await page.fill("#h-break-starts", "")
            await page.click("#hours-save")
            await expect(page.locator("#banner")).to_contain_text("服务时间已保存")
        await expect(hours.nth(0)).to_contain_text("09:00–12:00 13:30–16:00 × 1")
        await expect(hours.nth(1)).to_contain_text("09:00–16:00 × 1")
        # The form shows the chosen station's own hours (it kept what was typed last, for any
        # station: saving one changed figure overwrote the rest, a README walk found).
        await page.select_option("#h-station", "DLW-QG")
        await expect(page.locator("#h-break-starts")).to_have_value("12:00")
        await page.fill("#h-staff", "2")
        await page.select_option("#h-station", "DLW-TL")
        await expect(page.locator("#h-break-starts")).to_have_value("")
        await expect(page.locator("#h-staff")).to_have_value("1")
        # Friday mornings only at 棠梨 (hours of their own; the other days keep theirs), then
        # closed on Fridays; a save with no day ticked says so beside the buttons.
        days = page.locator("#h-days")
        await expect(days.locator("input:checked")).to_have_count(5)  # Monday to Friday
        for day in ("周一", "周二", "周三", "周四", "周五"):
            await days.get_by_label(day).uncheck()
        await page.click("#hours-save")
        await expect(page.locator("#h-days-error")).to_have_text("请至少勾选一天。")
        await days.get_by_label("周五").check()
        await expect(page.locator("#h-days-error")).to_be_hidden()
        await page.fill("#h-closes", "12:00")
        await page.click("#hours-save")
        friday, thursday = hours.nth(1).locator("td").nth(5), hours.nth(1).locator("td").nth(4)
        await expect(friday).to_have_text("09:00–12:00 × 1")
        await expect(thursday).to_have_text("09:00–16:00 × 1")
        answer = await page.request.get("/api/v1/capacity?department=NYNC&station=DLW-TL")
        week = {w["weekday"]: (w["opens"], w["closes"]) for w in (await answer.json())["week"]}
        assert week == {**dict.fromkeys(range(4), ("09:00", "16:00")), 4: ("09:00", "12:00")}
        await snap(page, "appointments-campaign-1c-friday-mornings")
        await page.click("#hours-close")  # 周五 still the only day ticked
        await expect(friday).to_have_text("—")
        await expect(thursday).to_have_text("09:00–16:00 × 1")
        # Monday to Friday again, as the campaign below plans with.
        for day in ("周一", "周二", "周三", "周四"):
            await days.get_by_label(day).check()
        await page.fill("#h-closes", "16:00")
        await page.click("#hours-save")
        await expect(friday).to_have_text("09:00–16:00 × 1")
        await page.fill("#h-closed", "2026-06-24")
        await page.click("#closed-form button")
        await expect(hours.nth(1)).to_contain_text("2026-06-24")
        await expect(hours.nth(0)).to_contain_text("09:00–12:00 13:30–16:00 × 1")
        await snap(page, "appointments-campaign-1b-hours")
        bad, good = tmp_path / "名单.csv", tmp_path / "名单-改正.xlsx"
        bad.write_bytes(as_csv(with_three_bad_rows(roster_rows())))
        good.write_bytes(as_xlsx(roster_rows()))
        await page.set_input_files("#roster-file", str(bad))
        await page.click("#roster-form button")
        rows = page.locator("#problems tbody tr")
        await expect(rows).to_have_count(3)
        await expect(rows.nth(0)).to_contain_text("第 10 行")
        await expect(rows.nth(0)).to_contain_text("身份证号")
        await expect(rows.nth(1)).to_contain_text("第 25 行")
        await expect(rows.nth(2)).to_contain_text("与第 12 行重复")
        await expect(page.locator("[data-count=entries] strong")).to_have_text("0")
        await snap(page, "appointments-campaign-2-roster-refused")
        await checked(page, "appointments-campaign-refused")
        await page.set_input_files("#roster-file", str(good))
        await page.click("#roster-form button")
        await expect(page.locator("[data-count=entries] strong")).to_have_text("69")
        await expect(page.locator("#problems-wrap")).to_be_hidden()
        # Before 自动排期 everyone is 未预约 with 一键预约: a line above the list says to press
        # 自动排期 first, and leads to it.
        waiting = page.locator("#not-come tbody tr")
        await expect(waiting).to_have_count(69)
        await expect(waiting.filter(has_text="未预约")).to_have_count(69)
        first = page.locator("#schedule-first")
        await expect(first).to_be_visible()
        await expect(first).to_contain_text("请先在上方第 3 步按“自动排期”")
        box = await first.bounding_box()
        table = await page.locator("#not-come").bounding_box()
        assert box and table and box["y"] + box["height"] <= table["y"], (box, table)
        await first.scroll_into_view_if_needed()
        await snap(page, "appointments-campaign-2b-schedule-first")
        await page.click("#schedule-first-link")
        await expect(page.locator("#schedule")).to_be_focused()
        await expect(page.locator("#schedule")).to_be_in_viewport()
        await page.click("#schedule")
        await expect(page.locator("[data-count=booked] strong")).to_have_text("69")
        async with server.state.db.read() as session:
            days = {
                (a.day, a.station.code) for a in (await session.scalars(select(Appointment))).all()
            }
        assert (date(2026, 6, 24), "DLW-TL") not in days and len(days) == 29
        await expect(page.locator("#slips")).to_be_visible()
        await expect(page.locator("#not-come tbody tr")).to_have_count(69)
        await expect(first).to_be_hidden()  # scheduled: nothing left to point to
        # Planned, the campaign runs: its figures come first, the set-up steps after them.
        order = await page.locator("#page > section").evaluate_all(
            "els => els.map((e) => e.id || e.querySelector('h2')?.dataset.i18n)"
        )
        assert order[:4] == ["counts", "campaigns.burn_down", "campaigns.not_come",
                             "campaigns.served"], order  # fmt: skip
        assert order.index("step-hours") > order.index("campaigns.served")
        await snap(page, "appointments-campaign-3-scheduled")
        await page.goto("/campaigns")
        await expect(page.locator("#list tbody tr")).to_have_count(1)
        await snap(page, "appointments-campaign-4-list")
        await checked(page, "appointments-campaign-list")


async def test_the_demo_campaign_under_way(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        now = utcnow()
        async with server.state.db.write() as session:
            assert await demo_campaign.seed_campaign(session, "210211", now) == 69
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1600, "height": 1000})
        await signed_in(server, page, "sunhua")
        await page.goto("/campaigns/1")
        served = page.locator("[data-count=served] strong")
        await expect(served).not_to_have_text("0")
        no_show = page.locator("#not-come .status-no_show")
        await expect(no_show).to_have_count(3)
        await expect(page.locator("#burn svg polyline.actual")).to_have_count(1)
        await expect(page.locator("#served tbody tr a").first).to_have_attribute(
            "href", re.compile(r"^/cases/210211-")
        )
        await snap(page, "appointments-campaign-5-under-way")
        await checked(page, "appointments-campaign-under-way")
        await page.screenshot(
            path=str(ARTIFACTS / "appointments-campaign-5-full.png"), full_page=True
        )
        missed = page.locator("#not-come tbody tr").filter(has=page.locator(".status-no_show"))
        button = missed.first.locator("button")
        entry = await button.get_attribute("data-entry")
        await button.scroll_into_view_if_needed()
        where = await button.bounding_box()  # on screen, where the pointer is
        await button.click()
        await expect(page.locator("#banner")).to_contain_text("已为")
        await expect(no_show).to_have_count(2)
        await expect(page.locator("[data-count=rescheduled] strong")).to_have_text("2")
        # The row stays where it was (a second tap is not the next person's), marked, and says
        # rebooked beside its status.
        moved = page.locator("#not-come tr.just-rebooked")
        await expect(moved).to_have_count(1)
        await expect(moved).to_contain_text("已预约（已改约）")
        assert await moved.locator("button").get_attribute("data-entry") == entry
        after = await moved.locator("button").bounding_box()
        assert where and after and abs(after["y"] - where["y"]) <= 1, (where, after)
        await snap(
            page,
            "appointments-campaign-6-rebooked",
        )
        # The page in English too.
        await page.click("#lang")
        await expect(page.locator("[data-count=served] span")).to_have_text("Served")
        await expect(page.locator("#hours th").nth(1)).to_have_text("Mon")
        await snap(page, "appointments-campaign-7-english")
        await page.click("#lang")
        await page.goto("/board")
        await expect(page.locator("#campaigns li")).to_have_count(1)
        await snap(page, "appointments-board")
        await page.goto("/reports")
        await expect(page.locator("#table-campaigns tbody tr")).to_have_count(1)
        await page.locator("#campaigns-card").scroll_into_view_if_needed()
        await snap(page, "appointments-reports")
