"""Hostile input over a real server: every bad frame or body gets a clear error, never a 500,
an ``internal_error`` or a dropped socket (issue 11, rows 6, 7, 8, 9 and 16)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import ClientSession, CookieJar
from sqlalchemy import select

from cloudhelp.callcenter import SCREEN_LOG_MAX
from cloudhelp.core.throttle import MAX_THROTTLE_KEYS, FailureThrottle
from cloudhelp.domain.accounts import STAFF_COOKIE, LoginThrottle
from cloudhelp.http.account_routes import THROTTLE_KEY
from cloudhelp.media.peer import ProtocolError, SignalingClient
from cloudhelp.store.models import TicketEvent, TicketFile
from signaling import safejson
from tests.callkit import CallServer, running_server
from tests.helpers import serve_and_read_url, start_cli

DEEP = "[" * 30_000 + "]" * 30_000  # 60 KB: deep enough for RecursionError in json.loads
HUGE = str(2**70)


async def send_raw(client: SignalingClient, text: str) -> dict[str, Any]:
    """Send ``text`` as one frame; the error frame it earns."""
    assert client.ws is not None
    await client.ws.send_str(text)
    return await client.expect("error")


async def still_answers(client: SignalingClient) -> None:
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert client.ws is not None and not client.ws.closed


async def in_a_call(server: CallServer) -> tuple[SignalingClient, SignalingClient]:
    """A kiosk and zhaogang in a call (signaling only)."""
    staff = await server.staff("zhaogang")
    kiosk = await server.kiosk()
    await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
    await kiosk.expect("ticket")
    ring = await staff.expect("ring")
    await staff.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
    await kiosk.expect("joined")
    await staff.expect("joined")
    return kiosk, staff


def test_the_safe_loader_refuses_what_json_loads_lets_through() -> None:
    assert safejson.loads('{"a": [1, 2.5, "[[[["]}') == {"a": [1, 2.5, "[[[["]}
    assert safejson.loads("[" * 32 + "]" * 32) is not None
    nul = ('{"department": "\\u0000"}', '{"a": [{"\\u0000": 1}]}', b'["x\\u0000y"]')
    for text in (DEEP, "[" * 33 + "]" * 33, "NaN", "[Infinity]", "-Infinity", "1e999", HUGE, *nul):
        with pytest.raises(safejson.JSONRefused):
            safejson.loads(text)
    assert safejson.loads(str(2**63 - 1)) == 2**63 - 1
    assert safejson.loads('["\\\\u0000"]') == ["\\u0000"]  # a backslash, then "u0000"


async def test_binary_frames_count_against_the_rate_limit(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        kiosk = await server.kiosk()
        assert kiosk.ws is not None
        await kiosk.ws.send_bytes(b"\x00\x01")
        error = await kiosk.expect("error")
        assert error["code"] == "bad_message" and "binary" in error["message"]
        for _ in range(400):
            await kiosk.ws.send_bytes(b"\x00" * 100)
        error = await kiosk.expect_where("error", lambda f: f["code"] == "rate_limited")
        assert error["message"]
        await kiosk.closed.wait()
        assert kiosk.close_code == 4008


async def test_deep_nesting_nan_and_huge_numbers_get_bad_message(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        kiosk, staff = await in_a_call(server)
        bad_frames = [
            DEEP,
            '{"type": "app", "data": ' + DEEP + "}",
            '{"type": "hello", "v": 1, "auth": ' + "{" * 40 + "}" * 40 + "}",
            '{"type": "app", "data": NaN}',
            '{"type": "app", "data": {"x": Infinity}}',
            '{"type": "app", "data": [-Infinity]}',
            '{"type": "app", "data": 1e999}',
            '{"type": "app", "data": ' + HUGE + "}",
            '{"type": "ping", "seq": ' + HUGE + "}",
            '{"type": "rating.submit", "ticket": ' + HUGE + ', "level": 5}',
            # PostgreSQL cannot store U+0000 in text: refused at the door (found by the fuzzer)
            '{"type": "ticket.transfer", "department": "\\u0000"}',
        ]
        for text in bad_frames:
            error = await send_raw(kiosk, text)
            assert error["code"] == "bad_message", (text[:60], error)
            assert error["message"]
        # Numbers that fit 64 bits but no database row id are refused at validation too.
        for text in (
            '{"type": "warning.ack", "warning": 9223372036854775807}',
            '{"type": "ticket.pick", "ticket": 99999999999}',
            '{"type": "ring.decline", "ticket": -1}',
        ):
            error = await send_raw(staff, text)
            assert error["code"] == "bad_message", (text, error)
        await still_answers(kiosk)
        await still_answers(staff)
        # Nothing of the above reached the peer: the next app message is the first it sees.
        await kiosk.send({"type": "app", "data": {"n": 1.5}})
        assert (await staff.expect("app"))["data"] == {"n": 1.5}


async def staff_client(server: CallServer, username: str) -> ClientSession:
    token = await server.staff_token(username)
    jar = CookieJar(unsafe=True)
    client = ClientSession(base_url=server.base_url, cookie_jar=jar)
    client.cookie_jar.update_cookies({STAFF_COOKIE: token})
    return client


async def expect_400(response_cm: Any, code: str = "bad_request") -> dict[str, Any]:
    async with response_cm as response:
        text = await response.text()
        assert response.status == 400, (response.status, text[:300])
        assert "Traceback" not in text
        body = json.loads(text)
        assert body["error"]["code"] == code, body
        assert body["error"]["message"]
        return body


async def test_http_bodies_urls_and_dates_are_bounded(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        http = server.http
        json_headers = {"Content-Type": "application/json"}
        for path in ("/api/v1/auth/login", "/api/v1/kiosk/enrol"):
            for body in (DEEP, '{"code": NaN}', '{"username": ' + HUGE + "}"):
                await expect_400(http.post(path, data=body, headers=json_headers))
        supervisor = await staff_client(server, "sunhua")
        async with supervisor:
            new_case = {
                "item": "NYNC-002",
                "applicant": {"name": "王海", "phone": "13800000000", "id_number": "210211"},
            }
            for body in (
                DEEP,
                json.dumps({**new_case, "ticket": 2**40}),
                json.dumps(new_case)[:-1] + ', "ticket": ' + HUGE + "}",
                json.dumps(new_case)[:-1] + ', "ticket": NaN}',
            ):
                await expect_400(supervisor.post("/api/v1/cases", data=body, headers=json_headers))
            for path in (
                f"/api/v1/tickets/{HUGE}/files",
                "/api/v1/tickets/99999999999/files/1",
                f"/api/v1/cases?ticket={HUGE}",
                "/api/v1/cases?from=0001-01-01",
                "/api/v1/cases?to=9999-12-31",
                "/api/v1/reports?from=0001-01-01&to=0001-01-02",
                "/api/v1/reports?to=0001-01-01",
                "/api/v1/reports?from=9999-12-30&to=9999-12-31",
                "/api/v1/warnings?state=all&from=0001-01-01&to=0001-01-03",
                "/api/v1/warnings?state=all&from=9999-12-31&to=9999-12-31",
            ):
                await expect_400(supervisor.get(path))
            for path in (f"/api/v1/warnings/{HUGE}/ack", "/api/v1/follow-ups/99999999999/close"):
                await expect_400(supervisor.post(path, json={"note": "x"}))
            await expect_400(supervisor.get(f"/notices/X-1/{HUGE}"))
            # NUL, which PostgreSQL cannot hold in text (fuzzing found /api/v1/cases/%00 a 500
            # there): refused wherever it is in the address.
            for path in (
                "/api/v1/cases/%00",
                "/api/v1/items/NYNC-002%00",
                "/cases/%00",
                "/api/v1/cases?q=%00",
                "/api/v1/cases?%00=1",
                "/notices/%00/1",
            ):
                body = await expect_400(supervisor.get(path))
                assert "%00" in body["error"]["message"]
            async with supervisor.get("/api/v1/reports?from=2026-11-01&to=2026-11-02") as ok:
                assert ok.status == 200


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


async def test_a_kiosk_cannot_vouch_for_staff_files_and_names_lose_bidi_controls(
    demo_url: str,
) -> None:
    async with running_server(demo_url) as server:
        credential = await server.kiosk_credential("QG-09")
        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ticket = (await kiosk.expect("ticket"))["ticket"]["id"]
        headers = {
            "Authorization": f"Kiosk {credential}",
            "Content-Type": "image/png",
            "X-File-SHA256": hashlib.sha256(PNG).hexdigest(),
        }
        url = f"/api/v1/tickets/{ticket}/files"
        forged = {**headers, "X-File-Sender": "staff", "X-File-Name": "official.png"}
        async with server.http.post(url, data=PNG, headers=forged) as response:
            assert response.status == 403, await response.text()
            assert (await response.json())["error"]["code"] == "forbidden"
        # U+202E (right-to-left override) makes "photo‮gnp.exe" read as "photoexe.png".
        tricky = "photo\u202egnp.exe\u2066\u200b\u0007.png"
        named = {**headers, "X-File-Sender": "kiosk", "X-File-Name": quote(tricky)}
        async with server.http.post(url, data=PNG, headers=named) as response:
            assert response.status == 201, await response.text()
            stored = (await response.json())["file"]
        assert stored["sender"] == "kiosk"
        assert stored["name"] == "photognp.exe_.png"
        async with server.state.db.read() as session:
            row = await session.get(TicketFile, stored["id"])
            assert row is not None and row.name == "photognp.exe_.png"


HTML = b"<!doctype html><script>parent.pwned = 1</script>"


async def test_any_other_file_is_kept_but_only_ever_served_as_a_download(
    demo_url: str,
) -> None:
    """A file sent in a call that is no photo or PDF is kept (a reload lists it again) as
    application/octet-stream and served only as an attachment of that type, whatever its name or
    bytes; a photo is still served inline, and the type checks on photos and PDFs still hold."""
    async with running_server(demo_url) as server:
        credential = await server.kiosk_credential("QG-09")
        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ticket = (await kiosk.expect("ticket"))["ticket"]["id"]
        url = f"/api/v1/tickets/{ticket}/files"

        def headers(content_type: str, data: bytes, name: str) -> dict[str, str]:
            return {"Authorization": f"Kiosk {credential}", "Content-Type": content_type,
                    "X-File-SHA256": hashlib.sha256(data).hexdigest(),
                    "X-File-Sender": "kiosk", "X-File-Name": quote(name)}  # fmt: skip

        # A type other than a photo, a PDF or "any other file" is refused; so are bytes that are
        # not the photo they claim to be.
        for claimed, code in (("text/html", "unsupported_type"), ("image/png", "type_mismatch")):
            async with server.http.post(
                url, data=HTML, headers=headers(claimed, HTML, "page.html")
            ) as response:
                assert response.status == 415, await response.text()
                assert (await response.json())["error"]["code"] == code
        other = headers("application/octet-stream", HTML, "page.html")
        async with server.http.post(url, data=HTML, headers=other) as response:
            assert response.status == 201, await response.text()
            kept = (await response.json())["file"]
        assert (kept["name"], kept["content_type"], kept["size"]) == (
            "page.html", "application/octet-stream", len(HTML),
        )  # fmt: skip
        async with server.http.post(
            url, data=PNG, headers=headers("image/png", PNG, "p.png")
        ) as response:
            photo = (await response.json())["file"]["url"]
        # Listed with the call's files, as a page reloaded mid-call asks for them.
        async with server.http.get(url, headers={"Authorization": f"Kiosk {credential}"}) as r:
            listed = [(f["name"], f["content_type"]) for f in (await r.json())["files"]]
        assert listed == [("page.html", "application/octet-stream"), ("p.png", "image/png")]

        async def served(file_url: str, cookies: dict[str, str]) -> tuple[bytes, Any]:
            async with server.http.get(file_url, cookies=cookies) as response:
                assert response.status == 200, await response.text()
                return await response.read(), response.headers

        supervisor = {STAFF_COOKIE: await server.staff_token("sunhua")}
        body, head = await served(kept["url"], supervisor)
        assert body == HTML
        assert head["Content-Type"] == "application/octet-stream"
        assert head["Content-Disposition"] == "attachment; filename*=UTF-8''page.html"
        assert head["X-Content-Type-Options"] == "nosniff"
        body, head = await served(photo, supervisor)
        assert body == PNG and head["Content-Type"] == "image/png"
        assert head["Content-Disposition"].startswith("inline;")


async def test_sigterm_closes_every_socket_with_1001_and_clients_come_back(
    sqlite_demo_url: str,
) -> None:
    """docs/protocol.md: 1001 on shutdown, also for a socket that has not said hello. The page
    then reconnects, its session is gone with the old process, it signs in again and finds its
    waiting ticket."""
    async with running_server(sqlite_demo_url) as server:
        credential = await server.kiosk_credential("QG-01")
        staff_token = await server.staff_token("chenjing")
    for attempt in range(2):
        process = start_cli("serve", "--port", "0", "--db", sqlite_demo_url)
        try:
            url = serve_and_read_url(process)
            async with ClientSession() as http:
                kiosk = SignalingClient(url, http)
                if attempt == 0:
                    await kiosk.connect({"kind": "kiosk", "credential": credential})
                    await kiosk.send({"type": "ticket.take", "item": "RSJ-009"})
                    ticket = (await kiosk.expect("ticket"))["ticket"]
                    staff = SignalingClient(url, http)
                    await staff.connect({"kind": "staff", "token": staff_token})
                    silent = await http.ws_connect(f"{url.rstrip('/')}/ws")  # no hello yet
                    process.send_signal(signal.SIGTERM)
                    closing = await silent.receive(timeout=15)
                    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1001
                    await asyncio.wait_for(kiosk.closed.wait(), 15)
                    await asyncio.wait_for(staff.closed.wait(), 15)
                    assert kiosk.close_code == 1001
                    assert staff.close_code == 1001
                    assert await asyncio.to_thread(process.wait, 15) == 0
                    kept_welcome = kiosk.welcome
                else:
                    kiosk.welcome = kept_welcome
                    with pytest.raises(ProtocolError) as refused:
                        await kiosk.resume()
                    assert refused.value.code == "no_such_session"
                    await kiosk.connect({"kind": "kiosk", "credential": credential})
                    again = (await kiosk.expect("ticket"))["ticket"]
                    assert again["id"] == ticket["id"] and again["status"] == "waiting"
                    await kiosk.close()
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 15)
            assert process.stderr is not None
            stderr = process.stderr.read()
            assert "Traceback" not in stderr, stderr


async def test_the_screen_sharing_log_of_a_call_stays_small(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, rate_per_second=2000.0, rate_burst=2000.0) as server:
        kiosk, staff = await in_a_call(server)
        for index in range(700):  # about the 43 KB seen on one ticket event
            await kiosk.send({"type": "app", "data": {"kind": "screen", "on": index % 2 == 0}})
        for _ in range(700):
            await staff.expect("app")
        await kiosk.send({"type": "call.hangup"})
        await staff.expect("left")
        async with server.state.db.read() as session:
            ended = await session.scalar(
                select(TicketEvent).where(TicketEvent.kind == "ended").order_by(TicketEvent.id)
            )
            assert ended is not None
            detail = ended.detail
        assert len(detail["screen"]) == SCREEN_LOG_MAX
        assert detail["screen_toggles"] == 700
        assert detail["screen"][-1]["on"] is False  # the latest state is kept
        assert len(json.dumps(detail)) < 4096


async def test_throttle_and_push_state_stay_bounded(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        throttle = server.server.app[THROTTLE_KEY].failures
        assert isinstance(throttle, FailureThrottle)  # one process: in its memory
        throttle.max_keys = 6  # small, so that a short spray (each sign-in hashes) fills it
        login = "/api/v1/auth/login"
        await server.staff_token("wangli")  # gives wangli a password
        for _ in range(5):
            async with server.http.post(login, json={"username": "wangli", "password": "no"}):
                pass
        async with server.http.post(login, json={"username": "wangli", "password": "no"}) as r:
            assert r.status == 429
        for index in range(14):  # a guesser trying a new name each time
            async with server.http.post(login, json={"username": f"u{index}", "password": "x"}):
                pass
            assert len(throttle) <= 6
        async with server.http.post(login, json={"username": "wangli", "password": "no"}) as r:
            assert r.status == 429, "the spray must not evict the locked account's count"

        center = server.state.callcenter
        center._gate.idle_seconds = 0.5
        kiosk = await server.kiosk()
        for _ in range(30):  # many tickets, each with its own snapshot keys
            await kiosk.send({"type": "ticket.take", "item": "RSJ-009"})
            await kiosk.expect("ticket")
            await kiosk.send({"type": "ticket.cancel"})
            await kiosk.expect_where("ticket", lambda f: f["ticket"]["status"] == "cancelled")
        await asyncio.sleep(0.6)
        await kiosk.send({"type": "ticket.take", "item": "RSJ-009"})  # one more admit: prunes
        await kiosk.expect("ticket")
        assert len(center._gate) <= 10  # what was sent lately, not one key per ticket (30+)
        assert center._call_log == {}


async def test_a_name_spray_of_a_hundred_thousand_keeps_the_throttle_small() -> None:
    clock = [0.0]
    failures = FailureThrottle(20, 300.0, clock=lambda: clock[0])
    throttle = LoginThrottle(throttles=lambda name, keep, window: failures)
    for index in range(100_000):
        clock[0] += 0.001  # all within one window: nothing expires by itself
        assert await throttle.attempt(f"name{index}", f"10.0.{index % 250}.1") == 0
    assert len(failures) <= MAX_THROTTLE_KEYS
    for _ in range(5):
        await throttle.attempt("target", "10.9.9.9")
    assert await throttle.attempt("target", "10.9.9.9") > 0
    for index in range(50_000):
        await throttle.attempt(f"again{index}", "10.0.0.2")
    assert len(failures) <= MAX_THROTTLE_KEYS
    assert await throttle.attempt("target", "10.9.9.9") > 0


def held_state(server: CallServer) -> dict[str, int]:
    """The size of every collection the call centre, its gate, the hub and the broker hold."""
    center = server.state.callcenter
    sizes: dict[str, int] = {"gate": len(center._gate)}
    for owner_name, owner in (
        ("center", center),
        ("hub", center.hub),
        ("broker", center.hub.broker),
    ):
        for name, value in vars(owner).items():
            if isinstance(value, dict | set | list):
                sizes[f"{owner_name}.{name}"] = len(value)
    return sizes


async def test_many_calls_in_a_row_leave_no_state_behind(sqlite_demo_url: str) -> None:
    """The soak in issue 11 grew 4.4 KiB per call: after warming up, more calls hold no more."""
    async with running_server(sqlite_demo_url) as server:
        server.state.callcenter._gate.idle_seconds = 0.2
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()

        async def one_call() -> None:
            await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
            ticket = (await staff.expect("ring"))["ticket"]
            await staff.send({"type": "ring.accept", "ticket": ticket["id"]})
            await kiosk.expect("joined")
            await staff.expect("joined")
            await kiosk.send({"type": "app", "data": {"kind": "screen", "on": True}})
            await kiosk.send({"type": "app", "data": {"kind": "chat", "text": "您好"}})
            await kiosk.send({"type": "call.hangup"})
            await staff.expect("wrapup")
            await kiosk.send({"type": "rating.submit", "ticket": ticket["id"], "level": 5})
            await staff.send({"type": "wrapup.done", "outcome": "resolved"})
            await staff.expect("presence", state="available")

        async def settled() -> dict[str, int]:
            await asyncio.sleep(0.3)  # the gate's keys go idle
            await staff.send({"type": "staff.status", "status": "available"})  # one admit: prunes
            await staff.send({"type": "ping"})
            await staff.expect("pong")
            # Tasks still running (a write after the wrap-up) are not state left behind: wait
            # for them, at most 5 s, so that a busy machine does not count them.
            center = server.state.callcenter
            for _ in range(100):
                if not center._tasks:
                    break
                await asyncio.sleep(0.05)
            return held_state(server)

        for _ in range(5):
            await one_call()
        warm = await settled()
        for _ in range(25):
            await one_call()
        after = await settled()
        # The gate holds the keys used in its last idle period: what the two sockets were sent
        # lately (ticket, ring, presence, queue, warnings…), never one key per call.
        assert after.pop("gate") <= 10 and warm.pop("gate") <= 10
        grown = {
            name: (warm.get(name), size) for name, size in after.items() if size > warm.get(name, 0)
        }
        # Named, should one stay: which timer (kind, ticket or staff id) outlived its call.
        assert not grown, (grown, sorted(server.state.callcenter._timers))
