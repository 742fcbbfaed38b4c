"""Helpers for the journey tests: the demo server as scripts/demo.sh makes it, and page checks.

- ``demo_server``: what ``cloudhelp demo --history N`` (scripts/demo.sh's command, today's tickets
  included) makes, run once per test run and copied for each server; ``cloudhelp serve`` on a
  free loopback port; the enrolment codes read from the demo's output.
- ``Journey``: numbered steps, a screenshot of every page at every step, and findings of the page
  checks below, collected so that one journey reports all of them at its end.
- ``english_sentences``: runs of two or more English words in the visible text of a zh-CN page.
- ``axe_violations``: axe-core (tests/vendor/axe-core) with the WCAG 2.2 AA tags; critical and
  serious violations only.
- ``outside_viewport``: whether an element's box lies inside the viewport as the page shows it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, Locator, Page, expect

from tests.browserkit import ARTIFACTS, FAKE_DEVICES, FAKE_UI, FLAGS, browser_with, new_page
from tests.helpers import made_once_per_run

DEMO_PASSWORD = "cloudhelp-demo"  # printed by `cloudhelp demo`, as the README says
AXE_SCRIPT = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]
SERVE_START_SECONDS = 60.0

# A printed enrolment code (e.g. QX8M-RT2L) and the kiosk code on the same line (e.g. QG-01).
_ENROL_CODE = re.compile(r"(?<![A-Z0-9])([A-Z0-9]{4}-[A-Z0-9]{4})(?![A-Z0-9])")
_KIOSK_CODE = re.compile(r"(?<![A-Z0-9-])([A-Z]{2,4}-\d{2})(?![\d-])")
_SERVE_URL = re.compile(r"CloudHelp is running: open http://127\.0\.0\.1:(\d+)/")


# ----------------------------------------------------------------------------- the demo server


def _cloudhelp(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run the ``cloudhelp`` command line (same interpreter) and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "cloudhelp", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"`cloudhelp {' '.join(args)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def printed_enrol_codes(output: str) -> dict[str, str]:
    """Kiosk code → one-time enrolment code, as the demo (or `kiosk enrol`) printed them."""
    codes: dict[str, str] = {}
    for line in output.splitlines():
        enrol = _ENROL_CODE.search(line)
        kiosk = _KIOSK_CODE.search(_ENROL_CODE.sub(" ", line))
        if enrol and kiosk:
            codes[kiosk.group(1)] = enrol.group(1)
    return codes


@dataclass
class DemoServer:
    """A running ``cloudhelp serve`` over the database ``cloudhelp demo`` made."""

    base_url: str
    env: dict[str, str]
    demo_output: str
    log_path: Path
    unused_codes: dict[str, str]
    used_codes: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _extra_kiosks: int = 0

    async def cli(self, *args: str, stdin: str | None = None) -> str:
        """The command line against this server's database, as an operator types it."""
        return await asyncio.to_thread(_cloudhelp, list(args), self.env, stdin)

    async def enrol_code(self) -> str:
        """A one-time code: first those the demo printed, then new kiosks from the CLI."""
        if self.unused_codes:
            kiosk = sorted(self.unused_codes)[0]
            code = self.unused_codes.pop(kiosk)
        else:
            self._extra_kiosks += 1
            kiosk = f"QG-{50 + self._extra_kiosks}"
            printed = await self.cli("kiosk", "enrol", "DLW-QG", "--code", kiosk)
            code = printed_enrol_codes(printed)[kiosk]
        self.used_codes.append(code)
        return code

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _environment(folder: Path) -> dict[str, str]:
    """The command line's environment for a demo living in ``folder`` (no other CLOUDHELP_
    setting inherited but the test command's cheap password hashes, passwords.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDHELP_")}
    cheap = os.environ.get("CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES")
    if cheap is not None:
        env["CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES"] = cheap
    return env | {
        "CLOUDHELP_DATA_DIR": str(folder / "data"),
        "CLOUDHELP_DATABASE_URL": f"sqlite:///{folder / 'cloudhelp.db'}",
        "PYTHONUNBUFFERED": "1",
    }


def _demo_made_once(history_days: int) -> tuple[Path, str]:
    """``cloudhelp demo --history N`` once per test run, whichever worker asks first: its folder
    and what it printed."""
    return made_once_per_run(
        f"demo-history-{history_days}",
        lambda folder: _cloudhelp(["demo", "--history", str(history_days)], _environment(folder)),
    )


@contextmanager
def demo_server(
    workdir: Path, history_days: int = 2, settings: dict[str, str] | None = None
) -> Iterator[DemoServer]:
    """What scripts/demo.sh makes, served: ``cloudhelp demo --history N``, then ``serve``.

    The demo command runs once per test run (default 160 tickets per working day, today's part
    of the history included; only the number of past days is smaller than demo.sh's 60); each
    server gets its own copy of the database and data folder it made (secret key included), so
    every journey starts from the same state with the printed enrolment codes unused. The
    server is ``cloudhelp serve`` on a free loopback port, as a subprocess; ``settings`` adds
    environment variables (``CLOUDHELP_…``) to its environment only.
    """
    made, output = _demo_made_once(history_days)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(made / "data", workdir / "data")
    for database in made.glob("cloudhelp.db*"):
        shutil.copy2(database, workdir / database.name)
    env = _environment(workdir) | (settings or {})
    codes = printed_enrol_codes(output)
    assert len(codes) >= 2, f"the demo printed no enrolment codes:\n{output}"
    log_path = workdir / "serve.log"
    command = ["serve", "--host", "127.0.0.1", "--port", "0"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cloudhelp", *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + SERVE_START_SECONDS
        while not (running := _SERVE_URL.search(log_path.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"`cloudhelp serve` did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield DemoServer(
            base_url=f"http://127.0.0.1:{running.group(1)}",
            env=env,
            demo_output=output,
            log_path=log_path,
            unused_codes=codes,
            process=process,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# ----------------------------------------------------------------------------- browsers and pages


@asynccontextmanager
async def browser(*, devices: bool = True, allow_all: bool = True) -> AsyncIterator[Browser]:
    """Headless Chromium as browserkit starts it (``browser_with``: the worker's shared browser
    with these flags when the test runs in the worker's session loop).

    ``devices=False``: no camera and no microphone at all. ``allow_all=False``: device prompts
    are refused unless the test grants a permission (``context.grant_permissions``).
    """
    flags = [*FLAGS]
    if allow_all:
        flags += FAKE_UI
    if not devices:
        flags.remove(FAKE_DEVICES)
    async with browser_with(flags) as launched:
        yield launched


async def open_page(
    browser: Browser, server: DemoServer, width: int = 1366, height: int = 768
) -> Page:
    """A new browser profile (own cookies and storage), zh-CN, in the district's time zone."""
    return await new_page(browser, server.base_url, width=width, height=height)


async def enrol_kiosk(page: Page, server: DemoServer) -> str:
    """Open the enrolment link of a code the demo printed; the kiosk shows its home screen."""
    code = await server.enrol_code()
    await page.goto(f"/kiosk?enrol={code}")
    await expect(page.locator("[data-screen=home]")).to_be_visible()
    return code


async def sign_in_staff(page: Page, username: str, *, available: bool = True) -> None:
    """Sign in at /staff with the demo password; optionally switch to 可接听."""
    await page.goto("/staff")
    await page.fill("#username", username)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("#login-form button")
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#state")).to_have_attribute("data-state", "away")
    if available:
        await page.click("#toggle-state")
        await expect(page.locator("#state")).to_have_attribute("data-state", "available")


async def photo_of_a_document(page: Page, text: str) -> bytes:
    """A real JPEG (a drawn page with ``text``), as a kiosk's camera would take it."""
    data_url = await page.evaluate(
        """(text) => { const c = document.createElement('canvas'); c.width = 1200; c.height = 900;
            const g = c.getContext('2d'); g.fillStyle = '#fdfdf8'; g.fillRect(0, 0, 1200, 900);
            g.fillStyle = '#222'; g.font = '64px sans-serif'; g.fillText(text, 80, 160);
            for (let y = 260; y < 820; y += 60) g.fillRect(80, y, 1040, 6);
            return c.toDataURL('image/jpeg', 0.9); }""",
        text,
    )
    return base64.b64decode(data_url.split(",", 1)[1])


# ------------------------------------------------------------------- English on zh-CN pages

# Brand and product names, and the demo's usernames: English by nature, fine on a zh-CN page.
ALLOWED_WORDS = {
    "cloudhelp", "webrtc", "excel", "chromium", "chrome", "english", "wangli", "zhaogang",
    "liumei", "chenjing", "sunhua", "admin", "echarts",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")  # wrap-up, don't: one word each
# A command line quoted for an administrator (cloudhelp kiosk enrol) is code, not a sentence.
_COMMAND = re.compile(r"\bcloudhelp(?: [a-z][a-z-]*)+")
# What may stand between two words of one sentence: spaces, light punctuation, a number.
_SAME_SENTENCE = re.compile(r"[^\w]{1,4}|\s+\d+(?:[.,]\d+)?\s+")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
# Message keys (kiosk.wait.soon) and state or reason codes (needs_correction) shown raw.
_RAW_KEY = re.compile(
    r"(?<![\w.])[a-z]+(?:\.[a-z_]+){2,}(?![\w.])|(?<![\w.])[a-z]+_[a-z_]+(?![\w.])"
)
_CODE_JOINERS = set("-_/.@:=#+&?%")

VISIBLE_TEXT_JS = """() => {
  const texts = [];
  const shown = (el) => el && el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || el.closest('script,style,noscript,template')) continue;
    if (el.closest('select') ? shown(el.closest('select')) : shown(el)) texts.push(text);
  }
  const labelled = '[placeholder],[aria-label],input[type=button],input[type=submit]';
  for (const el of document.querySelectorAll(labelled)) {
    if (!shown(el)) continue;
    for (const value of [el.getAttribute('placeholder'), el.getAttribute('aria-label'),
                         el.type === 'button' || el.type === 'submit' ? el.value : null]) {
      if (value && value.trim()) texts.push(value.trim());
    }
  }
  return {lang: document.documentElement.lang || '', texts};
}"""


def _ignorable(text: str, start: int, end: int, word: str) -> bool:
    """Codes, file names, URLs, acronyms, brand names and usernames are not English sentences."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    after2 = text[end + 1] if end + 1 < len(text) else " "
    if before.isalnum() or after.isalnum() or before in _CODE_JOINERS:
        return True
    if after in _CODE_JOINERS and (after2.isalnum() or after in "-_/@=#"):
        return True
    acronym = word.isupper() and len(word) > 1  # PDF, ID; but "I" and "A" are words
    return acronym or word.lower() in ALLOWED_WORDS


def english_in(text: str) -> list[str]:
    """The runs of ≥2 English words, and raw codes or message keys, in one piece of text."""
    text = _COMMAND.sub(lambda m: " " * len(m.group(0)), text)
    found = [m.group(0) for m in _RAW_KEY.finditer(text)]
    run: list[tuple[int, int]] = []
    for match in _WORD.finditer(text):
        if _ignorable(text, match.start(), match.end(), match.group(0)):
            if len(run) >= 2:
                found.append(text[run[0][0] : run[-1][1]])
            run = []
            continue
        if run:
            gap = text[run[-1][1] : match.start()]
            if not _SAME_SENTENCE.fullmatch(gap) or _CJK.search(gap):
                if len(run) >= 2:
                    found.append(text[run[0][0] : run[-1][1]])
                run = []
        run.append((match.start(), match.end()))
    if len(run) >= 2:
        found.append(text[run[0][0] : run[-1][1]])
    return found


async def english_sentences(page: Page) -> list[str]:
    """English in the visible text of every zh-CN frame of the page: '"run" in «text»'."""
    problems: list[str] = []
    for frame in page.frames:
        try:
            seen = await frame.evaluate(VISIBLE_TEXT_JS)
        except Exception:  # a frame still loading or about:blank has no body yet
            continue
        if not str(seen["lang"]).lower().startswith("zh"):
            continue
        for text in seen["texts"]:
            problems += [f"{run!r} in «{text[:120]}»" for run in english_in(text)]
    return sorted(set(problems))


# ----------------------------------------------------------------------------- axe-core


async def axe_violations(page: Page, label: str) -> list[str]:
    """Critical and serious WCAG 2.2 AA violations (axe-core), one line each; JSON saved."""
    assert AXE_SCRIPT.exists(), f"{AXE_SCRIPT} is missing (tests/vendor/axe-core/README.md)"
    for frame in page.frames:
        try:
            if not await frame.evaluate("typeof window.axe !== 'undefined'"):
                await frame.add_script_tag(path=str(AXE_SCRIPT))
        except Exception:  # a detached or cross-origin frame: axe reports it as not tested
            continue
    result = await page.evaluate(
        """(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags},
                                        resultTypes: ['violations']})""",
        AXE_TAGS,
    )
    bad = [v for v in result["violations"] if v.get("impact") in ("critical", "serious")]
    folder = ARTIFACTS / "axe"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{label}.json").write_text(json.dumps(bad, ensure_ascii=False, indent=1))
    return [
        f"{v['impact']} {v['id']} ({v['help']}): "
        + "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:4])
        for v in bad
    ]


# ----------------------------------------------------------------------------- viewport


async def outside_viewport(page: Page, target: Locator, what: str) -> str | None:
    """None when ``target`` is visible and wholly inside the viewport as the page shows it."""
    size = page.viewport_size or {"width": 0, "height": 0}
    if not await target.count() or not await target.first.is_visible():
        return f"{what}: not visible at {size['width']}×{size['height']}"
    box = await target.first.bounding_box()
    if box is None:
        return f"{what}: no box at {size['width']}×{size['height']}"
    inside = (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"] + 0.5
        and box["y"] + box["height"] <= size["height"] + 0.5
    )
    if inside:
        return None
    return (
        f"{what}: box x={box['x']:.0f} y={box['y']:.0f} w={box['width']:.0f} "
        f"h={box['height']:.0f} is not inside the {size['width']}×{size['height']} viewport"
    )


# ----------------------------------------------------------------------------- journeys


class StepFailed(AssertionError):
    """A journey step failed: the message names the journey, the step and what went wrong."""


@dataclass
class Journey:
    """Numbered steps with a screenshot of each page; page checks collected as findings."""

    name: str
    pages: dict[str, Page] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    number: int = 0
    checked: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for old in ARTIFACTS.glob(f"journey-{self.name}-*.png"):  # screenshots of a past run
            old.unlink()

    @asynccontextmanager
    async def step(self, title: str, *shown: str) -> AsyncIterator[None]:
        """One step; the pages of ``shown`` (all when none is named) are photographed after it.

        When the step fails, every page is photographed and the error names journey and step.
        """
        self.number += 1
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            print(
                f"journey {self.name} step {self.number} {title}: FAILED after "
                f"{time.monotonic() - started:.1f} s"
            )
            await self.snap_all(f"{slug}-FAILED")
            message = str(exc).splitlines()[0:6]
            raise StepFailed(
                f"journey {self.name}, step {self.number} '{title}': " + "\n".join(message)
            ) from exc
        print(f"journey {self.name} step {self.number} {title}: {time.monotonic() - started:.1f} s")
        await self.snap_all(slug, shown)

    async def snap_all(self, slug: str, roles: tuple[str, ...] = ()) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        for role, page in self.pages.items():
            if page.is_closed() or (roles and role not in roles):
                continue
            path = ARTIFACTS / f"journey-{self.name}-{self.number:02d}-{slug}-{role}.png"
            try:
                await page.screenshot(path=str(path))
            except Exception as exc:  # a screenshot must not hide the step's own failure
                print(f"screenshot {path.name} failed: {exc}", file=sys.stderr)

    async def check(self, role: str, screen: str, *, axe: bool = True) -> None:
        """English text and (once per screen) axe-core on one page; findings kept for the end."""
        page = self.pages[role]
        for problem in await english_sentences(page):
            self.findings.append(f"English on {role} {screen}: {problem}")
        key = f"{role}-{screen}"
        if axe and key not in self.checked:
            self.checked.add(key)
            for problem in await axe_violations(page, f"{self.name}-{key}"):
                self.findings.append(f"axe on {role} {screen}: {problem}")

    def assert_no_findings(self) -> None:
        assert not self.findings, f"journey {self.name} page checks:\n" + "\n".join(self.findings)
