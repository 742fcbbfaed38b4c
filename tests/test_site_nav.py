"""The header nav of signed-in pages: each role sees the pages it may open, on every page."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from cloudhelp.devtools import demo
from cloudhelp.domain.accounts import STAFF_COOKIE
from tests.browserkit import chromium, new_page, snap
from tests.callkit import DEMO_PASSWORD, running_server, until
from tests.test_board_browser import signed_in
from tests.test_deadlines import presence_of
from tests.test_logistics_browser import sign_in

# How the header bar lies: how many rows its parts make (by their vertical centres), whether
# the page scrolls sideways, and the nav links not wholly on screen.
BAR_ROWS = """() => {
  const bar = document.querySelector(".topbar");
  const parts = [...bar.querySelectorAll(":scope > :not(.site-nav), .site-nav > a, .signout > *")]
    .filter((el) => el.getClientRects().length > 0);
  const centres = [];
  for (const el of parts) {
    const r = el.getBoundingClientRect();
    const centre = r.top + r.height / 2;
    if (!centres.some((c) => Math.abs(c - centre) < 6)) centres.push(centre);
  }
  const cut = [...bar.querySelectorAll(".site-nav > a:not([hidden])")].filter((a) => {
    const r = a.getBoundingClientRect();
    return r.left < 0 || r.right > innerWidth;
  }).map((a) => a.textContent);
  return { rows: centres.length, sideways: document.documentElement.scrollWidth > innerWidth, cut };
}"""


async def bar_fits_one_row(page: Page, name: str) -> None:
    """At 1600 px (a monitor) and at 1366 and 1280 px (laptops) the page's header is one row
    with every nav link on screen; then back to the test's 1600×900."""
    for width in (1600, 1366, 1280):
        await page.set_viewport_size({"width": width, "height": 900 if width == 1600 else 768})
        bar = await page.evaluate(BAR_ROWS)
        assert bar == {"rows": 1, "sideways": False, "cut": []}, (name, width, bar)
        await expect(page.locator("#site-nav a:visible")).to_have_text(SUPERVISOR_PAGES)
        await snap(page, f"nav-{name}-{width}")
    await page.set_viewport_size({"width": 1600, "height": 900})


SUPERVISOR_PAGES = ["坐席工作台", "效能监控", "效能报表", "差评回访", "办件查询", "集中办理",
                    "审计日志", "物流交接台"]  # fmt: skip
STAFF_PAGES = ["坐席工作台", "办件查询", "物流交接台"]


async def test_a_visitor_with_no_session_is_asked_to_sign_in_and_nothing_fails(
    sqlite_demo_url: str,
) -> None:
    """Every page behind a sign-in, opened with no sign-in cookie, shows its sign-in card and
    asks no /api/v1/auth/me (whose 401 every such page logged as a failed resource): the page
    says whether the browser had a session cookie at all. A stale cookie is still asked about."""
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        page = await new_page(browser, server.base_url)
        asked: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/auth/me" in r.url else None)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        for path, card in (("/staff", "#login"), ("/board", "#signin"), ("/reports", "#signin"),
                           ("/follow-ups", "#signin"), ("/campaigns", "#signin"),
                           ("/logistics", "#login"), ("/station", "#login")):  # fmt: skip
            await page.goto(path)
            await expect(page.locator(card)).to_be_visible()
            await expect(page.locator("#site-nav")).to_be_hidden()
        assert asked == [] and errors == [], (asked, errors)
        await page.context.add_cookies(
            [{"name": STAFF_COOKIE, "value": "signed-out-long-ago", "url": server.base_url}]
        )
        for path, card in (("/staff", "#login"), ("/board", "#signin")):
            await page.goto(path)
            await expect(page.locator(card)).to_be_visible()
        assert len(asked) == 2, asked


async def test_supervisor_reaches_every_page_from_the_console(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        async with server.state.db.write() as session:
            await demo.seed_cases(session, "210211")
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1600, "height": 900})
        await signed_in(server, page, "sunhua")
        nav = page.locator("#site-nav")
        await expect(nav.locator("a:visible")).to_have_text(SUPERVISOR_PAGES)
        await expect(nav.locator("a[aria-current=page]")).to_have_text("坐席工作台")
        # No item nor department of her own: the console says no call will come, not 等待来电.
        await expect(page.locator("#idle")).to_contain_text("没有负责的服务事项或部门")
        await expect(page.locator("#toggle-state")).to_be_hidden()  # no 开始接听 for no calls
        await snap(page, "nav-1-console-supervisor")
        await expect(page).to_have_title("坐席工作台 · 云帮办")
        # The console's bar (who is signed in, state, eight pages) fits a laptop's
        # width in one row, and so does the logistics desk's (below).
        await bar_fits_one_row(page, "console")
        await expect(page.locator("#me")).to_have_attribute("title", "孙华（sunhua）")
        # Every page leads on: the board, reports, follow-ups, cases, a case, the audit trail.
        for name, path in (("效能监控", "/board"), ("效能报表", "/reports"),
                           ("差评回访", "/follow-ups"), ("办件查询", "/cases"),
                           ("集中办理", "/campaigns"), ("审计日志", "/audit"),
                           ("物流交接台", "/logistics")):  # fmt: skip
            await nav.get_by_role("link", name=name).click()
            await page.wait_for_url(f"**{path}")
            nav = page.locator("#site-nav")
            await expect(nav.locator("a:visible")).to_have_text(SUPERVISOR_PAGES)
            await expect(nav.locator("a[aria-current=page]")).to_have_text(name)
            # The header names the page the supervisor is on, not only the service.
            await expect(page.locator(".topbar .brand")).to_have_text(f"云{name}")
            await expect(page).to_have_title(f"{name} · 云帮办")  # every tab: page first
            await expect(page.locator("#logout")).to_be_visible()  # 退出 on every page
            await snap(page, f"nav-{path.strip('/')}")
            if path == "/logistics":
                await expect(page.locator("#where")).to_contain_text("孙华")
                await bar_fits_one_row(page, "logistics")
            if path == "/board":  # on a laptop too (退出 wrapped alone; the clock gives way)
                await bar_fits_one_row(page, "board")
        await page.goto("/cases")
        await page.locator("tbody a").first.click()
        await page.wait_for_url("**/cases/*")
        case_path = urlsplit(page.url).path
        await expect(page.locator("#site-nav a:visible")).to_have_text(SUPERVISOR_PAGES)
        await snap(page, "nav-case")
        # 退出 on a page without script: signed out, sent back to the case, which (for staff
        # only) asks to sign in.
        await page.locator("#logout").click()
        await page.wait_for_url(f"**/staff?next={case_path}")
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("#login .signed-out")).to_have_text("已退出登录。")
        await expect(page.locator("#site-nav")).to_be_hidden()
        await expect(page.locator("#logout")).to_be_hidden()
        await snap(page, "nav-case-signed-out")
        await page.reload()  # said once, by the page 退出 went back to
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("#login .signed-out")).to_have_count(0)
        assert (await page.request.get("/api/v1/auth/me")).status == 401
        # Signing in there goes back to the case (it went to the console; a README walk).
        await page.fill("#username", "sunhua")
        await page.fill("#password", DEMO_PASSWORD)
        await page.click("#login-form button")
        await page.wait_for_url(lambda url: urlsplit(url).path == case_path)
        await expect(page.locator("#site-nav a:visible")).to_have_text(SUPERVISOR_PAGES)
        # So do the case list and the audit trail, opened signed out.
        for path in ("/cases", "/audit"):
            await page.context.clear_cookies()
            await page.goto(path)
            await expect(page.locator("#login")).to_be_visible()
            await page.fill("#username", "sunhua")
            await page.fill("#password", DEMO_PASSWORD)
            await page.click("#login-form button")
            await page.wait_for_url(lambda url, path=path: urlsplit(url).path == path)


async def test_signing_out_of_the_board_and_the_console(sqlite_demo_url: str) -> None:
    """退出 on a script page: the board asks to sign in again; so does the console, whose
    staff member leaves the queue (offline)."""
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1600, "height": 900})
        await signed_in(server, page, "sunhua")
        await page.goto("/board")
        await expect(page.locator("#wall")).to_be_visible()
        async with page.expect_navigation():
            await page.locator("#logout").click()
        await expect(page.locator("#signin")).to_be_visible()
        await expect(page.locator("#signin .signed-out")).to_have_text("已退出登录。")
        # Said of any supervisor page, not of the board and reports only.
        await expect(page.locator("#signin p:not(.signed-out)")).to_have_text(
            "本页面供值班长与管理人员使用。请在坐席页面用值班长账号登录后再打开本页。"
        )
        await expect(page.locator("#wall")).to_be_hidden()
        await expect(page.locator("#logout")).to_be_hidden()
        await snap(page, "nav-board-signed-out")
        await signed_in(server, page, "zhaogang")
        await page.click("#toggle-state")
        await expect(page.locator("#state")).to_have_text("可接听")
        async with page.expect_navigation():  # the form's POST, then back to /staff
            await page.locator("#logout").click()
        await expect(page.locator("#login")).to_be_visible()
        await expect(page.locator("#login .signed-out")).to_be_visible()
        await expect(page.locator("#logout")).to_be_hidden()

        async def offline() -> bool:
            return (await presence_of(server, "zhaogang")).state == "offline"

        await until(offline, what="zhaogang offline after 退出")


async def test_staff_see_only_their_pages(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        page = await new_page(browser, server.base_url)
        await signed_in(server, page, "zhaogang")
        await expect(page.locator("#site-nav a:visible")).to_have_text(STAFF_PAGES)
        await page.goto("/cases")
        await expect(page.locator("#site-nav a:visible")).to_have_text(STAFF_PAGES)
        await page.goto("/")  # a public page has no nav
        await expect(page.locator("#site-nav")).to_have_count(0)


async def test_a_station_attendant_sees_only_the_station_desk(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        page = await new_page(browser, server.base_url)
        await sign_in(server, page, "/station", "zhouyan")
        await expect(page.locator("#site-nav a:visible")).to_have_text(["驿站收发"])
        await page.goto("/logistics")  # the hall's desk is not theirs: said so, nothing shown
        await expect(page.locator("#login-error")).to_contain_text("驿站收发")
        await expect(page.locator("#desk")).to_be_hidden()
