"""HTTPS served by ``cloudhelp serve --tls-cert --tls-key`` itself (issue 14).

The real command in a child process, a certificate from a CA the test makes (tests/tlskit.py),
headless Chromium trusting that CA: the pages load as a secure context, the WebSocket upgrades
over wss, the session cookie is Secure, HSTS is sent; SIGHUP makes new handshakes get a renewed
certificate (a broken renewal leaves the old one in service); the plain-HTTP port answers 308.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Error as PlaywrightError

from cloudhelp.domain.accounts import STAFF_COOKIE
from tests.browserkit import chromium, new_page
from tests.callkit import DEMO_PASSWORD
from tests.helpers import run_cli
from tests.tlskit import (
    HOSTNAME,
    TestCA,
    free_port,
    presented_serial,
    staff_console_over_https,
    wait_for_port,
)


@dataclass
class TlsServer:
    process: asyncio.subprocess.Process
    port: int
    redirect_port: int
    log: Path

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CLOUDHELP_DATA_DIR": str(tmp_path / "data"),
        "CLOUDHELP_WARNING_CHECK_SECONDS": "0",
        "CLOUDHELP_FILE_PURGE_CHECK_SECONDS": "0",
    }


@asynccontextmanager
async def tls_server(
    db_url: str, tmp_path: Path, cert: Path, key: Path
) -> AsyncIterator[TlsServer]:
    """``cloudhelp serve`` over HTTPS with a plain-HTTP redirect port, stopped by SIGTERM."""
    port, redirect_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cloudhelp", "serve", "--db", db_url, "--port", str(port),
            "--tls-cert", str(cert), "--tls-key", str(key),
            "--http-redirect-port", str(redirect_port),
            stdout=asyncio.subprocess.PIPE, stderr=stderr, env=_env(tmp_path),
        )  # fmt: skip
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert first == f"CloudHelp is running: open https://127.0.0.1:{port}/\n", (
            first + log.read_text()
        )
        lines = [(await process.stdout.readline()).decode() for _ in range(2)]
        assert lines[1] == f"Plain HTTP on port {redirect_port} redirects to HTTPS.\n", lines
        yield TlsServer(process, port, redirect_port, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0, log.read_text()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "pki")


def _set_password(db_url: str, tmp_path: Path) -> None:
    done = run_cli("staff", "password", "zhaogang", "--password-stdin", "--db", db_url,
                   env=_env(tmp_path), input_text=DEMO_PASSWORD + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_pages_load_over_https_in_chromium_trusting_the_test_ca(
    sqlite_demo_url: str, tmp_path: Path, ca: TestCA
) -> None:
    _set_password(sqlite_demo_url, tmp_path)
    cert, key, _ = ca.issue("server")
    async with (
        tls_server(sqlite_demo_url, tmp_path, cert, key) as server,
        chromium(extra_flags=ca.chromium_flags()) as browser,
    ):
        # Plain HTTP on a name that is not localhost is no secure context (no camera for a
        # kiosk): the redirect port sends the browser to HTTPS, method and path kept.
        first_visit = await new_page(browser, f"http://{HOSTNAME}:{server.redirect_port}")
        response = await first_visit.goto("/kiosk")
        assert response is not None and response.url == f"https://{HOSTNAME}:{server.port}/kiosk"
        assert await first_visit.evaluate("window.isSecureContext") is True
        page = await staff_console_over_https(
            browser, f"https://{HOSTNAME}:{server.port}", "tls-direct-staff"
        )
        # HSTS was taken: this browser now goes to https for http:// URLs of the name, even on
        # the plain port (where a TLS handshake fails), never sending a request in the clear.
        with pytest.raises(PlaywrightError, match="ERR_SSL_PROTOCOL_ERROR"):
            await page.goto(f"http://{HOSTNAME}:{server.redirect_port}/kiosk")
        # An API client trusting the CA (hostname checked) gets HSTS and a Secure cookie too.
        connector = aiohttp.TCPConnector(ssl=ca.client_context())
        async with aiohttp.ClientSession(connector=connector) as client:
            body = {"username": "zhaogang", "password": DEMO_PASSWORD}
            url = f"https://127.0.0.1:{server.port}/api/v1/auth/login"
            async with client.post(url, json=body) as r:
                assert r.status == 200, await r.text()
                assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
                morsel = r.cookies[STAFF_COOKIE]
                assert morsel["secure"] is True and morsel["httponly"] is True


async def test_sighup_reloads_the_certificate_and_a_broken_renewal_keeps_the_old(
    sqlite_demo_url: str, tmp_path: Path, ca: TestCA
) -> None:
    cert, key, first_serial = ca.issue("server")
    context = ca.client_context()
    async with tls_server(sqlite_demo_url, tmp_path, cert, key) as server:
        assert presented_serial(server.port, context) == first_serial
        # A renewal written over the same files (as certbot's deploy hook copies them).
        new_cert, new_key, second_serial = ca.issue("renewed")
        cert.write_bytes(new_cert.read_bytes())
        key.write_bytes(new_key.read_bytes())
        assert presented_serial(server.port, context) == first_serial  # not before the signal
        server.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            if presented_serial(server.port, context) == second_serial:
                break
            await asyncio.sleep(0.05)
        assert presented_serial(server.port, context) == second_serial
        # A half-done renewal: a certificate whose key is not the one beside it.
        third_cert, _, _ = ca.issue("third")
        cert.write_bytes(third_cert.read_bytes())
        server.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            if any(e["event"] == "tls.reload_failed" for e in server.events()):
                break
            await asyncio.sleep(0.05)
        failed = [e for e in server.events() if e["event"] == "tls.reload_failed"]
        assert failed and failed[0]["level"] == "error", server.log.read_text()
        assert "cannot be used together" in failed[0]["reason"]
        # Still serving, with the last good certificate.
        assert presented_serial(server.port, context) == second_serial
    reloaded = [e for e in server.events() if e["event"] == "tls.reloaded"]
    assert len(reloaded) == 1


async def test_http_redirect_port_answers_308_to_the_https_url(
    sqlite_demo_url: str, tmp_path: Path, ca: TestCA
) -> None:
    cert, key, _ = ca.issue("server")
    async with tls_server(sqlite_demo_url, tmp_path, cert, key) as server:
        base = f"http://127.0.0.1:{server.redirect_port}"
        async with aiohttp.ClientSession() as client:
            for method, path, host in (
                ("GET", "/kiosk?enrol=ABC&lang=en", None),
                ("POST", "/api/v1/auth/login", None),
                ("GET", "/", f"{HOSTNAME}:{server.redirect_port}"),
            ):
                headers = {"Host": host} if host else {}
                async with client.request(
                    method, base + path, headers=headers, allow_redirects=False
                ) as r:
                    assert r.status == 308, (method, path)
                    name = host.split(":")[0] if host else "127.0.0.1"
                    assert r.headers["Location"] == f"https://{name}:{server.port}{path}"
        await wait_for_port(server.port)


def test_tls_settings_refused_in_one_sentence(
    sqlite_demo_url: str, tmp_path: Path, ca: TestCA
) -> None:
    cert, key, _ = ca.issue("server")
    other_cert, _, _ = ca.issue("other")
    env = _env(tmp_path)
    cases = [
        (["--tls-cert", str(cert)], "tls_cert and tls_key go together"),
        (["--http-redirect-port", "8081"], "http_redirect_port redirects to HTTPS"),
        (["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key)], "does not exist"),
        (["--tls-cert", str(other_cert), "--tls-key", str(key)], "cannot be used together"),
    ]
    for flags, said in cases:
        done = run_cli("serve", "--db", sqlite_demo_url, "--port", "0", *flags, env=env)
        assert done.returncode == 1, (flags, done.stderr)
        assert said in done.stderr and "Traceback" not in done.stderr, (flags, done.stderr)
