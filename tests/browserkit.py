"""Headless Chromium for page tests: real WebRTC between pages on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# The fake camera at 15 fps (a document camera's rate; the quality thresholds call 12 and up
# good): against Chromium's default, a browser call test costs ~23 % less of Chromium's CPU,
# which is most of the suite's on two cores.
FAKE_DEVICES = "--use-fake-device-for-media-stream=fps=15"
# Camera, microphone and screen prompts accepted as a person would (``chromium(fake_ui=True)``).
FAKE_UI = ["--use-fake-ui-for-media-stream", "--auto-accept-this-tab-capture"]
INSECURE_AS_SECURE = "--unsafely-treat-insecure-origin-as-secure"
# How long a page's action, navigation or request may take before the test gives up.
PAGE_TIMEOUT_MS = 60_000
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    FAKE_DEVICES,
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


# An init script: every text the page's #banner shows, in order (window.__banners), for
# banners too short-lived for polling to be sure to see.
BANNER_RECORDER = """
window.__banners = [];
document.addEventListener("DOMContentLoaded", () => {
  const banner = document.getElementById("banner");
  if (!banner) return;  // a frame in the page (the notice's) has none
  new MutationObserver(() => {
    if (!banner.hidden && banner.textContent) window.__banners.push(banner.textContent);
  }).observe(banner, { attributes: true, childList: true, characterData: true, subtree: true });
});
"""


def chromium_path(full: bool = False) -> str:
    """The Chromium to run: ``CLOUDHELP_TEST_CHROMIUM`` (scripts/test.sh: the headless shell,
    the lighter one), or with ``full`` ``CLOUDHELP_TEST_CHROMIUM_FULL``, the browser itself.

    What the headless shell lacks (each seen failing a test): permission prompts (without
    ``FAKE_UI`` every getUserMedia is NotSupportedError, whatever the context was granted),
    the PDF viewer, and --unsafely-treat-insecure-origin-as-secure (such a page is no secure
    context: no camera).
    """
    name = "CLOUDHELP_TEST_CHROMIUM_FULL" if full else "CLOUDHELP_TEST_CHROMIUM"
    path = os.environ.get(name) or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: run the suite with `bash scripts/test.sh`.")
    return path


def _needs_full(flags: Sequence[str]) -> bool:
    return FAKE_UI[0] not in flags or any(f.startswith(INSECURE_AS_SECURE) for f in flags)


# Headless shells that accept every device prompt (``FAKE_UI``): their contexts are granted
# camera and microphone too (``new_page``). That changes nothing a page sees of its devices, but
# the headless shell lists a page's network interfaces (loopback included, with
# --allow-loopback-in-peer-connection) for WebRTC only when the page holds a media permission
# of the context: without it, in the test namespace (loopback alone), a call had no candidates.
_accepting: weakref.WeakSet[Browser] = weakref.WeakSet()


@dataclass
class _Shared:
    """The worker's Playwright driver and its browsers, one per command line (executable, then
    flags), all bound to the worker's session event loop."""

    loop: asyncio.AbstractEventLoop
    playwright: Playwright | None = None
    browsers: dict[tuple[str, ...], Browser] = field(default_factory=dict)
    lent: set[tuple[str, ...]] = field(default_factory=set)


_shared: _Shared | None = None
# Uncaught exceptions in the pages of the browser in use (``watch``): a test whose pages threw
# fails, even when what it checks on screen looked right (a listener that throws leaves the
# page half-updated: a frozen call screen passed its test once).
_page_errors: list[str] = []


@asynccontextmanager
async def worker_browsers() -> AsyncIterator[None]:
    """Keep the browsers of tests run in this event loop (tests/conftest.py: the worker's session
    loop) open from one test to the next; closed, with Playwright's driver, on exit."""
    global _shared
    shared = _shared = _Shared(asyncio.get_running_loop())
    try:
        yield
    finally:
        _shared = None
        for browser in shared.browsers.values():
            with suppress(PlaywrightError):
                await browser.close()
        if shared.playwright is not None:
            await shared.playwright.stop()


def session_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop whose tests share the worker's browsers (None outside ``worker_browsers``)."""
    return _shared.loop if _shared is not None else None


async def _launch(playwright: Playwright, command: tuple[str, ...]) -> Browser:
    executable, *flags = command
    browser = await playwright.chromium.launch(executable_path=executable, args=flags)
    if FAKE_UI[0] in flags and "headless-shell" in Path(executable).name:
        _accepting.add(browser)
    return browser


async def _take_shared(command: tuple[str, ...]) -> Browser | None:
    """The worker's browser run as ``command`` (launched on first use, or again if it died), or
    None outside the worker's session loop or while a test already holds that browser."""
    shared = _shared
    if shared is None or shared.loop is not asyncio.get_running_loop() or command in shared.lent:
        return None
    browser = shared.browsers.get(command)
    if browser is None or not browser.is_connected():
        if shared.playwright is None:
            shared.playwright = await async_playwright().start()
        browser = shared.browsers[command] = await _launch(shared.playwright, command)
    shared.lent.add(command)
    return browser


async def _give_back(command: tuple[str, ...], browser: Browser) -> None:
    """Close every context the test opened: the next test starts with no cookies, storage or
    permissions. A browser that died, or fails to close a context, is dropped (the next test
    launches another)."""
    shared = _shared
    if shared is None:
        return
    shared.lent.discard(command)
    if not browser.is_connected():
        shared.browsers.pop(command, None)
        return
    try:
        for context in browser.contexts:
            await context.close()
    except BaseException:
        shared.browsers.pop(command, None)
        with suppress(PlaywrightError):
            await browser.close()
        raise


@asynccontextmanager
async def browser_with(
    flags: Sequence[str], executable: str | None = None, full: bool = False
) -> AsyncIterator[Browser]:
    """Headless Chromium started with ``flags``: the headless shell, or the full browser when
    ``full`` or the flags need it (``chromium_path``). In the worker's session loop
    (tests/conftest.py runs every test that opens a browser there) and with Chromium itself: the
    worker's browser with this command line, launched once; the test opens its pages in contexts
    of their own (``new_page``) and every context is closed on exit. Elsewhere, or with
    ``executable``, a browser of its own. A failing test's pages are saved as screenshots
    (``_snap_failure``)."""
    _page_errors.clear()
    command = (executable or chromium_path(full or _needs_full(flags)), *flags)
    shared = await _take_shared(command) if executable is None else None
    if shared is not None:
        try:
            yield shared
            _fail_on_page_errors()
        except BaseException:
            await _snap_failure(shared)
            raise
        finally:
            await _give_back(command, shared)
        return
    async with async_playwright() as playwright:
        browser = await _launch(playwright, command)
        try:
            yield browser
            _fail_on_page_errors()
        except BaseException:
            await _snap_failure(browser)
            raise
        finally:
            await browser.close()


@asynccontextmanager
async def chromium(
    fake_ui: bool = True,
    extra_flags: Sequence[str] = (),
    executable: str | None = None,
    full: bool = False,
) -> AsyncIterator[Browser]:
    """``fake_ui`` accepts camera, microphone and screen prompts as a person would;
    ``extra_flags`` are added (tests/tlskit.py: trust a test CA); ``executable`` runs instead
    of Chromium itself (tests/netkit.py: a wrapper that starts it in a host's namespace);
    ``full``: the full browser, not the headless shell (``chromium_path``). See
    ``browser_with`` for when the browser is the worker's shared one."""
    flags = [*FLAGS, *FAKE_UI] if fake_ui else list(FLAGS)
    flags += extra_flags
    async with browser_with(flags, executable, full) as browser:
        yield browser


async def _snap_failure(browser: Browser) -> None:
    """A test failed with pages open: each page as it was, for the person reading the failure
    (test-artifacts/failed-{test}-{n}.png, named on stderr). Best effort: never hides the error."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "test").split("::")[-1].split(" ")[0]
    pages = [page for context in browser.contexts for page in context.pages]
    for n, page in enumerate(pages, 1):
        path = ARTIFACTS / f"failed-{test}-{n}.png"
        try:
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=path, timeout=5000)
            print(f"failure screenshot: {path} ({page.url})", file=sys.stderr)
        except Exception as exc:  # the browser itself may be what failed
            print(f"no failure screenshot of {page.url}: {exc}", file=sys.stderr)


async def new_page(
    browser: Browser,
    base_url: str,
    timezone: str = "Asia/Shanghai",
    width: int = 1280,
    height: int = 720,
) -> Page:
    """A page in a context of its own (own cookies and storage), zh-CN; ``timezone``: the
    browser's clock (the district's by default, whatever the machine's)."""
    context = await browser.new_context(
        base_url=base_url,
        # Playwright's wait_for_function evals its predicate and axe is injected as an inline
        # script: both need CSP bypassed. The pages themselves are checked under the real CSP
        # in tests/test_security_headers.py.
        bypass_csp=True,
        viewport={"width": width, "height": height},
        locale="zh-CN",
        timezone_id=timezone,
        # Only when granting: an empty list is itself an override (nothing granted), and the
        # full browser then lists no interfaces for WebRTC either (every call failed so).
        **({"permissions": ["camera", "microphone"]} if browser in _accepting else {}),
    )
    # Playwright's 30 s for an action, a navigation or a request is a give-up limit too short
    # for a loaded two-core machine (a report's workbook took longer in a full run).
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = await context.new_page()
    watch(page)
    return page


def watch(page: Page) -> None:
    """Echo the page's console errors and warnings; record its uncaught exceptions, which fail
    the test when its browser is given back (``browser_with``)."""
    page.on("console", lambda m: _echo(page, m.type, m.text))
    page.on("pageerror", lambda e: _page_errors.append(f"{page.url}: {e}"))


def _fail_on_page_errors() -> None:
    if _page_errors:
        found, _page_errors[:] = list(_page_errors), []
        pytest.fail("uncaught errors in the pages:\n" + "\n".join(found))


def _echo(page: Page, kind: str, text: str) -> None:
    """Page errors and warnings go to stderr (pytest shows them for a failing test)."""
    if kind in ("error", "warning"):
        print(f"[{page.url.rsplit('/', 1)[-1]}] {kind}: {text}", file=sys.stderr)


async def snap(page: Page, name: str) -> Path:
    """Save a screenshot under test-artifacts/ (git-ignored) for a person to look at.

    Headless Chromium on a loaded machine sometimes answers ``Page.captureScreenshot`` with
    "Unable to capture screenshot" when no compositor frame is ready (chromium bug 714058; seen
    once in CI on 4 workers). The capture is tried again after two animation frames, at most
    twice; any other error, or a third failure, fails the test.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    for attempt in range(3):
        try:
            await page.screenshot(path=str(path))
            return path
        except PlaywrightError as error:
            if "Unable to capture screenshot" not in error.message or attempt == 2:
                raise
            await page.evaluate(
                "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
            )
    return path


async def video_width(page: Page, selector: str) -> int:
    return int(await page.eval_on_selector(selector, "v => v.videoWidth"))


async def wait_for_video(page: Page, selector: str, minimum: int = 1) -> int:
    """Wait until a <video> shows frames at least ``minimum`` pixels wide; its width."""
    await page.wait_for_function(
        "([s, m]) => (document.querySelector(s)?.videoWidth || 0) >= m",
        arg=[selector, minimum],
        timeout=20_000,
    )
    return await video_width(page, selector)


async def opens_file_picker_from_keyboard(page: Page, name: str) -> None:
    """The button called ``name`` is a real button: focused and pressed from the keyboard, it
    opens #file-input's picker (the click on the input is seen and stopped; the picker itself
    is the browser's)."""
    button = page.get_by_role("button", name=name, exact=True)
    await expect(button).to_be_visible()
    await page.evaluate(
        """() => document.getElementById("file-input").addEventListener("click", (e) => {
            window.__pickerOpened = true; e.preventDefault();
        }, { once: true })"""
    )
    await button.focus()
    await expect(button).to_be_focused()
    await page.keyboard.press("Enter")
    await page.wait_for_function("window.__pickerOpened === true")
