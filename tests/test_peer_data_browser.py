"""Untrusted peer data in the pages (issue 11 row 3): whatever the other side of a call sends is
data, never code, in real headless Chromium through the real server.

- A notice opens only from this server's ``/notices/<case>/<round>`` page; ``javascript:``,
  ``data:``, other origins and other paths are dropped.
- A received file is shown (and printed on the kiosk) only when its first bytes make it a photo
  or a PDF, typed so; anything else is listed as not previewable.
- Transfer ids chosen by the peer never reach a CSS selector.
- A WebSocket or data-channel frame that is no JSON object is dropped with a warning; the page
  keeps working.
- A candidate that reaches the console before the offer it belongs to waits for it and is added
  after it (it used to fail: "remote description was null").

The hostile side uses the pages' own objects (the staff console's and the kiosk's real data
channel, the kiosk's real WebSocket through Playwright's WebSocket routing) or a protocol
client, so every frame crosses the network as an attacker's would.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from typing import Any

from fpdf import FPDF
from playwright.async_api import ConsoleMessage, Page, WebSocketRoute, expect
from sqlalchemy import select

from cloudhelp.store.models import TicketFile
from tests.browserkit import chromium, new_page, snap
from tests.callkit import running_server
from tests.test_browser import call_answered, enrolled_kiosk, signed_in_staff
from tests.test_correction_session import case_needing_correction
from tests.test_kiosk_browser import PNG_1x1, call_from_kiosk

# Script that would mark the page it runs in (or its parent) as taken over.
PWN = "parent.__pwned = 1; window.__pwned = 1"
HTML = f"<!doctype html><html><body><h1>Hi</h1><script>{PWN}</script></body></html>".encode()
SVG = (
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{PWN}"><script>{PWN}</script></svg>'
).encode()
# Ids that would change the meaning of `[data-id="${id}"]`: one matches every line, one is
# not a selector at all.
HIJACK_ID = '"], li, [x="'
BROKEN_ID = 'a"b\\'

# Send one file over the page's own data channel with the id and claimed type the sender
# chooses (a hostile peer), and junk frames.
RAW_FILE = """async ({channel, id, name, type, bytes}) => {
  const ch = eval(channel);
  const data = new Uint8Array(bytes);
  const digest = await crypto.subtle.digest("SHA-256", data);
  const sha256 = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  ch.send(JSON.stringify({kind: "file", id, name, size: data.byteLength, type}));
  ch.send(data);
  ch.send(JSON.stringify({kind: "end", id, sha256}));
}"""
JUNK_FRAMES = """(channel) => {
  const ch = eval(channel);
  for (const junk of ["{not json", "null", "42", "[1, 2]", '{"kind": 7}',
                      '{"kind": "file", "id": 5, "name": "x", "size": 1, "sha256": "0"}',
                      '{"kind": "file", "id": "n", "name": "x", "size": -1, "sha256": "0"}',
                      // more than the 25 MiB a receiver holds for one file
                      '{"kind": "file", "id": "b", "name": "x", "size": 2 ** 40, "sha256": "0"}'
                        .replace("2 ** 40", String(2 ** 40))]) {
    ch.send(junk);
  }
  ch.send(new Uint8Array([1, 2, 3]));  // a chunk with no transfer open
}"""
STAFF_CHANNEL = "window.cloudhelp.call.channel"
KIOSK_CHANNEL = "window.cloudhelp.visit.call.channel"


def a_png(width: int = 160, height: int = 100) -> bytes:
    """A real PNG: a blue document shape on white, big enough to see in a screenshot."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    def pixel(x: int, y: int) -> bytes:
        inside = 20 <= x < width - 20 and 10 <= y < height - 10
        return b"\x30\x60\xc0" if inside else b"\xff\xff\xff"

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def a_pdf(text: str, tail: bytes = b"") -> bytes:
    """A real one-page PDF showing ``text``, with ``tail`` appended after its end."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=28)
    pdf.cell(0, 30, text)
    out = io.BytesIO()
    pdf.output(out)
    return out.getvalue() + tail


class Watch:
    """A page's uncaught errors and console warnings."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.logged_errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "warning":
            self.warnings.append(message.text)
        elif message.type == "error":
            self.logged_errors.append(message.text)

    def saying(self, text: str) -> list[str]:
        return [w for w in self.warnings if text in w]

    def saying_error(self, text: str) -> list[str]:
        """The page's console.error lines that say ``text``."""
        return [e for e in self.logged_errors if text in e]


async def send_raw(page: Page, channel: str, file_id: str, name: str, data: bytes) -> None:
    """``page`` sends ``data`` claiming image/png, under a transfer id of its own choosing."""
    args = {"channel": channel, "id": file_id, "name": name, "type": "image/png"}
    await page.evaluate(RAW_FILE, {**args, "bytes": list(data)})


async def pwned(page: Page) -> Any:
    return await page.evaluate("window.__pwned")


async def blob_type(page: Page, url: str | None) -> str:
    assert url and url.startswith("blob:"), url
    return await page.evaluate("(u) => fetch(u).then((r) => r.headers.get('content-type'))", url)


async def test_kiosk_opens_only_this_servers_notices_and_drops_junk_frames(
    sqlite_demo_url: str,
) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        kiosk = await new_page(browser, server.base_url)
        watch = Watch(kiosk)
        sockets: list[WebSocketRoute] = []

        def route(ws: WebSocketRoute) -> None:
            ws.connect_to_server()  # frames pass both ways; the test adds its own to the page
            sockets.append(ws)

        await kiosk.route_web_socket(lambda url: url.endswith("/ws"), route)
        await enrolled_kiosk(server, kiosk)
        staff = await server.staff("zhaogang")
        ticket = await call_from_kiosk(kiosk, staff)
        peer = await kiosk.evaluate("window.cloudhelp.connection.sessionId")
        chats = 0

        async def app(data: Any) -> None:
            """Send app data, then a chat line: once the line shows, the data was handled."""
            nonlocal chats
            await staff.send({"type": "app", "to": peer, "data": data})
            chats += 1
            await staff.send({"type": "app", "to": peer, "data": {"kind": "chat", "text": "好"}})
            await expect(kiosk.locator("#chat li.them")).to_have_count(chats)

        # Notices that are not this server's notice pages: nothing opens, nothing runs.
        origin = server.base_url
        hostile = [
            f"javascript:{PWN}",
            f"JavaScript:{PWN}//{origin}/notices/A-1/1",
            f"data:text/html,<script>{PWN}</script>",
            "https://evil.example/notices/210211-20261128-0001/1?t=x",
            "//evil.example/notices/210211-20261128-0001/1",
            f"{origin.replace('127.0.0.1', 'localhost')}/notices/210211-20261128-0001/1",
            "/notices/../kiosk",
            "/notices/210211-20261128-0001/1/../../../kiosk",
            "/notices/210211-20261128-0001/1.pdf?t=x",
            "/api/v1/health",
            "/kiosk",
            "",
            None,
            {"href": "javascript:parent.__pwned = 1"},
        ]
        for url in hostile:
            await app({"kind": "notice", "url": url})
        await expect(kiosk.locator("#notice-overlay")).to_be_hidden()
        await expect(kiosk.locator("#show-notice")).to_be_hidden()
        assert await kiosk.eval_on_selector("#notice-frame", "f => f.src") == "about:blank"
        assert await pwned(kiosk) is None
        assert len(watch.saying("dropped a notice")) == len(hostile)

        # App data of the wrong shape is dropped too (and fields of the wrong type ignored).
        for data in [None, "notice", 42, ["notice"], {"text": "no kind"}, {"kind": 7}]:
            await app(data)
        await app({"kind": "case", "status": "accepted", "due_date": 20261215, "number": {}})
        await app({"kind": "chat", "text": {"html": "<b>x</b>"}})
        await app({"kind": "screen", "on": "yes"})
        assert len(watch.saying("dropped an app message")) == 6
        await expect(kiosk.locator("body")).not_to_have_class("screen-shared")

        # The real notice, as a path or as an absolute URL on this origin: shown, with its
        # signed query kept.
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        _number, notice = await case_needing_correction(
            server, cookies, ticket=ticket, missing=True
        )
        url = notice["url"]
        assert "?t=" in url
        for sent in (f"{origin}{url}#top", url):
            await app({"kind": "notice", "url": sent})
            await expect(kiosk.locator("#notice-overlay")).to_be_visible()
            src = await kiosk.eval_on_selector("#notice-frame", "f => f.src")
            assert src == f"{origin}{url}"
            await expect(kiosk.frame_locator("#notice-frame").locator("h1")).to_be_visible()
            await kiosk.click("#notice-close")
        await kiosk.click("#show-notice")
        await expect(kiosk.frame_locator("#notice-frame").locator("h1")).to_be_visible()
        await snap(kiosk, "peer-data-kiosk-real-notice")
        await kiosk.click("#notice-close")

        # Junk on the kiosk's WebSocket: dropped with a warning, the connection goes on. The
        # newest socket: on a loaded machine the page may have reconnected once (a heartbeat
        # answered late through Playwright's WebSocket route), and resumed.
        for junk in ["{not json", "null", "42", '["ticket"]', '{"type": 7}', '"welcome"']:
            sockets[-1].send(junk)
        sockets[-1].send(b"\x00\x01binary")
        await staff.send({"type": "app", "to": peer, "data": {"kind": "chat", "text": "仍然连通"}})
        await expect(kiosk.locator("#chat li.them").last).to_have_text("仍然连通")
        assert len(watch.saying("WebSocket: dropped a frame")) == 7
        await expect(kiosk.locator("#banner")).to_be_hidden()
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
        assert await pwned(kiosk) is None
        assert watch.errors == []


async def test_received_files_are_shown_by_their_bytes_and_ids_stay_data(
    sqlite_demo_url: str, tmp_path
) -> None:
    async with (
        running_server(sqlite_demo_url, data_dir=tmp_path) as server,
        chromium(full=True) as browser,  # the headless shell has no PDF viewer
    ):
        kiosk = await new_page(browser, server.base_url)
        staff = await new_page(browser, server.base_url)
        await staff.set_viewport_size({"width": 1600, "height": 1000})
        kiosk_watch, staff_watch = Watch(kiosk), Watch(staff)
        sockets: list[WebSocketRoute] = []
        # The kiosk's first offer reaches the console after its first candidate: frames of one
        # call may arrive in another order (a candidate before the description it belongs to).
        held: list[str | bytes] = []
        overtook: list[dict[str, Any]] = []

        def route(ws: WebSocketRoute) -> None:
            def from_server(message: str | bytes) -> None:
                frame = json.loads(message) if isinstance(message, str) else {}
                if not overtook and not held and frame.get("type") == "offer":
                    held.append(message)
                    return
                ws.send(message)
                if held and frame.get("type") == "candidate":
                    overtook.append(frame)
                    ws.send(held.pop())

            ws.connect_to_server().on_message(from_server)
            sockets.append(ws)

        await staff.route_web_socket(lambda url: url.endswith("/ws"), route)
        await enrolled_kiosk(server, kiosk)
        await signed_in_staff(server, staff, "zhaogang")
        await call_answered(kiosk, staff)
        # The candidate that came first waited for the offer and was added after it, not
        # refused ("remote description was null"); the call is up (files cross it below).
        assert overtook and overtook[0]["candidate"] is not None, overtook
        assert staff_watch.saying_error("signaling message failed") == []

        # --- staff → kiosk, through the console's own file input, each with a claimed type.
        received = kiosk.locator("#files-received li")
        pdf = a_pdf("Sample form", tail=b"\n<html><script>" + PWN.encode() + b"</script></html>")
        sent = [
            ("notes.png", "image/png", HTML),  # HTML that says it is a PNG
            ("badge.svg", "image/svg+xml", SVG),  # an image type, but one that runs script
            ("page.html", "text/html", HTML),
            ("photo.html", "text/html", a_png()),  # a real PNG under a misleading name and type
            ("form.html", "text/html", pdf),  # a real PDF (with HTML after its end)
        ]
        for name, claimed, data in sent:
            await staff.set_input_files(
                "#file-input", files=[{"name": name, "mimeType": claimed, "buffer": data}]
            )
            await expect(received.filter(has_text=name)).to_have_count(1, timeout=30_000)
        await expect(received).to_have_count(len(sent))
        for name in ("notes.png", "badge.svg", "page.html"):
            line = received.filter(has_text=name)
            await expect(line.locator(".no-preview")).to_contain_text("无法预览")
            await expect(line.locator("img, iframe, button, a")).to_have_count(0)
        await expect(received.filter(has_text="page.html")).to_contain_text(
            f"page.html（{len(HTML)} B）"
        )
        photo = received.filter(has_text="photo.html")
        await expect(photo.locator("img")).to_have_count(1)
        await expect(photo.get_by_role("button", name="打印")).to_have_count(1)
        assert await blob_type(kiosk, await photo.locator("img").get_attribute("src")) == (
            "image/png"
        )
        form = received.filter(has_text="form.html")
        await expect(form.get_by_role("button", name="打印")).to_have_count(1)
        await expect(form.locator(".no-preview")).to_have_count(0)
        assert await kiosk.locator("iframe:not(#notice-frame)").count() == 0  # nothing printed yet
        await photo.scroll_into_view_if_needed()
        await snap(kiosk, "peer-data-kiosk-received-photo")

        # The console keeps what it sent by its bytes, not by the picker's type: the real PNG and
        # PDF named .html are kept as what they are; the rest is no photo or PDF and is kept as
        # bytes (application/octet-stream), which the server only ever serves as a download.
        sent_lines = staff.locator("#files li")
        for name in ("photo.html", "form.html", "notes.png", "badge.svg", "page.html"):
            line = sent_lines.filter(has_text=name)
            await expect(line).to_have_attribute("data-saved", "1", timeout=30_000)
        await sent_lines.filter(has_text="photo.html").scroll_into_view_if_needed()
        await snap(staff, "peer-data-staff-sent-files")
        async with server.state.db.read() as session:
            rows = (await session.scalars(select(TicketFile))).all()
            kept = {(row.name, row.content_type, row.sender) for row in rows}
        assert kept == {
            ("photo.html", "image/png", "staff"),
            ("form.html", "application/pdf", "staff"),
            ("notes.png", "application/octet-stream", "staff"),
            ("badge.svg", "application/octet-stream", "staff"),
            ("page.html", "application/octet-stream", "staff"),
        }

        # Ids the staff side chooses, over its real data channel: each file gets its own line.
        for n, file_id in enumerate((HIJACK_ID, BROKEN_ID)):
            await send_raw(staff, STAFF_CHANNEL, file_id, f"raw-{n}.png", PNG_1x1)
            await expect(received.filter(has_text=f"raw-{n}.png")).to_have_count(1)
        await expect(received).to_have_count(len(sent) + 2)
        await expect(received.filter(has_text="notes.png")).to_have_count(1)  # not overwritten

        # Junk on the data channel: dropped, and the next file still arrives.
        await staff.evaluate(JUNK_FRAMES, STAFF_CHANNEL)
        await staff.set_input_files(
            "#file-input",
            files=[{"name": "after-junk.pdf", "mimeType": "application/pdf", "buffer": a_pdf("x")}],
        )
        await expect(received.filter(has_text="after-junk.pdf")).to_have_count(1, timeout=30_000)
        assert len(kiosk_watch.saying("data channel: dropped")) == 8
        await snap(kiosk, "peer-data-kiosk-received-files")

        # --- kiosk → staff, through the kiosk page's own sendFile, each with a claimed type.
        files = staff.locator("#files li")
        await kiosk.evaluate(
            """async (files) => {
              for (const [name, type, bytes] of files) {
                await window.cloudhelp.sendFile(new Blob([new Uint8Array(bytes)], {type}), name);
              }
            }""",
            [
                ["scan.pdf", "application/pdf", list(HTML)],
                ["kiosk-form.html", "text/html", list(pdf)],
            ],
        )
        scan = files.filter(has_text="scan.pdf")
        await expect(scan.locator(".no-preview")).to_contain_text("无法预览", timeout=30_000)
        await expect(scan.locator("img, iframe")).to_have_count(0)
        link = scan.locator("a[download]")
        assert await link.get_attribute("download") == "scan.pdf"
        assert await blob_type(staff, await link.get_attribute("href")) == (
            "application/octet-stream"
        )
        # Kept as bytes: the server serves it only as a download of that type.
        await expect(scan).to_have_attribute("data-saved", "1", timeout=30_000)
        async with server.state.db.read() as session:
            row = await session.scalar(select(TicketFile).where(TicketFile.name == "scan.pdf"))
        assert row is not None and row.content_type == "application/octet-stream"
        shown = files.filter(has_text="kiosk-form.html")
        await expect(shown).to_have_attribute("data-saved", "1", timeout=30_000)
        frame = shown.locator("iframe")
        assert await blob_type(staff, await frame.get_attribute("src")) == "application/pdf"
        assert await shown.get_attribute("data-sha256") == hashlib.sha256(pdf).hexdigest()

        # A file larger than the server keeps (25 MiB) fails at once, and the kiosk says so.
        await kiosk.evaluate(
            "() => window.cloudhelp.sendFile("
            "new Blob([new Uint8Array(25 * 2 ** 20 + 1)]), 'huge.jpg')"
        )
        huge = kiosk.locator("#files-sent li", has_text="huge.jpg")
        await expect(huge).to_contain_text("超过 25 MB，无法发送")
        await expect(huge.locator("button")).to_have_count(0)  # retrying would not help
        await expect(files.filter(has_text="huge.jpg")).to_have_count(0)

        # Ids the kiosk side chooses, and junk, over the kiosk page's real data channel.
        for n, file_id in enumerate((HIJACK_ID, BROKEN_ID)):
            await send_raw(kiosk, KIOSK_CHANNEL, file_id, f"raw-{n}.html", HTML)
            await expect(files.filter(has_text=f"raw-{n}.html")).to_have_count(1)
        await expect(files.filter(has_text="scan.pdf")).to_have_count(1)  # not overwritten
        await kiosk.evaluate(JUNK_FRAMES, KIOSK_CHANNEL)

        # Junk on the console's WebSocket: dropped; chat still flows both ways.
        for junk in ["{not json", "null", '{"type": ["queue"]}']:
            sockets[-1].send(junk)  # the newest: see the kiosk's test above
        await kiosk.fill("#chat-input", "收到了吗")
        await kiosk.click("#chat-form button")
        await expect(staff.locator("#chat li.them")).to_have_text("收到了吗")
        await staff.fill("#chat-input", "收到了")
        await staff.click("#chat-form button")
        await expect(kiosk.locator("#chat li.them")).to_have_text("收到了")
        assert len(staff_watch.saying("data channel: dropped")) == 8
        assert len(staff_watch.saying("WebSocket: dropped a frame")) == 3
        await expect(shown.locator("iframe")).to_be_visible()
        await shown.scroll_into_view_if_needed()
        # The frame holds Chromium's PDF viewer (an extension frame), nothing of the sender's.
        for _ in range(100):
            if any(f.url.startswith("chrome-extension://") for f in staff.frames):
                break
            await staff.wait_for_timeout(100)
        else:
            raise AssertionError(f"no PDF viewer in {[f.url for f in staff.frames]}")
        await snap(staff, "peer-data-staff-received-files")

        assert await pwned(kiosk) is None and await pwned(staff) is None
        assert kiosk_watch.errors == [] and staff_watch.errors == []
