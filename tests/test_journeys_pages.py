"""Every page of the demo, as each role reaches it: axe-core (WCAG 2.2 AA) and no English on zh-CN.

One demo server (scripts/demo.sh's state, tests/journeykit.py) for the module: these pages are
only looked at. Critical and serious axe violations and English runs are listed page by page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from tests.browserkit import ARTIFACTS
from tests.journeykit import (
    DemoServer,
    axe_violations,
    browser,
    demo_server,
    english_in,
    english_sentences,
    open_page,
    printed_enrol_codes,
    sign_in_staff,
)
from tests.test_journeys import FISHING_RENEWAL, case_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("demo-pages")) as running:
        yield running


async def look_at(page: Page, label: str, problems: list[str]) -> None:
    """Photograph the page, then list its axe violations and English runs."""
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(ARTIFACTS / f"journey-7-{label}.png"))
    problems += [f"{label}: axe {p}" for p in await axe_violations(page, f"7-{label}")]
    problems += [f"{label}: English {p}" for p in await english_sentences(page)]


async def test_journey_7_every_page_passes_axe_and_speaks_chinese(server: DemoServer) -> None:
    """Signed-out pages, cases, notice, board, reports, follow-ups.

    The kiosk's screens, the console, the case page and the board during a call are checked on
    the way through journeys 1–6 (``Journey.check``).
    """
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    case_number = (await case_of(server, "correction_needed", "王德福"))["number"]
    async with browser() as chromium:
        visitor = await open_page(chromium, server, 1366, 768)
        for path, label in [
            ("/", "home"), ("/catalog", "catalog"), (f"/catalog/{FISHING_RENEWAL}", "item"),
            ("/staff", "staff-signin"), ("/board", "board-signed-out"),
            ("/reports", "reports-signed-out"), ("/cases", "cases-signed-out"),
            ("/kiosk", "kiosk-enrol"),
        ]:  # fmt: skip
            await visitor.goto(path)
            await look_at(visitor, label, problems)

        supervisor = await open_page(chromium, server, 1920, 1080)
        await sign_in_staff(supervisor, "sunhua", available=False)
        for path, label in [
            ("/cases", "cases"), (f"/notices/{case_number}/1", "notice"), ("/board", "board"),
            ("/reports", "reports"),
        ]:  # fmt: skip
            await supervisor.goto(path)
            await look_at(supervisor, label, problems)
        # The wall screen holds the whole demo board (its campaign, papers and warnings) without
        # scrolling, and so does a 1600x900 monitor (before: 1,246 and 1,304 px tall).
        await supervisor.goto("/board")
        await expect(supervisor.locator("#campaigns-panel")).to_be_visible()
        await expect(supervisor.locator("#l-hops li").first).to_be_visible()
        for width, height in ((1600, 900), (1920, 1080)):
            await supervisor.set_viewport_size({"width": width, "height": height})
            tall = await supervisor.evaluate("document.documentElement.scrollHeight")
            assert tall <= height, (width, height, tall)
            await supervisor.screenshot(path=str(ARTIFACTS / f"journey-7-board-{width}.png"))
        # The follow-up page (差评回访), wherever the board links it.
        await supervisor.get_by_role("link", name=re.compile("回访")).first.click()
        await look_at(supervisor, "follow-ups", problems)
    assert not problems, f"{len(problems)} page problems:\n" + "\n".join(problems)


def test_english_scanner_flags_sentences_not_codes() -> None:
    """The scanner the journeys use: English runs and raw codes yes; codes, names, units no."""
    assert english_in("Network error, please retry.") == ["Network error, please retry"]
    assert english_in("网络错误：Ticket could not be taken") == ["Ticket could not be taken"]
    assert english_in("needs_correction · kiosk_hangup") == ["needs_correction", "kiosk_hangup"]
    assert english_in("enqueued → offered → connected") == ["enqueued → offered → connected"]
    assert english_in("kiosk.wait.soon") == ["kiosk.wait.soon"]
    assert english_in("Finish wrap-up") == ["Finish wrap-up"]
    assert english_in("Files I sent") == ["Files I sent"]
    assert english_in("返回：Returning in 15 s") == ["Returning in 15 s"]
    for fine in [
        "排队号 B001", "NYNC-002 · 渔业捕捞许可证换发（延续）", "赵刚（zhaogang）",
        "CloudHelp 云帮办", "营业执照.jpg 5 MiB", "前关驿站 · QG-01", "English", "PDF 下载",
        "http://127.0.0.1:8080/kiosk", "210211-20261202-0002", "导出 Excel CSV",
        "请向驿站工作人员索取新的登记码（cloudhelp kiosk enrol）。", "QG-01 前关", "B001-B009",
    ]:  # fmt: skip
        assert english_in(fine) == [], fine


def test_enrolment_codes_are_read_from_printed_lines() -> None:
    printed = "  Kiosk enrolment codes (one-time, 24 h):\n    DLW-01   9QL2-WMYB\n" + (
        "    QG-01    http://127.0.0.1:8080/kiosk?enrol=QX8M-RT2L\n"
    )
    assert printed_enrol_codes(printed) == {"DLW-01": "9QL2-WMYB", "QG-01": "QX8M-RT2L"}
