"""Operations endpoints on a real server over real sockets: /healthz, /readyz, /metrics.

/metrics is parsed with prometheus-client's own parser and its figures checked against the state
the test made (a kiosk queued, a call connected, messages relayed, a file kept). /readyz is
checked with the migrations behind; tests/test_db_outage.py checks it with the database down.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from alembic.config import Config
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from cloudhelp.app import create_app
from cloudhelp.core.config import Settings
from cloudhelp.store import db
from cloudhelp.store.models import Department, ServiceItem, Ticket, TicketFile, utcnow
from signaling.broker import InProcessBroker
from tests.callkit import CallServer, running_server

TURN_SECRET = "ops-test-secret"


async def scrape(server: CallServer, **headers: str) -> dict[tuple[str, tuple[Any, ...]], float]:
    """/metrics as {(sample name, sorted labels): value}, parsed by prometheus-client."""
    async with server.http.get("/metrics", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        body = await response.text()
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[Any, ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_healthz_and_readyz_when_ready(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        async with server.http.get("/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "alive"}
        # Asked as an orchestrator's readiness probe asks, every second until ready: one answer
        # may miss the probe's 2-s limit on a loaded machine (a CI run's PostgreSQL did, while
        # the suite's browsers ran beside it), and says so (503 naming the database).
        for _attempt in range(20):
            async with server.http.get("/readyz") as response:
                body = await response.json()
                if response.status == 200:
                    break
                assert response.status == 503 and "database" in body["failed"], body
            await asyncio.sleep(1)
        assert response.status == 200, body
        assert body["status"] == "ready" and body["failed"] == []
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["database"]["latency_ms"] >= 0
        migrations = body["checks"]["migrations"]
        assert migrations["ok"] is True
        assert migrations["current"] == migrations["head"] == sorted(db.head_revisions())
        # One process, no redis_url: Redis is neither checked nor reported.
        assert set(body["checks"]) == {"database", "migrations"}
        async with server.http.get("/metrics") as response:
            assert "cloudhelp_redis" not in await response.text()
        async with server.http.get("/api/v1/health") as response:
            assert response.status == 200
            assert (await response.json())["database"]["latency_ms"] >= 0


async def test_readyz_fails_while_migrations_are_behind(demo_url: str) -> None:
    """The database answers but is at an older revision than this code: not ready (503, the
    migrations check named), ready again once it is at head."""
    (head,) = db.head_revisions()
    async with running_server(demo_url) as server:
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
        older = ScriptDirectory.from_config(config).get_revision(head).down_revision
        assert isinstance(older, str)
        engine = server.state.db.engine
        async with engine.begin() as conn:  # as if the new code ran on a database not upgraded
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": older})
        async with server.http.get("/readyz") as response:
            body = await response.json()
            assert response.status == 503, body
        assert body["status"] == "not_ready" and body["failed"] == ["migrations"]
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["migrations"] == {
            "ok": False, "current": [older], "head": [head]
        }  # fmt: skip
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        async with server.http.get("/readyz") as response:
            assert response.status == 200, await response.text()


async def test_metrics_follow_the_queue_a_call_and_the_files(demo_url: str) -> None:
    settings = {"turn_urls": ["turn:127.0.0.1:3478"], "turn_secret": TURN_SECRET}
    async with running_server(demo_url, **settings) as server:
        before = await scrape(server)
        async with server.state.db.read() as s:
            department = await s.scalar(
                select(Department.code)
                .join(ServiceItem, ServiceItem.department_id == Department.id)
                .where(ServiceItem.code == "NYNC-002")
            )
        assert department
        assert value(before, "cloudhelp_queue_length", department=department) == 0
        assert value(before, "cloudhelp_calls_in_progress") == 0
        assert value(before, "cloudhelp_database_up") == 1
        assert value(before, "cloudhelp_relayed_messages_total") == 0

        kiosk = await server.kiosk("QG-01")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        async with server.state.db.write() as s:  # it has waited 90 s
            row = await s.get(Ticket, ticket["id"])
            assert row is not None
            row.enqueued_at = utcnow() - timedelta(seconds=90)
        queued = await scrape(server)
        assert value(queued, "cloudhelp_queue_length", department=department) == 1
        oldest = value(queued, "cloudhelp_queue_oldest_wait_seconds", department=department)
        assert 90 <= oldest < 120
        other = [k for k in queued if k[0] == "cloudhelp_queue_length" and k[1] != (
            ("department", department),)]  # fmt: skip
        assert other and all(queued[k] == 0 for k in other)  # every department is listed
        assert value(queued, "cloudhelp_sessions", kind="kiosk", role="kiosk", purpose="") == 1
        assert value(queued, "cloudhelp_turn_credentials_issued_total") == 1

        staff = await server.staff("zhaogang")
        ring = await staff.expect("ring")
        await staff.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        await kiosk.expect("joined")
        await staff.expect("joined")
        await kiosk.send({"type": "app", "data": {"kind": "chat", "text": "你好"}})
        await staff.expect("app")
        await staff.send({"type": "candidate", "candidate": None})
        await kiosk.expect("candidate")
        async with server.state.db.write() as s:
            s.add(TicketFile(ticket_id=ticket["id"], sha256="ab" * 32, name="id.jpg",
                             content_type="image/jpeg", size=2048, sender="kiosk",
                             uploaded_by="kiosk"))  # fmt: skip
        in_call = await scrape(server)
        assert value(in_call, "cloudhelp_queue_length", department=department) == 0
        assert value(in_call, "cloudhelp_queue_oldest_wait_seconds", department=department) == 0
        assert value(in_call, "cloudhelp_calls_in_progress") == 1
        assert value(in_call, "cloudhelp_relayed_messages_total") == 2
        assert value(in_call, "cloudhelp_turn_credentials_issued_total") == 2
        role = staff.welcome["principal"]["role"]
        assert value(in_call, "cloudhelp_sessions", kind="staff", role=role, purpose="console") == 1
        assert value(in_call, "cloudhelp_files_stored") == 1
        assert value(in_call, "cloudhelp_files_stored_bytes") == 2048
        assert value(in_call, "cloudhelp_database_probe_seconds") > 0
        for quantile in ("0.5", "0.99", "1"):
            lag = value(in_call, "cloudhelp_event_loop_lag_seconds", quantile=quantile)
            assert 0 <= lag < 5
        assert value(in_call, "process_resident_memory_bytes") > 10 * 1024**2


async def test_metrics_only_for_the_allowed_networks(sqlite_demo_url: str) -> None:
    """Loopback may scrape by default; a request relayed by an untrusted proxy may not (its
    client is unknown); through a trusted proxy the client's own address decides. Two servers
    in one process keep their own registries (on one database, so they share a broker: nodes,
    cloudhelp/store/serverlock.py)."""
    broker = InProcessBroker()
    async with running_server(sqlite_demo_url, broker) as local:
        await scrape(local)
        async with local.http.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}) as r:
            assert r.status == 403
            assert (await r.json())["error"]["code"] == "forbidden"
        networks = ["10.0.0.0/8"]
        async with running_server(sqlite_demo_url, broker, metrics_networks=networks) as elsewhere:
            async with elsewhere.http.get("/metrics") as r:
                assert r.status == 403
            await scrape(local)  # the first server's registry is untouched
        proxied = {"trusted_proxies": ["127.0.0.1"], "metrics_networks": ["10.0.0.0/8"]}
        async with running_server(sqlite_demo_url, broker, **proxied) as behind:
            samples = await scrape(behind, **{"X-Forwarded-For": "10.1.2.3"})
            assert value(samples, "cloudhelp_database_up") == 1
            async with behind.http.get("/metrics", headers={"X-Forwarded-For": "192.0.2.7"}) as r:
                assert r.status == 403


async def test_a_page_that_fails_answers_the_error_page_in_the_readers_language(
    sqlite_demo_url: str, tmp_path: Path
) -> None:
    """Any page failure (not only an outage) is the project's error page, logged, in zh-CN or
    English — never aiohttp's bare "500 Internal Server Error / Server got itself in trouble"."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a page's own bug")

    app = create_app(Settings(database_url=sqlite_demo_url, data_dir=tmp_path))
    app.router.add_get("/broken", broken)  # a page with a bug: the middleware is the real one
    app.router.add_get("/api/v1/broken", broken)
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as http:
        async with http.get(server.make_url("/broken")) as response:
            assert response.status == 500
            page = await response.text()
        assert "服务器出了点问题，请稍后重试。" in page and "Server got itself" not in page
        async with http.get(server.make_url("/broken?lang=en")) as response:
            assert response.status == 500 and "Server got itself" not in await response.text()
        async with http.get(server.make_url("/api/v1/broken")) as response:
            assert response.status == 500
            assert (await response.json())["error"]["code"] == "internal_error"
