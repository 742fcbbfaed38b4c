"""The supervisor board and the report pages in headless Chromium, through the real server."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

import openpyxl
import pytest
from playwright.async_api import Page, expect

from cloudhelp import accounts, history
from cloudhelp.models import utcnow
from cloudhelp.queue import LOCAL_TZ
from tests.browserkit import chromium, new_page, snap
from tests.callkit import DEMO_PASSWORD, CallServer, running_server
from tests.test_call_core import answer, take_ticket

pytestmark = pytest.mark.timeout(240)


async def signed_in(server: CallServer, page: Page, username: str) -> None:
    async with server.state.db.write() as session:
        await accounts.set_password(session, username, DEMO_PASSWORD)
    await page.goto("/staff")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-form button")
    await expect(page.locator("#state")).to_have_text("暂离")


async def test_the_board_follows_the_hall_live(sqlite_demo_url: str) -> None:
    async with (
        running_server(sqlite_demo_url, warning_check_seconds=3600) as server,
        chromium() as browser,
    ):
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1600, "height": 900})
        await page.goto("/board")
        await expect(page.locator("#signin")).to_be_visible()  # not signed in: told what to do
        await signed_in(server, page, "sunhua")
        await page.goto("/board")
        rows = page.locator("#departments tr")
        await expect(rows).to_have_count(7)
        fishing = rows.filter(has_text="农业农村")
        await expect(fishing.locator("td").nth(1)).to_have_text("0")

        # A resident calls: the board shows the waiting ticket without a reload.
        staff = await server.staff("zhaogang", available=False)
        kiosk = await server.kiosk()
        await take_ticket(kiosk, "NYNC-002")
        await expect(fishing.locator("td").nth(1)).to_have_text("1")
        await staff.send({"type": "staff.status", "status": "available"})
        await answer(staff)
        await kiosk.expect("joined")
        await expect(page.locator("#calls li")).to_have_count(1)
        await expect(page.locator("#calls li")).to_contain_text("赵刚")
        await expect(fishing.locator("td").nth(1)).to_have_text("0")
        await expect(page.locator("#staff li").filter(has_text="赵刚")).to_contain_text("通话中")

        # Half an hour later the call is still going: a warning is raised and acknowledged.
        await server.state.callcenter.check_warnings(utcnow() + timedelta(seconds=1900))
        warning = page.locator("#warnings li")
        await expect(warning).to_have_count(1)
        await expect(warning).to_contain_text("通话超时")
        await expect(warning).to_contain_text("渔业捕捞许可证换发")
        await snap(page, "board-1-live-warning")
        await warning.locator("button").click()
        await expect(warning).to_contain_text("孙华 已知悉")

        await kiosk.send({"type": "call.hangup"})
        await staff.expect("wrapup")
        await server.state.callcenter.check_warnings(utcnow())
        await expect(page.locator("#warnings li")).to_have_count(0)
        await expect(page.locator("#warnings-count")).to_be_hidden()  # no empty red badge
        await expect(page.locator("#calls li")).to_have_count(0)
        await snap(page, "board-2-after-call")

        await page.click("#lang")
        await expect(page.locator("#warnings-empty")).to_have_text("No time-out warnings.")
        await snap(page, "board-3-english")


async def test_reports_draw_charts_and_export_what_they_show(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        midnight = datetime.combine(datetime.now(LOCAL_TZ).date(), time(), LOCAL_TZ)
        made = await history.generate(server.state.db, 30, tickets_per_day=60, until=midnight)
        assert made > 500
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1400, "height": 900})
        await signed_in(server, page, "sunhua")
        last = midnight.date() - timedelta(days=1)
        await page.goto(f"/reports?from={last - timedelta(days=29)}&to={last}")
        await expect(page.locator("#table-station tr").nth(1)).to_be_visible()
        for chart in ("#chart-trend", "#chart-peak", "#chart-hot"):
            await expect(page.locator(f"{chart} canvas")).to_have_count(1)
        await expect(page.locator(".kpi").first).to_contain_text("取号")
        report = await page.evaluate("window.cloudhelp.report")
        assert report["total"]["tickets"] == made  # 30 days of history end yesterday
        assert sum(map(sum, report["peak_hours"])) == made
        await snap(page, "reports-1-top")
        await page.locator("#chart-peak").scroll_into_view_if_needed()
        await snap(page, "reports-2-peak-hours-and-hot-items")
        await page.locator("#table-staff").scroll_into_view_if_needed()
        await snap(page, "reports-3-tables")

        # The station table's CSV link gives the rows the page shows.
        href = await page.locator("a.csv[data-by=station]").get_attribute("href")
        assert href
        response = await page.request.get(href)
        rows = list(csv.DictReader(io.StringIO((await response.text()).lstrip("\ufeff"))))
        shown = report["tables"]["station"]
        assert [r["驿站编码"] for r in rows] == [r["station"] for r in shown]
        assert [int(r["取号"]) for r in rows] == [r["tickets"] for r in shown]
        assert sum(int(r["取号"]) for r in rows) == made
        for line, figures in zip(rows, shown, strict=True):  # rounded as the page shows them
            rate = figures["good_rate"]
            assert line["好评率"] == ("" if rate is None else f"{rate * 100:.1f}%")

        # One Excel workbook holds every table, headed in Chinese, with the page's numbers.
        href = await page.locator("#xlsx").get_attribute("href")
        assert href
        response = await page.request.get(href)
        book = openpyxl.load_workbook(io.BytesIO(await response.body()))
        assert book.sheetnames == [
            "按日", "按部门", "按驿站", "按坐席", "按事项",
            "高峰时段", "热门事项", "临期与超期办件",
        ]  # fmt: skip
        stations = list(book["按驿站"].iter_rows(values_only=True))
        assert stations[0][:4] == ("驿站编码", "名称", "取号", "接通")
        assert [(r[0], r[2]) for r in stations[1:]] == [(r["station"], r["tickets"]) for r in shown]
        assert stations[0][6] == "放弃率" and book["按驿站"]["G2"].number_format == "0.0%"
        assert (
            sum(sum(r[1:]) for r in book["高峰时段"].iter_rows(min_row=2, values_only=True)) == made
        )

        # The board of a district with a history: late follow-ups and cases due soon or overdue.
        assert await server.state.callcenter.check_warnings()
        await page.goto("/board")
        await expect(page.locator("#warnings li").first).to_be_visible()
        await snap(page, "board-4-with-history")
        await page.goto("/reports")

        # A range the server refuses is explained on the page.
        await page.fill("#from", "2026-01-01")
        await page.fill("#to", "2025-01-01")
        await page.click("#range button.primary")
        await expect(page.locator("#banner")).to_contain_text("'from' must not be after 'to'")
