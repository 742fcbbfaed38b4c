"""Signing in: kiosk enrolment and revocation, staff login, throttling and logout."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession, CookieJar

from cloudhelp import accounts
from cloudhelp.callcenter import STAFF_COOKIE
from cloudhelp.peer import ProtocolError
from tests.callkit import running_server
from tests.helpers import run_cli


async def test_enrol_code_works_once(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        async with server.state.db.write() as session:
            code = await accounts.enrol_kiosk(session, "DLW-QG", "QG-09", "前关驿站9号终端")
        assert len(code) == 9 and code[4] == "-"
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": code.lower()}) as r:
            body = await r.json()
            assert r.status == 200
        assert body["kiosk"]["station"] == {"code": "DLW-QG", "name": "前关社区驿站"}
        async with server.http.post("/api/v1/kiosk/enrol", json={"code": code}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "bad_enrol_code"
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


async def test_login_attempts_are_throttled(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        await server.staff_token("liumei")  # sets the password
        async with ClientSession(base_url=server.base_url, cookie_jar=CookieJar(unsafe=True)) as b:
            for _ in range(5):
                body = {"username": "liumei", "password": "wrong-password"}
                async with b.post("/api/v1/auth/login", json=body) as r:
                    assert r.status == 401
                    assert (await r.json())["error"] == {
                        "code": "bad_credentials", "message": "Wrong username or password.",
                    }  # fmt: skip
            body = {"username": "liumei", "password": "test-password-1"}
            async with b.post("/api/v1/auth/login", json=body) as r:
                assert r.status == 429
                assert (await r.json())["error"]["code"] == "too_many_attempts"
            async with b.post("/api/v1/auth/login", data="not json") as r:
                assert r.status == 400


def test_cli_enrols_and_revokes_kiosks_and_adds_staff(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run_cli("demo", "--db", db).returncode == 0
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
    db = f"sqlite:///{tmp_path / 'dept.db'}"
    assert run_cli("demo", "--db", db).returncode == 0
    done = run_cli("department", "set", "NYNC", "--ring-seconds", "15", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "ring 15 s, wrap-up 60 s, away after 2 missed rings" in done.stdout
    bad = run_cli("department", "set", "NOPE", "--ring-seconds", "15", "--db", db)
    assert bad.returncode == 1 and "no department with code 'NOPE'" in bad.stderr
