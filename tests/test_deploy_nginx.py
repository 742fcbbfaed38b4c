"""CloudHelp behind nginx with deploy/nginx/cloudhelp.conf (issue 14).

The very site file from deploy/, its names, ports and paths templated to the test's (each
replaced text must be found, so the test follows the file), run by Debian's nginx as a
foreground process on loopback and stopped by its PID. In front of a real CloudHelp server:
pages load in Chromium trusting the test CA, /ws upgrades through the proxy, static files come
from nginx with revalidation, plain HTTP answers 308; X-Forwarded-Proto and X-Forwarded-For are
believed only when nginx is a trusted proxy, and what a client writes in them is not.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from sqlalchemy import select

from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.media.peer import SignalingClient
from cloudhelp.store.models import AuditEvent
from tests.browserkit import chromium
from tests.callkit import DEMO_PASSWORD, CallServer, running_server
from tests.nginxkit import CLIENT_ADDRESS, https_client, nginx_in_front
from tests.tlskit import HOSTNAME, TestCA, staff_console_over_https
from web import STATIC_DIR


async def _last_sign_in_address(server: CallServer) -> str:
    async with server.state.db.read() as session:
        row = await session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "auth.sign_in")
            .order_by(AuditEvent.seq.desc())
        )
    assert row is not None
    return row.address


async def _sign_in(
    client: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    body = {"username": "zhaogang", "password": DEMO_PASSWORD}
    async with client.post(f"{url}/api/v1/auth/login", json=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        return r


FORGED = {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}


async def test_pages_and_websocket_through_nginx_with_the_deploy_site(
    sqlite_demo_url: str, tmp_path: Path
) -> None:
    ca = TestCA.create(tmp_path / "pki")
    async with running_server(
        sqlite_demo_url, data_dir=tmp_path / "data", trusted_proxies=["127.0.0.1"]
    ) as server:
        await server.set_demo_password("zhaogang")
        async with (
            nginx_in_front(server.server.port, tmp_path / "nginx", ca) as nginx,
            chromium(extra_flags=ca.chromium_flags()) as browser,
        ):
            page = await staff_console_over_https(browser, nginx.base_url, "tls-nginx-staff")
            await page.context.close()
            async with https_client(ca) as client:
                # Static files come from nginx: revalidated on each use (URLs carry no version),
                # a year for a versioned URL; 304 when unchanged.
                url = f"{nginx.base_url}/static/js/protocol.js"
                async with client.get(url) as r:
                    assert r.status == 200
                    assert r.headers["Cache-Control"] == "no-cache"
                    assert r.headers["Server"] == "nginx"  # not proxied to CloudHelp
                    etag = r.headers["ETag"]
                    assert (await r.read()) == (STATIC_DIR / "js" / "protocol.js").read_bytes()
                async with client.get(url, headers={"If-None-Match": etag}) as r:
                    assert r.status == 304
                async with client.get(url + "?v=abc123") as r:
                    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                # Metrics are not served through the public site at all.
                async with client.get(f"{nginx.base_url}/metrics") as r:
                    assert r.status == 404
                    assert r.headers["Server"] == "nginx"
                # Plain HTTP: 308 to the same path over HTTPS (method and body kept).
                plain = f"http://{HOSTNAME}:{nginx.http_port}/api/v1/auth/login?x=1"
                async with client.post(plain, json={}, allow_redirects=False) as r:
                    assert r.status == 308
                    assert r.headers["Location"] == f"https://{HOSTNAME}/api/v1/auth/login?x=1"
                # The WebSocket upgrade through the proxy: a staff session signed in with the
                # cookie nginx passed on, welcomed, then its presence frame.
                signed_in = await _sign_in(client, nginx.base_url, {})
                token = signed_in.cookies[STAFF_COOKIE].value
                signaling = SignalingClient(nginx.base_url, client)
                welcome = await signaling.connect({"kind": "staff", "token": token})
                assert welcome["type"] == "welcome", welcome
                await signaling.expect("presence", state="away")
                assert signaling.ws is not None
                assert signaling.ws._response.status == 101  # switched protocols, via nginx
                await signaling.close()


async def test_forwarded_headers_believed_only_from_nginx_when_it_is_trusted(
    sqlite_demo_url: str, tmp_path: Path
) -> None:
    ca = TestCA.create(tmp_path / "pki")
    # nginx (127.0.0.1) trusted: the browser's https counts (Secure cookie, HSTS), the client's
    # address is the one nginx saw (127.0.0.2), not what the client wrote in X-Forwarded-For.
    async with running_server(
        sqlite_demo_url, data_dir=tmp_path / "data", trusted_proxies=["127.0.0.1"]
    ) as server:
        await server.set_demo_password("zhaogang")
        async with nginx_in_front(server.server.port, tmp_path / "trusted", ca) as nginx:
            async with https_client(ca) as client:
                r = await _sign_in(client, nginx.base_url, FORGED)
                assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
                assert r.cookies[STAFF_COOKIE]["secure"] is True
                assert await _last_sign_in_address(server) == CLIENT_ADDRESS
                # Straight to CloudHelp, past nginx, from an untrusted address: nothing forged
                # is believed (plain HTTP stays plain, the address is the socket's).
                direct = str(server.server.make_url("")).rstrip("/")
                r = await _sign_in(client, direct, FORGED)
                assert "Strict-Transport-Security" not in r.headers
                assert not r.cookies[STAFF_COOKIE]["secure"]
                assert await _last_sign_in_address(server) == CLIENT_ADDRESS
    # The same nginx in front of a server that does not list it: the browser used https, but
    # CloudHelp cannot know it, so no HSTS, no Secure cookie, and the address is nginx's.
    async with running_server(sqlite_demo_url, data_dir=tmp_path / "data2") as server:
        await server.set_demo_password("zhaogang")
        async with nginx_in_front(server.server.port, tmp_path / "untrusted", ca) as nginx:
            async with https_client(ca) as client:
                r = await _sign_in(client, nginx.base_url, FORGED)
                assert "Strict-Transport-Security" not in r.headers
                assert not r.cookies[STAFF_COOKIE]["secure"]
                assert await _last_sign_in_address(server) == "127.0.0.1"
