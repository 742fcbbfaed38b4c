"""PostgreSQL stopped abruptly (``pg_ctl stop -m immediate``) under a running server, and
started again: during the outage the API and pages answer 503 with the message, protocol
operations answer ``service_unavailable`` and the kiosk page says so; nothing half-written
remains; afterwards the server recovers by itself and a resident's first call works.

The cluster is the test's own (tests/pgcluster.py), so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiohttp import ClientConnectionResetError, web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import expect
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from cloudhelp.devtools import demo
from cloudhelp.http.outage import database_outage
from cloudhelp.media.peer import ProtocolError, SignalingClient
from cloudhelp.store import db, serverlock
from cloudhelp.store.models import Ticket
from cloudhelp.store.outage import RETRY_AFTER_SECONDS, is_unavailable
from tests.browserkit import chromium, new_page, snap
from tests.callkit import CallServer, running_server, until
from tests.pgcluster import private_cluster
from tests.test_browser import enrolled_kiosk

UNAVAILABLE_ZH = "服务暂时不可用，正在重试"


async def _demo_database(url: str) -> None:
    engine = db.create_engine(url)
    await db.upgrade(engine)
    async with db.session_factory(engine)() as session, session.begin():
        await demo.load_samples(session)
    await engine.dispose()


async def _wait_ready(server: CallServer, seconds: float = 30.0) -> float:
    """Seconds until /readyz says ready again."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < seconds:
        async with server.http.get("/readyz") as response:
            if response.status == 200:
                return loop.time() - started
        await asyncio.sleep(0.2)
    pytest.fail(f"/readyz not ready {seconds:g} s after PostgreSQL came back")


async def _outage_answers(server: CallServer) -> None:
    """What HTTP clients get while the database is down."""
    async with server.http.get("/api/v1/items") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        body = await response.json()
        assert body["error"]["code"] == "service_unavailable"
        assert "unavailable" in body["error"]["message"]
    async with server.http.get("/api/v1/health") as response:
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "service_unavailable"
    async with server.http.get("/") as response:  # a page that reads the database
        assert response.status == 503
        assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert response.content_type == "text/html"
        page = await response.text()
        assert UNAVAILABLE_ZH in page and "Server got itself in trouble" not in page
        assert f'http-equiv="refresh" content="{RETRY_AFTER_SECONDS}"' in page
    async with server.http.get("/?lang=en") as response:
        assert response.status == 503
        assert "briefly unavailable" in await response.text()
    async with server.http.get("/readyz") as response:
        assert response.status == 503
        body = await response.json()
        assert body["failed"] == ["database", "migrations"]
        assert body["checks"]["database"]["ok"] is False and body["checks"]["database"]["error"]
    async with server.http.get("/healthz") as response:
        assert response.status == 200  # alive all the same
    async with server.http.get("/metrics") as response:
        assert response.status == 200
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        assert families["cloudhelp_database_up"].samples[0].value == 0
        assert "cloudhelp_queue_length" not in families  # unknown, not zero


async def test_postgresql_stopped_abruptly_and_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server checks every half second that it still holds its database (the restart
    # drops the lock with its connection): checked at the end.
    monkeypatch.setattr(serverlock, "RECHECK_SECONDS", 0.5)
    with private_cluster() as cluster:
        await _demo_database(cluster.url)
        async with running_server(cluster.url) as server, chromium() as browser:
            # Before: a kiosk page enrolled and on its home screen, a kiosk client signed in,
            # a staff sign-in token.
            page = await new_page(browser, server.base_url)
            await enrolled_kiosk(server, page, "QG-02")
            kiosk = await server.kiosk("QG-01")
            staff_token = await server.staff_token("zhaogang")
            second_credential = await server.kiosk_credential("QG-03")

            # A console saying hello while its presence row cannot be written (the table
            # locked by another connection): registered, but not welcomed before it is taken
            # up; the database then stops under it, and the answer is the error, no welcome.
            hub = server.state.callcenter.hub
            locker = db.create_engine(cluster.url)
            lock = await locker.connect()
            await lock.begin()
            await lock.execute(text("LOCK TABLE staff_presence IN EXCLUSIVE MODE"))
            console = SignalingClient(server.base_url, server.http)
            console_hello = asyncio.create_task(
                console.connect({"kind": "staff", "token": staff_token})
            )
            await until(lambda: len(hub.sessions) == 3, what="the console's session", every=0.01)
            await asyncio.sleep(0.2)  # a welcome sent before the start would be here by now
            assert not console_hello.done()

            await cluster.stop_async("immediate")
            with pytest.raises(ProtocolError) as console_refused:
                await console_hello
            assert console_refused.value.frame["code"] == "service_unavailable"
            assert console_refused.value.frame["ref"] == "hello"
            with contextlib.suppress(Exception):
                await lock.close()
            await locker.dispose()
            await _outage_answers(server)

            # The protocol: an operation needing the database, and a new sign-in, are refused
            # with service_unavailable; the kiosk's connection stays up.
            await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
            refused = await kiosk.expect("error")
            assert refused["code"] == "service_unavailable" and refused["ref"] == "ticket.take"
            newcomer = SignalingClient(server.base_url, server.http)
            with pytest.raises(ProtocolError) as hello:
                await newcomer.connect({"kind": "kiosk", "credential": second_credential})
            assert hello.value.frame["code"] == "service_unavailable"
            assert hello.value.frame["ref"] == "hello"
            assert len(server.state.callcenter.hub.sessions) == 2  # the refused one is not kept

            # The kiosk page, reloaded during the outage, says so.
            await page.reload()
            await expect(page.locator("#banner")).to_contain_text(UNAVAILABLE_ZH)
            await expect(page.locator("#banner")).to_be_visible()
            # No heading alone over nothing: the categories are shown once they can be loaded.
            await expect(page.locator("#categories-title")).to_be_hidden()
            await snap(page, "db-outage-kiosk")
            home = await new_page(browser, server.base_url)
            answer = await home.goto("/")
            assert answer is not None and answer.status == 503
            await expect(home.locator("[role=alert]")).to_contain_text(UNAVAILABLE_ZH)
            await snap(home, "db-outage-home-page")
            await home.close()

            await cluster.start_async()
            recovered = await _wait_ready(server)
            print(f"readyz ready {recovered:.2f} s after PostgreSQL started")
            assert recovered < 15

            # Nothing half-written: the refused ticket left no row.
            async with server.state.db.read() as session:
                assert await session.scalar(select(func.count()).select_from(Ticket)) == 0

            # The kiosk page recovered by itself (its retries): home tiles, no banner.
            await expect(page.locator("#hot [data-item]").first).to_be_visible(timeout=20_000)
            await expect(page.locator("#categories .chip").first).to_be_visible()
            await expect(page.locator("#banner")).to_be_hidden(timeout=20_000)
            await snap(page, "db-outage-kiosk-recovered")

            # A resident's first call after the outage: ticket, then the staff member is rung.
            await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
            ticket = (await kiosk.expect("ticket"))["ticket"]
            assert ticket["status"] == "waiting"
            staff = await server.connect({"kind": "staff", "token": staff_token})
            await staff.expect("presence", state="away")
            await staff.send({"type": "staff.status", "status": "available"})
            ring = await staff.expect("ring")
            assert ring["ticket"]["id"] == ticket["id"]
            await staff.send({"type": "ring.accept", "ticket": ticket["id"]})
            await kiosk.expect("joined")
            await newcomer.connect({"kind": "kiosk", "credential": second_credential})
            await newcomer.close()

            # The server holds its database again: a server started alone beside it is refused.
            probe = db.create_engine(cluster.url)
            try:
                async with probe.connect() as connection:
                    shared = text("SELECT pg_try_advisory_lock_shared(:key)")
                    release = text("SELECT pg_advisory_unlock_shared(:key)")
                    key = {"key": serverlock.ADVISORY_KEY}

                    async def held_again() -> bool:
                        if await connection.scalar(shared, key):
                            await connection.scalar(release, key)
                            return False
                        return True

                    await until(held_again, what="the server to hold its database again")
            finally:
                await probe.dispose()
            with pytest.raises(serverlock.DatabaseInUse):
                async with running_server(cluster.url):
                    pass


async def test_a_client_gone_mid_request_is_not_a_database_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler failing because its client went away (aiohttp's ClientConnectionResetError, a
    ConnectionError like a database's) is neither answered 503 nor logged as a database outage;
    a database's connection error still is."""

    async def client_gone(request: web.Request) -> web.Response:
        raise ClientConnectionResetError("Cannot write to closing transport")

    async def database_gone(request: web.Request) -> web.Response:
        raise ConnectionRefusedError(111, "Connection refused")

    app = web.Application(middlewares=[database_outage])
    app.router.add_get("/api/v1/client-gone", client_gone)
    app.router.add_get("/api/v1/database-gone", database_gone)
    assert not is_unavailable(ClientConnectionResetError("Cannot write to closing transport"))
    assert is_unavailable(ConnectionRefusedError(111, "Connection refused"))
    async with TestClient(TestServer(app)) as client:
        gone = await client.get("/api/v1/client-gone")
        assert gone.status == 500
        assert "http.database_unavailable" not in caplog.text
        down = await client.get("/api/v1/database-gone")
        assert down.status == 503 and down.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert "http.database_unavailable" in caplog.text
