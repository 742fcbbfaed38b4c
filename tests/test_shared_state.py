"""What several nodes share besides the broker (docs/scaling.md): the throttles of guesses in
Redis, board and warning pushes across nodes, and Redis in ``/readyz`` and ``/metrics``.

Node A and node B are two CloudHelp servers in this process on one PostgreSQL database and one
real redis-server; nothing passes between them but Redis and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from cloudhelp.callcenter.pushes import BOARD_COALESCE_SECONDS
from cloudhelp.callcenter.watchers import BOARD_REFRESH_SECONDS, ENDED_CALLS_CHECK_SECONDS
from cloudhelp.core.throttle import FailureThrottle
from cloudhelp.domain import queue
from cloudhelp.store.models import AuditEvent, CallQuality, TicketEvent, utcnow
from cloudhelp.store.redis_throttle import RETRY_SECONDS, RedisThrottle
from tests.callkit import DEMO_PASSWORD, CallServer, running_server, scraped_metrics, until
from tests.rediskit import private_redis, shared_redis_url
from tests.test_accounts import _browser_at, _sign_in
from tests.test_redis_broker import ITEM, call_across, node, pg_demo_url, two_nodes  # noqa: F401
from tests.test_timeouts import CALENDAR

pytestmark = pytest.mark.usefixtures("loopback_ice")

LOGIN_KEYS = "cloudhelp:throttle:login:account:{user}*"
WRONG = "wrong-password"


async def login_keys(redis: Redis, user: str) -> dict[str, int]:
    """The login throttle's keys of ``user`` in Redis → how many failures each holds."""
    keys = [key async for key in redis.scan_iter(LOGIN_KEYS.format(user=user))]
    return {key: await redis.zcard(key) for key in keys}


async def test_both_throttles_answer_alike() -> None:
    """The throttle shared through Redis and the one in a process's memory, side by side: the
    same limits reached, the same wait, the same failures kept."""
    async with Redis.from_url(shared_redis_url(), decode_responses=True) as redis:
        shared = RedisThrottle(redis, f"test-{uuid.uuid4().hex[:8]}", keep=3, window=60.0)
        local = FailureThrottle(3, 60.0)
        limits = [("k", 2), ("j", 3)]  # k refused after 2 failures, j after 3
        for throttle in (shared, local):
            assert await throttle.wait(limits) == 0
            reached = [await throttle.add(limits) for _ in range(4)]
            assert reached == [[False, False], [True, False], [False, True], [False, False]]
            assert 59 < await throttle.wait(limits) <= 60
            assert 59 < await throttle.take(limits) <= 60  # refused: not counted
            assert 59 < await throttle.wait([("k", 2)]) <= 60
            assert await throttle.wait([("k", 4)]) == 0  # keeps 3 failures a key, no more
            await throttle.clear(["k"])
            assert await throttle.wait(limits) > 0  # j still at its limit
            assert await throttle.take([("k", 2)]) == 0  # allowed, and counted
            assert await throttle.wait([("k", 1)]) > 0
        assert await redis.zcard(shared.key("j")) == 3
        assert 59_000 < await redis.pttl(shared.key("j")) <= 60_000
        await redis.delete(shared.key("j"), shared.key("k"))


# Long enough that five sign-ins (each hashes a password) fit in it on a busy machine.
WINDOW = 8.0


async def test_failures_counted_on_one_node_refuse_the_account_on_another(
    pg_demo_url: str,  # noqa: F811
) -> None:
    url = shared_redis_url()
    limits = {"login_failures_per_address": 3, "login_failures_per_account": 5,
              "login_window_seconds": WINDOW}  # fmt: skip
    async with (
        Redis.from_url(url, decode_responses=True) as redis,
        running_server(pg_demo_url, redis_url=url, node_id=node("a"), **limits) as a,
        running_server(pg_demo_url, redis_url=url, node_id=node("b"), **limits) as b,
    ):
        await a.staff_token("liumei")  # sets her password; the right one clears her counts
        async with _browser_at(a, "127.0.0.1") as on_a, _browser_at(b, "127.0.0.1") as on_b:
            started = time.monotonic()  # before the oldest failure
            for _ in range(3):
                assert (await _sign_in(on_a, "liumei", WRONG))[0] == 401
            # Three failures on node A lock her out from this address on node B too, even with
            # the right password; the answer says how long, from the oldest failure.
            status, body = await _sign_in(on_b, "liumei", DEMO_PASSWORD)
            assert status == 429 and body["error"]["code"] == "too_many_attempts"
            retry, elapsed = body["error"]["retry_after"], time.monotonic() - started
            # What is left of the window since the oldest failure (sign-ins hash: a busy
            # machine takes seconds over three), rounded up.
            assert math.floor(WINDOW - elapsed) <= retry <= WINDOW
            assert body["retry_header"] == str(retry)
            # One sorted set per key, each failure once; each key lives as long as the window.
            keys = await login_keys(redis, "liumei")
            assert sorted(keys.values()) == [3, 3], keys
            for key in keys:
                assert 0 < await redis.pttl(key) <= WINDOW * 1000
            # From another address the account may still try, up to the per-account limit
            # (5), counted across both nodes.
            async with _browser_at(a, "127.0.0.2") as a2, _browser_at(b, "127.0.0.2") as b2:
                assert (await _sign_in(a2, "liumei", WRONG))[0] == 401
                assert (await _sign_in(b2, "liumei", WRONG))[0] == 401
                assert (await _sign_in(b2, "liumei", DEMO_PASSWORD))[0] == 429
            # The window ends and she signs in on B; the right password ends the counts of her
            # account and of this address (the other address's last failures end with its TTL).
            await asyncio.sleep(retry)
            assert (await _sign_in(on_b, "liumei", DEMO_PASSWORD))[0] == 200
            left = set(await login_keys(redis, "liumei"))
            assert left <= {"cloudhelp:throttle:login:account:liumei|address:127.0.0.2"}, left

            # Guesses sent side by side to both nodes: exactly three are checked.
            guesses = [_sign_in(client, "liumei", f"{WRONG}-{n}")
                       for n in range(4) for client in (on_a, on_b)]  # fmt: skip
            statuses = sorted(status for status, _ in await asyncio.gather(*guesses))
            assert statuses == [401] * 3 + [429] * 5


async def test_case_and_appointment_lookups_are_counted_across_nodes(
    pg_demo_url: str,  # noqa: F811
) -> None:
    async with two_nodes(pg_demo_url) as (a, b):
        # A case number guessed five times from two kiosks, on nodes A and B in turn, is closed
        # to a third kiosk; the failure that reached the limit is audited once.
        number = f"210211-20000101-{uuid.uuid4().int % 10_000:04d}"
        kiosks = [await a.kiosk_credential(code) for code in ("QG-01", "QG-02")]
        for n in range(5):
            assert (await lookup((a, b)[n % 2], kiosks[n % 2], number))[0] == 404
        third = await b.kiosk_credential("QG-03")
        status, body = await lookup(b, third, number)
        assert status == 429 and body["error"]["code"] == "lookup_throttled"
        assert body["error"]["minutes"] == 15
        assert (await lookup(a, third, number))[0] == 429
        async with a.state.db.read() as session:
            rows = (await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "case.lookup_throttled",
                                         AuditEvent.subject == number)
            )).all()  # fmt: skip
        assert [(row.subject_kind, row.actor_name) for row in rows] == [("case", "QG-01")]

        # An appointment code guessed on node A five times is refused on node B.
        guess = {"code": f"Z{uuid.uuid4().hex[:7].upper()}", "last4": "1111"}
        for _ in range(5):
            async with a.http.post("/api/v1/appointments/find", json=guess) as r:
                assert r.status == 404, await r.text()
        async with b.http.post("/api/v1/appointments/find", json=guess) as r:
            assert r.status == 429 and (await r.json())["error"]["code"] == "lookup_throttled"


async def lookup(server: CallServer, credential: str, number: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Kiosk {credential}"}
    body = {"number": number, "last4": "1234"}
    async with server.http.post("/api/v1/kiosk/cases/lookup", json=body, headers=headers) as r:
        return r.status, await r.json()


async def test_a_board_on_one_node_follows_what_happens_on_another(
    pg_demo_url: str,  # noqa: F811
) -> None:
    async with two_nodes(pg_demo_url) as (a, b):
        supervisor = await b.staff("sunhua", available=False)  # watches the board on node B
        await supervisor.send({"type": "board.watch"})
        board = await supervisor.expect("board")
        assert waiting(board, "NYNC") == 0 and "zhaogang" not in staff_states(board)
        kiosk = await a.kiosk("QG-01")
        await asyncio.sleep(1.1)  # B pushes at most once a second: none in the last one

        # The kiosk on node A takes a ticket: node B's board shows it within the coalescing
        # window plus the Redis hop, long before B's own periodic refresh (10 s) would.
        await kiosk.send({"type": "ticket.take", "item": ITEM})
        await kiosk.expect("ticket")
        taken = time.monotonic()
        await supervisor.expect_where("board", lambda f: waiting(f, "NYNC") == 1, timeout=5)
        assert time.monotonic() - taken < BOARD_COALESCE_SECONDS + 1.0 < BOARD_REFRESH_SECONDS / 2

        # zhaogang signs in on node A and is rung: his presence shows on node B's board.
        staff = await a.staff("zhaogang")
        await staff.expect("ring")
        await supervisor.expect_where(
            "board", lambda f: staff_states(f).get("zhaogang") == "ringing", timeout=5
        )


def waiting(board: dict[str, Any], department: str) -> int:
    return next(int(d["waiting"]) for d in board["departments"] if d["code"] == department)


def staff_states(board: dict[str, Any]) -> dict[str, str]:
    return {row["username"]: row["state"] for row in board["staff"]}


async def test_a_warning_raised_on_one_node_reaches_a_board_and_a_console_on_another(
    pg_demo_url: str,  # noqa: F811
) -> None:
    async with two_nodes(pg_demo_url) as (a, b):
        cookies = {"cloudhelp_session": await b.staff_token("sunhua")}
        calendar_only_when_late = {"kind": CALENDAR, "value": 0}
        async with b.http.put(
            "/api/v1/warning-thresholds", json=calendar_only_when_late, cookies=cookies
        ) as r:
            assert r.status == 200
        supervisor = await b.staff("sunhua", available=False)
        await supervisor.send({"type": "board.watch"})
        assert (await supervisor.expect("board"))["warnings"] == []
        kiosk, staff = await call_across(a, b)  # the kiosk on A, zhaogang on B
        await asyncio.sleep(1.5)  # the pushes of the call's start are over on both nodes

        # Node A finds the call too long: zhaogang's console and the board, both on node B,
        # are told.
        assert await a.state.callcenter.check_warnings(utcnow() + timedelta(seconds=1900))
        told = await staff.expect_where("warnings", lambda m: m["warnings"], timeout=5)
        assert [w["kind"] for w in told["warnings"]] == ["call_long"]
        board = await supervisor.expect_where("board", lambda f: f["warnings"], timeout=5)
        assert told["warnings"][0]["id"] in [w["id"] for w in board["warnings"]]
        await kiosk.send({"type": "call.hangup"})


async def test_a_call_across_nodes_keeps_both_sides_figures_and_log(
    pg_demo_url: str,  # noqa: F811
) -> None:
    async with two_nodes(pg_demo_url) as (a, b):
        kiosk, staff = await call_across(a, b)  # the kiosk on A, zhaogang on B
        await kiosk.send({"type": "call.stats", "rtt_ms": 40, "loss": 0.0})
        await staff.send({"type": "call.stats", "rtt_ms": 650, "loss": 0.12})
        await kiosk.send({"type": "app", "data": {"kind": "chat", "text": "你好"}})
        await staff.expect("app")
        await kiosk.send({"type": "app", "data": {"kind": "screen", "on": True}})
        await staff.expect("app")
        for text in ("您好", "请出示证件"):
            await staff.send({"type": "app", "data": {"kind": "chat", "text": text}})
            await kiosk.expect("app")
        # Each node holds its own member's side of the call.
        on_a, on_b = a.state.callcenter.quality.calls, b.state.callcenter.quality.calls
        for _ in range(50):
            if on_a and on_b:
                break
            await asyncio.sleep(0.1)
        (room,) = on_a
        assert set(on_b) == {room}
        assert set(on_a[room].sides) == {"kiosk"} and set(on_b[room].sides) == {"staff"}
        assert room in a.state.callcenter._call_log  # the kiosk's chat line, counted on A

        # zhaogang hangs up on B: B saves its side at once, A its own within seconds, and
        # neither keeps anything of the call.
        await staff.send({"type": "call.hangup"})
        await kiosk.expect("left")
        call_id = int(room.removeprefix("call-"))
        for _ in range(100):
            async with a.state.db.read() as s:
                sides = set(await s.scalars(
                    select(CallQuality.side).where(CallQuality.call_id == call_id)
                ))  # fmt: skip
            if sides == {"kiosk", "staff"}:
                break
            await asyncio.sleep(0.1)
        assert sides == {"kiosk", "staff"}
        # A side's last sample, shared just before the end, may reach the other node after it
        # let the call go: that node forgets it again at its next check of ended calls.
        await until(
            lambda: not any(server.state.callcenter.quality.calls for server in (a, b)),
            timeout=2 * ENDED_CALLS_CHECK_SECONDS,
            what="both nodes to let the call's figures go",
        )
        for server in (a, b):
            assert server.state.callcenter.quality.calls == {}
            assert server.state.callcenter._call_log == {}
        # The session log has both sides: zhaogang's two lines saved by B with the end, the
        # kiosk's line and screen toggle added by A.
        async with a.state.db.read() as s:
            ended = await s.scalar(select(TicketEvent).where(TicketEvent.kind == "ended"))
        assert ended is not None and ended.detail["call"] == call_id
        assert ended.detail["chats"] == 3
        assert [(t["by"], t["on"]) for t in ended.detail["screen"]] == [("kiosk", True)]


async def test_a_console_and_every_board_see_both_sides_quality_across_nodes(
    pg_demo_url: str,  # noqa: F811
) -> None:
    """The kiosk on A reports a poor line, zhaogang on B a good one: his console (on B) shows
    the call poor with both sides' figures, and the board's view of the call on either node
    is poor too (each node shares its members' summaries on the broker's quality channel)."""
    async with two_nodes(pg_demo_url) as (a, b):
        kiosk, staff = await call_across(a, b)  # the kiosk on A, zhaogang on B
        await staff.send({"type": "call.stats", "rtt_ms": 40, "loss": 0.0})
        good = await staff.expect("call.quality")
        assert good["level"] == "good" and good["staff"]["rtt_ms"] == 40
        await kiosk.send({"type": "call.stats", "rtt_ms": 650, "loss": 0.12})
        both = await staff.expect_where("call.quality", lambda f: f.get("kiosk") is not None)
        assert both["level"] == "poor" and both["bars"] == 1
        assert both["kiosk"]["rtt_ms"] == 650 and both["staff"]["rtt_ms"] == 40
        for server in (a, b):
            quality = server.state.callcenter.quality
            await until(
                lambda q=quality: [v["level"] for v in q.board_view().values()] == ["poor"],
                what="the board's view of the call",
            )
            (view,) = quality.board_view().values()
            assert view["rtt_ms"] == 650 and view["loss"] == 0.12  # the kiosk's side
        await staff.send({"type": "call.hangup"})
        await kiosk.expect("left")


def test_two_nodes_parts_of_a_call_log_merge_in_time_order_and_stay_bounded() -> None:
    def toggle(second: int, by: str) -> dict[str, Any]:
        return {"by": by, "on": second % 2 == 0, "at": f"2026-12-04T09:00:{second:02d}+00:00"}

    saved = {"call": 7, "reason": "staff_hangup", "chats": 2, "screen": [toggle(3, "staff")]}
    extra = {"chats": 1, "screen": [toggle(1, "kiosk"), toggle(5, "kiosk")]}
    merged = queue.merged_call_log(saved, extra, screen_max=20)
    assert merged["call"] == 7 and merged["reason"] == "staff_hangup" and merged["chats"] == 3
    assert [t["at"][-8:-6] for t in merged["screen"]] == ["01", "03", "05"]
    assert "screen_toggles" not in merged
    # Past the bound: the first ones and the latest, and the count of them all.
    many = {"chats": 0, "screen": [toggle(n, "kiosk") for n in range(0, 40, 2)]}
    more = {"chats": 0, "screen": [toggle(n, "staff") for n in range(1, 41, 2)]}
    bounded = queue.merged_call_log(many, more, screen_max=20)
    assert len(bounded["screen"]) == 20 and bounded["screen_toggles"] == 40
    assert bounded["screen"][-1] == toggle(39, "staff")
    assert [t["at"][-8:-6] for t in bounded["screen"][:3]] == ["00", "01", "02"]


async def readyz(server: CallServer) -> tuple[int, dict[str, Any]]:
    async with server.http.get("/readyz") as r:
        return r.status, await r.json()


async def test_redis_away_and_back(pg_demo_url: str) -> None:  # noqa: F811
    """Redis stopped under two nodes: /readyz fails with the reason, /metrics says so, sign-ins
    are counted on each node alone (never refused for Redis's sake); back, all is shared
    again."""
    limits = {"login_failures_per_address": 3, "login_failures_per_account": 20}
    with private_redis() as redis_server:
        url = redis_server.url
        async with (
            running_server(pg_demo_url, redis_url=url, node_id=node("a"), **limits) as a,
            running_server(pg_demo_url, redis_url=url, node_id=node("b"), **limits) as b,
        ):
            status, body = await readyz(a)
            assert status == 200 and body["checks"]["redis"]["ok"] is True, body
            figures = await scraped_metrics(a)
            assert figures["cloudhelp_redis_up"] == 1
            assert figures["cloudhelp_redis_broker_connected"] == 1
            # (A busy machine can stall a command past its 2 s timeout: a reconnect of its own.)
            reconnects = figures["cloudhelp_redis_reconnects_total"]
            assert figures["cloudhelp_redis_dropped_messages_total"] == 0
            assert figures["cloudhelp_redis_wire_mismatches_total"] == 0
            await a.staff_token("chenjing")

            await redis_server.stop_async()
            status, body = await readyz(a)
            assert status == 503 and body["failed"] == ["redis"], body
            assert body["checks"]["redis"]["ok"] is False
            assert "Connection" in body["checks"]["redis"]["error"], body
            figures = await scraped_metrics(a)
            assert figures["cloudhelp_redis_up"] == 0
            assert figures["cloudhelp_database_up"] == 1

            async with _browser_at(a, "127.0.0.1") as on_a, _browser_at(b, "127.0.0.1") as on_b:
                # Each node counts alone: three failures on A refuse her there…
                for _ in range(3):
                    assert (await _sign_in(on_a, "chenjing", WRONG))[0] == 401
                assert (await _sign_in(on_a, "chenjing", DEMO_PASSWORD))[0] == 429
                # …and node B has counted none: she signs in there.
                assert (await _sign_in(on_b, "chenjing", WRONG))[0] == 401
                assert (await _sign_in(on_b, "chenjing", DEMO_PASSWORD))[0] == 200

                await redis_server.start_async()  # empty: it persists nothing
                for _ in range(100):
                    status, body = await readyz(a)
                    if status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200, body
                figures = await scraped_metrics(a)
                assert figures["cloudhelp_redis_up"] == 1
                assert figures["cloudhelp_redis_broker_connected"] == 1
                assert figures["cloudhelp_redis_reconnects_total"] >= reconnects + 1
                await asyncio.sleep(RETRY_SECONDS)  # a throttle asks Redis again after this
                # What node A counted while Redis was away still counts there.
                assert (await _sign_in(on_a, "chenjing", DEMO_PASSWORD))[0] == 429
            # Failures are shared again: three on B from another address refuse her on A.
            async with _browser_at(a, "127.0.0.2") as a2, _browser_at(b, "127.0.0.2") as b2:
                for _ in range(3):
                    assert (await _sign_in(b2, "chenjing", WRONG))[0] == 401
                assert (await _sign_in(a2, "chenjing", DEMO_PASSWORD))[0] == 429
