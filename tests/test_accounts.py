"""Signing in: kiosk enrolment and revocation, staff login, throttling and logout."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, TCPConnector
from playwright.async_api import expect
from sqlalchemy import select

from cloudhelp.core import workers
from cloudhelp.core.throttle import FailureThrottle
from cloudhelp.domain import accounts, passwords
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.http.account_routes import THROTTLE_KEY
from cloudhelp.media.peer import ProtocolError
from cloudhelp.store.models import AuditEvent, Kiosk, utcnow
from tests.browserkit import chromium, new_page, snap
from tests.callkit import DEMO_PASSWORD, CallServer, running_server
from tests.helpers import demo_database, run_cli


async def test_enrol_code_works_once(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        async with server.state.db.write() as session:
            code = await accounts.enrol_kiosk(session, "DLW-QG", "QG-09", "前关驿站9号终端")
        assert len(code) == 9 and code[4] == "-"
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": code.lower()}) as r:
            body = await r.json()
            assert r.status == 200
        assert body["kiosk"]["station"] == {"code": "DLW-QG", "name": "前关社区驿站"}
        # A second use, a code that never existed and an expired one are told apart.
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": code}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "enrol_code_used"
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": "ZZZZ-ZZZZ"}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "enrol_code_unknown"
        async with server.state.db.write() as session:
            late = await accounts.enrol_kiosk(session, "DLW-QG", "QG-08")
            kiosk = await session.scalar(select(Kiosk).where(Kiosk.code == "QG-08"))
            kiosk.enrol_expires_at = utcnow() - timedelta(minutes=1)
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": late}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "enrol_code_expired"
        kiosk = await server.connect({"kind": "kiosk", "credential": body["credential"]})
        assert kiosk.welcome["principal"]["kiosk"] == "QG-09"
        with pytest.raises(ProtocolError, match="auth_failed"):
            await server.connect({"kind": "kiosk", "credential": "forged"})
        with pytest.raises(ProtocolError, match="auth_failed"):
            await server.connect({"kind": "robot"})


async def test_staff_login_logout_and_roles(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        token = await server.staff_token("wangli")
        staff = await server.connect({"kind": "staff", "token": token})
        assert staff.welcome["principal"]["username"] == "wangli"
        cookies = {STAFF_COOKIE: token}
        async with server.http.get("/api/v1/auth/me", cookies=cookies) as r:
            assert (await r.json())["staff"]["name"] == "王丽"
        # Only administrators enrol kiosks.
        new = {"station": "DLW-QG", "code": "QG-07"}
        async with server.http.post("/api/v1/admin/kiosks", json=new, cookies=cookies) as r:
            assert r.status == 403
        async with server.http.post("/api/v1/admin/kiosks", json=new) as r:
            assert r.status == 401
        admin = {STAFF_COOKIE: await server.staff_token("admin")}
        async with server.http.post("/api/v1/admin/kiosks", json=new, cookies=admin) as r:
            assert r.status == 201 and (await r.json())["enrol_code"]
        async with server.http.post("/api/v1/auth/logout", cookies=cookies) as r:
            assert r.status == 200
        await staff.closed.wait()
        async with server.http.get("/api/v1/auth/me", cookies=cookies) as r:
            assert r.status == 401
        with pytest.raises(ProtocolError, match="auth_failed"):
            await server.connect({"kind": "staff", "token": token})


async def test_signout_form_goes_back_to_a_page_of_this_site_only(sqlite_demo_url: str) -> None:
    """POST /signout (退出 on every signed-in page): signed out, audited, and sent back to the
    page it came from; a ``next`` naming another site sends to the home page instead."""
    async with running_server(sqlite_demo_url) as server:
        for asked, sent_to in (("/board", "/board"), ("/cases/210211-20261204-0005",
                               "/cases/210211-20261204-0005"), ("//evil.example/x", "/"),
                               ("/\\evil.example", "/"), ("https://evil.example/", "/"),
                               ("", "/")):  # fmt: skip
            cookies = {STAFF_COOKIE: await server.staff_token("sunhua")}
            async with server.http.post(
                "/signout", data={"next": asked}, cookies=cookies, allow_redirects=False
            ) as r:
                assert r.status == 303 and r.headers["Location"] == sent_to, (asked, r.headers)
                assert r.cookies[STAFF_COOKIE].value == ""
            async with server.http.get("/api/v1/auth/me", cookies=cookies) as r:
                assert r.status == 401
        async with server.state.db.read() as s:
            signed_out = (
                await s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_out"))
            ).all()
        # Each row names the account signed out (as the sign-in rows do).
        assert [(e.subject_kind, e.subject) for e in signed_out] == [("account", "sunhua")] * 6


async def test_the_consoles_sign_in_goes_back_to_a_page_of_this_site_only(
    sqlite_demo_url: str,
) -> None:
    """/staff?next=… (a supervisor page's 前往登录): the sign-in form carries the way back for
    a path of this site only, by the rule 退出 follows; none for another site or the console."""
    async with running_server(sqlite_demo_url) as server:
        for asked, back in (("/board", "/board"), ("/reports", "/reports"),
                            ("//evil.example/x", None), ("/\\evil.example", None),
                            ("https://evil.example/", None), ("/staff", None),
                            ("", None)):  # fmt: skip
            async with server.http.get("/staff", params={"next": asked}) as r:
                page = await r.text()
            found = re.search(r'<form id="login-form"(?: data-next="([^"]*)")?>', page)
            assert found is not None and found.group(1) == back, (asked, found and found.group(0))


def _browser_at(server: CallServer, address: str) -> ClientSession:
    """An HTTP client whose requests come from ``address`` (any 127.x.y.z reaches loopback)."""
    return ClientSession(
        base_url=server.base_url,
        cookie_jar=CookieJar(unsafe=True),
        connector=TCPConnector(local_addr=(address, 0)),
    )


async def _sign_in(client: ClientSession, username: str, password: str) -> tuple[int, dict]:
    body = {"username": username, "password": password}
    async with client.post("/api/v1/auth/login", json=body) as r:
        return r.status, await r.json() | {"retry_header": r.headers.get("Retry-After")}


async def test_login_throttle_is_per_account_never_per_address(sqlite_demo_url: str) -> None:
    settings = {"login_failures_per_address": 5, "login_failures_per_account": 8}
    async with running_server(sqlite_demo_url, **settings) as server:
        for username in ("liumei", "wangli", "chenjing"):
            await server.staff_token(username)  # sets the password
        clock = [1000.0]
        failures = server.server.app[THROTTLE_KEY].failures
        assert isinstance(failures, FailureThrottle)  # one process: in its memory
        failures.clock = lambda: clock[0]
        async with (
            _browser_at(server, "127.0.0.1") as hall,
            _browser_at(server, "127.0.0.2") as other,
            _browser_at(server, "127.0.0.3") as third,
        ):
            for _ in range(5):
                status, body = await _sign_in(hall, "liumei", "wrong-password")
                assert status == 401
                assert body["error"] == {
                    "code": "bad_credentials", "message": "Wrong username or password.",
                }  # fmt: skip
            # The typist's account is locked from the hall's address, even with the right password…
            status, body = await _sign_in(hall, "liumei", DEMO_PASSWORD)
            assert status == 429 and body["error"]["code"] == "too_many_attempts"
            assert body["error"]["minutes"] == 5 and body["error"]["retry_after"] == 300
            assert body["retry_header"] == "300"
            # …but everyone else in the hall (same address) signs in.
            assert (await _sign_in(hall, "wangli", DEMO_PASSWORD))[0] == 200
            assert (await _sign_in(hall, "chenjing", "wrong-password"))[0] == 401
            assert (await _sign_in(hall, "chenjing", DEMO_PASSWORD))[0] == 200
            # From another address the same account still may try, up to the per-account limit.
            clock[0] += 60
            for _ in range(3):
                assert (await _sign_in(other, "liumei", "wrong-password"))[0] == 401
            status, body = await _sign_in(third, "liumei", DEMO_PASSWORD)
            assert status == 429 and body["error"]["minutes"] == 4  # 240 s left of the first
            assert (await _sign_in(third, "wangli", DEMO_PASSWORD))[0] == 200
            # Five minutes after the failures the account opens again, and a success clears it.
            clock[0] += 241
            assert (await _sign_in(third, "liumei", DEMO_PASSWORD))[0] == 200
            status, _ = await _sign_in(hall, "liumei", DEMO_PASSWORD)
            assert status == 200
            async with hall.post("/api/v1/auth/login", data="not json") as r:
                assert r.status == 400


async def test_lockout_is_shown_in_the_readers_language(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        await server.staff_token("liumei")
        page = await new_page(browser, server.base_url)
        await page.goto("/staff")
        for _ in range(6):
            await page.fill("#username", "liumei")
            await page.fill("#password", "wrong-password")
            async with page.expect_response("**/api/v1/auth/login"):  # one answer at a time
                await page.click("#login-form button")
            await expect(page.locator("#login-error")).to_be_visible()
        locked_out = "密码错误次数过多，请 5 分钟后再试。"
        await expect(page.locator("#login-error")).to_have_text(locked_out)
        await snap(page, "staff-login-locked-out")


class GatedHasher:
    """argon2's hasher, whose ``verify`` waits (up to 10 s) for the test to let it finish and
    notes the thread it ran on. On the event loop it would hold the loop for those 10 s."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()
        self.released_in_time: bool | None = None
        self.threads: list[threading.Thread] = []

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))

    def verify(self, password_hash: str, password: str) -> bool:
        self.threads.append(threading.current_thread())
        self.started.set()
        self.released_in_time = self.release.wait(10)
        return bool(self.real.verify(password_hash, password))


async def test_sign_in_checks_the_password_off_the_loop_and_outside_the_write_lock(
    sqlite_demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_server(sqlite_demo_url) as server:
        await server.staff_token("wangli")  # sets the password
        for username in ("wangli", "nobody"):  # a real account, and an unknown one (dummy hash)
            gate = GatedHasher(passwords._hasher)
            monkeypatch.setattr(passwords, "_hasher", gate)
            sign_in = asyncio.create_task(_sign_in(server.http, username, DEMO_PASSWORD))
            assert await asyncio.to_thread(gate.started.wait, 10)
            # While the password is being checked, a kiosk is enrolled (a write transaction)
            # and says hello over the WebSocket: neither the loop nor the write lock is held.
            kiosk = await server.kiosk(f"QG-0{len(server.clients) + 1}")
            assert kiosk.welcome["principal"]["kiosk"].startswith("QG-0")
            gate.release.set()
            status, _ = await sign_in
            assert status == (200 if username == "wangli" else 401)
            assert gate.released_in_time is True
            assert gate.threads and threading.main_thread() not in gate.threads
            monkeypatch.setattr(passwords, "_hasher", gate.real)


async def test_guesses_sent_side_by_side_are_throttled_too(sqlite_demo_url: str) -> None:
    """Each sign-in counts against the account before its (slow, threaded) check, so guesses
    sent at once cannot all slip past the limit while the checks run."""
    settings = {"login_failures_per_address": 3, "login_failures_per_account": 20}
    async with running_server(sqlite_demo_url, **settings) as server:
        await server.staff_token("liumei")
        guesses = [_sign_in(server.http, "liumei", f"wrong-{n}") for n in range(8)]
        statuses = sorted(status for status, _ in await asyncio.gather(*guesses))
        assert statuses == [401] * 3 + [429] * 5


def test_no_hash_is_computed_at_import() -> None:
    """The dummy hash (for unknown users) is made on first use, not when accounts is imported
    (it cost every command ~0.15 s of argon2)."""
    probe = (
        "import argon2\n"
        "calls = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda self, p: calls.append(p) or real(self, p)\n"
        "import cloudhelp.domain.accounts, cloudhelp.http.account_routes\n"
        "print(len(calls))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"


def test_cli_enrols_and_revokes_kiosks_and_adds_staff(tmp_path) -> None:
    db = demo_database(tmp_path / "cli.db")
    enrol = run_cli("kiosk", "enrol", "DLW-QG", "--code", "QG-05", "--db", db)
    assert enrol.returncode == 0, enrol.stderr
    assert "one-time enrolment code" in enrol.stdout
    bad = run_cli("kiosk", "enrol", "NOWHERE", "--code", "X-1", "--db", db)
    assert bad.returncode == 1 and "no station with code 'NOWHERE'" in bad.stderr
    assert run_cli("kiosk", "revoke", "QG-05", "--db", db).returncode == 0
    added = run_cli(
        "staff", "add", "lihua", "--name", "李华", "--station", "GJZ-HALL",
        "--departments", "NYNC", "--password-stdin", "--db", db,
        input_text="a-long-password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    weak = run_cli("staff", "password", "lihua", "--password-stdin", "--db", db, input_text="x\n")
    assert weak.returncode == 1 and "at least 8 characters" in weak.stderr


def test_cli_sets_department_queue_settings(tmp_path) -> None:
    db = demo_database(tmp_path / "dept.db")
    done = run_cli("department", "set", "NYNC", "--ring-seconds", "15", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "ring 15 s, wrap-up 60 s, away after 2 missed rings" in done.stdout
    bad = run_cli("department", "set", "NOPE", "--ring-seconds", "15", "--db", db)
    assert bad.returncode == 1 and "no department with code 'NOPE'" in bad.stderr


async def test_password_checks_run_below_the_event_loops_priority() -> None:
    """argon2 runs each hash's lanes on threads of its own; the pool's threads (whose nice value
    those inherit) run at the lowest priority, so they yield the CPU to the loop that relays
    every call."""

    def nice_of_this_thread() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert nice_of_this_thread() < workers.LOW_NICE
    assert await passwords._in_pool(nice_of_this_thread) == workers.LOW_NICE
    assert await passwords.verify_password(await passwords.hash_password("秘密-password"),
                                           "秘密-password")  # fmt: skip


@pytest.mark.parametrize(("setting", "parameters"), [(None, (3, 65536, 4)), ("1", (1, 8, 1))])
def test_password_hashes_are_cheap_only_where_the_test_command_says_so(
    setting: str | None, parameters: tuple[int, int, int]
) -> None:
    """argon2-cffi's defaults (time 3, 64 MiB, 4 lanes) unless
    CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES=1 (scripts/test.sh): then its CHEAPEST profile, and a
    hash made so records it (a check costs what its hash's parameters say)."""
    env = {k: v for k, v in os.environ.items() if k != "CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES"}
    if setting is not None:
        env["CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES"] = setting
    code = (
        "from argon2 import extract_parameters as p\n"
        "from cloudhelp.domain import passwords as w\n"
        "h = p(w._hash('秘密')); print(h.time_cost, h.memory_cost, h.parallelism)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert tuple(map(int, done.stdout.split())) == parameters
