"""Security headers on every response and the Origin check (issue 11, rows 5 and 10).

Over a real server on a loopback port, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from cloudhelp.app import create_app
from cloudhelp.core.config import Settings
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.store.models import AuditEvent
from tests.callkit import DEMO_PASSWORD, CallServer, running_server
from tests.test_correction_session import case_needing_correction

FOREIGN = "https://evil.example"
PARTNER = "https://hall.example.gov.cn"

PATHS = [
    "/",  # a page
    "/staff",
    "/kiosk",
    "/api/v1/health",  # the API
    "/api/v1/no-such-thing",  # aiohttp's own 404, made JSON
    "/static/css/app.css",  # a static file
]


def _assert_headers(headers: Mapping[str, str], frame_ancestors: str) -> None:
    csp = headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert "'unsafe-inline'" not in directives["default-src"]
    assert directives["object-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == frame_ancestors
    assert headers["X-Frame-Options"] == ("DENY" if frame_ancestors == "'none'" else "SAMEORIGIN")
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    permissions = headers["Permissions-Policy"]
    for feature in ("camera=(self)", "microphone=(self)", "display-capture=(self)"):
        assert feature in permissions
    assert "geolocation=()" in permissions
    assert headers["Server"] == "CloudHelp"  # no Python or aiohttp version


async def test_headers_on_pages_api_static_and_errors(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        for path in PATHS:
            async with server.http.get(path) as r:
                assert r.status in (200, 404), (path, r.status)
                _assert_headers(r.headers, "'none'")
                assert "Strict-Transport-Security" not in r.headers  # plain HTTP: no HSTS
        # The kiosk frames the correction notice in its own page: those pages only allow 'self'.
        async with server.http.get("/notices/210211-2026-000001/1?t=bad") as r:
            _assert_headers(r.headers, "'self'")
        # The WebSocket upgrade carries them too (set before the 101 is sent).
        async with server.http.ws_connect("/ws") as ws:
            await ws.close()


async def _post_login(server: CallServer, origin: str | None) -> tuple[int, dict, Mapping]:
    headers = {"Origin": origin} if origin is not None else {}
    body = {"username": "wangli", "password": DEMO_PASSWORD}
    async with server.http.post("/api/v1/auth/login", json=body, headers=headers) as r:
        return r.status, await r.json(), r.headers


async def test_foreign_origin_refused_on_post_and_websocket(demo_url: str) -> None:
    async with running_server(demo_url, allowed_origins=[PARTNER + "/"]) as server:
        own = server.base_url  # http://127.0.0.1:<port>
        token = await server.staff_token("wangli")
        cookies = {STAFF_COOKIE: token}
        for origin in (FOREIGN, "null", f"http://127.0.0.1:{server.server.port + 1}"):
            status, body, headers = await _post_login(server, origin)
            assert status == 403
            assert body["error"]["code"] == "bad_origin"
            _assert_headers(headers, "'none'")
            # A cookie-authenticated write from a foreign page: refused before it runs.
            async with server.http.post(
                "/api/v1/auth/logout", cookies=cookies, headers={"Origin": origin}
            ) as r:
                assert r.status == 403
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await server.http.ws_connect("/ws", headers={"Origin": origin})
            assert refused.value.status == 403
        # The session survived the refused logout.
        async with server.http.get("/api/v1/auth/me", cookies=cookies) as r:
            assert r.status == 200
        # Reads are not state-changing: a foreign Origin may GET (CORS keeps the answer from it).
        async with server.http.get("/api/v1/health", headers={"Origin": FOREIGN}) as r:
            assert r.status == 200
        # The request's own host, a configured origin (normalized), and no Origin at all pass.
        for origin in (own, PARTNER, None):
            status, body, _ = await _post_login(server, origin)
            assert status == 200, (origin, body)
            ws_headers = {"Origin": origin} if origin else {}
            async with server.http.ws_connect("/ws", headers=ws_headers) as ws:
                await ws.close()


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def test_hsts_only_over_tls(demo_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=demo_url, warning_check_seconds=0))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server(ssl=_self_signed(tmp_path))
    try:
        async with ClientSession() as client:
            async with client.get(server.make_url("/api/v1/health"), ssl=False) as r:
                assert r.status == 200
                assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
                _assert_headers(r.headers, "'none'")
    finally:
        await server.close()


async def test_every_page_runs_under_the_real_csp(sqlite_demo_url: str) -> None:
    """No page breaks the CSP: no refused inline script, handler, style or connection.

    The browser suites bypass the CSP for Playwright's own eval; this walk does not.
    """
    from tests.browserkit import chromium

    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        cookies = {STAFF_COOKIE: await server.staff_token("zhaogang")}
        number, notice = await case_needing_correction(server, cookies, missing=True)
        notice_url = notice["url"]
        admin_token = await server.staff_token("admin")
        context = await browser.new_context(base_url=server.base_url, locale="zh-CN")
        await context.add_cookies(
            [{"name": STAFF_COOKIE, "value": admin_token, "url": server.base_url}]
        )
        page = await context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: (
                violations.append(f"{page.url}: {m.text}")
                if "Content Security Policy" in m.text
                else None
            ),
        )
        page.on("pageerror", lambda e: violations.append(f"{page.url}: {e}"))
        pages = ["/", "/catalog", "/catalog/NYNC-002", "/kiosk", "/staff", "/board"]
        pages += ["/reports", "/follow-ups", "/cases", f"/cases/{number}", "/audit", notice_url]
        for path in pages:
            response = await page.goto(path)
            assert response is not None and response.status == 200, path
            await page.wait_for_load_state("networkidle")
        # The notice's 打印 button is wired by notice.js (no inline onclick).
        printed = await page.evaluate(
            "new Promise((done) => { window.print = () => done(true);"
            " document.getElementById('print-notice').click(); })"
        )
        assert printed is True
        await context.close()
        assert violations == []


async def _sign_in_through_proxy(server: CallServer, headers: dict[str, str]) -> Mapping:
    body = {"username": "wangli", "password": DEMO_PASSWORD}
    async with server.http.post("/api/v1/auth/login", json=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        return r.headers


async def _last_sign_in_address(server: CallServer) -> str:
    async with server.state.db.read() as session:
        row = await session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "auth.sign_in")
            .order_by(AuditEvent.seq.desc())
        )
    assert row is not None
    return row.address


async def test_forwarded_headers_believed_only_from_trusted_proxies(demo_url: str) -> None:
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    # No proxy configured: a client cannot claim TLS or another address.
    async with running_server(demo_url) as server:
        await server.staff_token("wangli")  # sets the known password
        headers = await _sign_in_through_proxy(server, forged)
        assert "Strict-Transport-Security" not in headers
        assert "secure" not in headers["Set-Cookie"].lower()
        assert await _last_sign_in_address(server) == "127.0.0.1"
    # Behind a trusted proxy on loopback (TLS ends there): the cookie is Secure, HSTS is sent,
    # and the address is the right-most hop the proxy saw, not what the client wrote first.
    async with running_server(demo_url, trusted_proxies=["127.0.0.0/8"]) as server:
        await server.staff_token("wangli")
        headers = await _sign_in_through_proxy(server, forged)
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "; secure" in headers["Set-Cookie"].lower()
        assert await _last_sign_in_address(server) == "203.0.113.7"
        async with server.http.get("/api/v1/health", headers=forged) as r:
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
        # The proxy said plain HTTP: no Secure cookie, no HSTS.
        plain = {"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.8"}
        headers = await _sign_in_through_proxy(server, plain)
        assert "Strict-Transport-Security" not in headers
        assert "secure" not in headers["Set-Cookie"].lower()
        assert await _last_sign_in_address(server) == "203.0.113.8"


def test_a_bad_trusted_proxy_entry_is_named() -> None:
    with pytest.raises(ValueError, match="not-an-address"):
        Settings(trusted_proxies=["10.0.0.0/8", "not-an-address"])
