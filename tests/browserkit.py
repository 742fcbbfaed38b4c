"""Headless Chromium for page tests: real WebRTC between pages on loopback (TESTING.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
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


def chromium_path() -> str:
    path = os.environ.get("CLOUDHELP_TEST_CHROMIUM") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is missing: run the suite with `bash scripts/test.sh`.")
    return path


@asynccontextmanager
async def chromium(
    fake_ui: bool = True, extra_flags: Sequence[str] = (), executable: str | None = None
) -> AsyncIterator[Browser]:
    """``fake_ui`` accepts camera, microphone and screen prompts as a person would;
    ``extra_flags`` are added (tests/tlskit.py: trust a test CA); ``executable`` runs instead
    of Chromium itself (tests/netkit.py: a wrapper that starts it in a host's namespace)."""
    flags = (
        [*FLAGS, "--use-fake-ui-for-media-stream", "--auto-accept-this-tab-capture"]
        if fake_ui
        else list(FLAGS)
    )
    flags += extra_flags
    async with async_playwright() as playwright:
        path = executable or chromium_path()
        browser = await playwright.chromium.launch(executable_path=path, args=flags)
        try:
            yield browser
        except BaseException:
            await _snap_failure(browser)
            raise
        finally:
            await browser.close()


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


async def new_page(browser: Browser, base_url: str, timezone: str = "Asia/Shanghai") -> Page:
    """A page in a context of its own; ``timezone``: the browser's clock (the district's by
    default, whatever the machine's)."""
    context = await browser.new_context(
        base_url=base_url,
        # Playwright's wait_for_function evals its predicate and axe is injected as an inline
        # script: both need CSP bypassed. The pages themselves are checked under the real CSP
        # in tests/test_security_headers.py.
        bypass_csp=True,
        viewport={"width": 1280, "height": 720},
        locale="zh-CN",
        timezone_id=timezone,
    )
    page = await context.new_page()
    page.on("console", lambda m: _echo(page, m.type, m.text))
    return page


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
