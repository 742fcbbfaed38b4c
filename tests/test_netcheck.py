"""The pre-call network check and call quality over the protocol, against a real server.

The kiosk side is a real aiortc peer (cloudhelp.media.peer.network_check) talking to the
server's real aiortc echo peer over loopback — directly, or relayed by the test coturn when the
server hands out only TURN — and the figures are kept in the real database (SQLite and
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select, update

from cloudhelp.domain import netquality
from cloudhelp.media.peer import EXPECT_SECONDS, network_check
from cloudhelp.store.models import CallQuality, Staff, Ticket
from tests.callkit import CallServer, running_server, turn_server, until
from tests.test_call_core import answer, take_ticket


def echo_peers(server: CallServer) -> int:
    return len(server.state.callcenter.netcheck.echo)


async def test_check_over_loopback_is_good_and_rides_with_the_ticket(
    demo_url: str, loopback_ice: None
) -> None:
    async with running_server(demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        started = time.monotonic()
        saved = await network_check(kiosk, probes=20)
        assert time.monotonic() - started < 5.0  # bounded: the kiosk never waits long
        check = saved["netcheck"]
        assert saved["verdict"] == "good", check
        assert check["connected"] and check["candidate"] == "host"
        assert check["probes"] == 20 and check["answered"] == 20 and check["loss"] == 0
        assert check["echoed"] == 20  # the server's own count of the probes it sent back
        assert 0 < check["rtt_ms"] < 100 and 0 < check["signaling_rtt_ms"] < 500
        assert echo_peers(server) == 0  # closed once the result came

        # The next ticket carries the check; the staff member rung sees it.
        ticket = await take_ticket(kiosk, "NYNC-002")
        assert ticket["netcheck"]["verdict"] == "good"
        ring = await answer(staff)
        assert ring["ticket"]["netcheck"] == check
        async with server.state.db.read() as s:
            row = await s.get(Ticket, ticket["id"])
            assert row is not None and row.netcheck == check


async def test_one_server_pause_during_the_check_is_not_a_slow_network(
    sqlite_demo_url: str, loopback_ice: None
) -> None:
    """The signaling round trip is the median of three pings: the server's loop held longer
    than the poor threshold during the first one leaves the verdict good."""
    pause = netquality.CHECK_POOR_SIGNALING_MS / 1000 + 0.3
    async with running_server(sqlite_demo_url) as server:
        kiosk = await server.kiosk()
        asyncio.get_running_loop().call_soon(time.sleep, pause)  # the server's loop stalls
        saved = await network_check(kiosk, probes=5)
        assert saved["verdict"] == "good", saved["netcheck"]
        assert saved["netcheck"]["signaling_rtt_ms"] < netquality.CHECK_POOR_SIGNALING_MS


async def test_only_turn_given_the_check_goes_through_the_relay(sqlite_demo_url: str) -> None:
    url, secret = turn_server()
    async with running_server(sqlite_demo_url, turn_urls=[url], turn_secret=secret) as server:
        kiosk = await server.kiosk()
        (ice,) = kiosk.welcome["ice_servers"]
        assert ice["urls"] == [url] and ice["username"].endswith(kiosk.session_id)
        saved = await network_check(kiosk, probes=10)
        check = saved["netcheck"]
        assert saved["verdict"] == "good", check
        assert check["candidate"] == "relay" and check["answered"] == 10
        assert echo_peers(server) == 0


async def test_no_path_to_the_echo_peer_is_a_failed_check(sqlite_demo_url: str) -> None:
    """No loopback candidates and no TURN: aioice finds no address in this namespace, so no
    media path exists — the check says so within its bound instead of hanging."""
    async with running_server(sqlite_demo_url) as server:
        kiosk = await server.kiosk()
        started = time.monotonic()
        saved = await network_check(kiosk, probes=5, seconds=3.0)
        # Not ICE's own give-up (aioice's checks run 30 s and more): the check's. A bound far
        # above the 3 s, for a loaded machine, not a speed.
        assert time.monotonic() - started < EXPECT_SECONDS
        assert saved["verdict"] == "failed"
        assert saved["netcheck"]["connected"] is False
        assert echo_peers(server) == 0


async def test_echo_peers_are_bounded_and_close_by_themselves(
    sqlite_demo_url: str, loopback_ice: None
) -> None:
    from aiortc import RTCPeerConnection

    async with running_server(sqlite_demo_url, netcheck_max_peers=1, netcheck_seconds=2) as server:
        first, second = await server.kiosk("QG-01"), await server.kiosk("QG-02")
        pcs = [RTCPeerConnection(), RTCPeerConnection()]
        try:
            for pc in pcs:
                pc.createDataChannel("netcheck")
                await pc.setLocalDescription(await pc.createOffer())
            await first.send({"type": "netcheck.offer", "sdp": pcs[0].localDescription.sdp})
            await first.expect("netcheck.answer")
            await second.send({"type": "netcheck.offer", "sdp": pcs[1].localDescription.sdp})
            refused = await second.expect("error")
            assert refused["code"] == "netcheck_busy" and refused["ref"] == "netcheck.offer"
            # The first kiosk never reports: its peer is closed after netcheck_seconds anyway.
            await until(lambda: echo_peers(server) == 0, 4, "echo peer closed")
            await second.send({"type": "netcheck.offer", "sdp": pcs[1].localDescription.sdp})
            await second.expect("netcheck.answer")
            # A kiosk that goes away takes its echo peer with it.
            await second.send({"type": "bye"})
            await until(lambda: echo_peers(server) == 0, 4, "echo peer closed")
        finally:
            for pc in pcs:
                await pc.close()


async def test_bad_check_frames_get_stable_codes(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        kiosk = await server.kiosk()
        staff = await server.staff("zhaogang")
        cases = [
            ({"type": "netcheck.offer", "sdp": "hello"}, "bad_sdp"),
            ({"type": "netcheck.offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"}, "bad_sdp"),
            ({"type": "netcheck.offer"}, "bad_message"),
            ({"type": "netcheck.result", "media": {"connected": True, "loss": 2}}, "bad_message"),
            ({"type": "netcheck.result", "signaling_rtt_ms": -1}, "bad_message"),
            ({"type": "netcheck.result", "media": {"connected": True, "candidate": "x"}},
             "bad_message"),
            ({"type": "call.stats", "rtt_ms": 10}, "not_in_call"),
        ]  # fmt: skip
        for frame, code in cases:
            await kiosk.send(frame)
            error = await kiosk.expect("error")
            assert error["code"] == code, (frame, error)
            assert error["ref"] == frame["type"]
        await staff.send({"type": "netcheck.offer", "sdp": "v=0"})
        assert (await staff.expect("error"))["code"] == "forbidden"
        # A result with no media check is a failed check, kept as such.
        await kiosk.send({"type": "netcheck.result", "signaling_rtt_ms": 12, "media": None})
        assert (await kiosk.expect("netcheck.saved"))["verdict"] == "failed"


async def test_call_stats_reach_the_console_and_the_board_and_stay_with_the_ticket(
    demo_url: str,
) -> None:
    async with running_server(demo_url) as server:
        async with server.state.db.write() as s:  # zhaogang answers calls and watches the board
            await s.execute(
                update(Staff).where(Staff.username == "zhaogang").values(role="supervisor")
            )
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        ticket = await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        token = await server.staff_token("zhaogang")
        board = await server.connect({"kind": "staff", "token": token, "purpose": "board"})
        await board.send({"type": "board.watch"})
        first = await board.expect("board")
        assert first["calls"][0]["quality"] is None  # no figures yet

        good = {"rtt_ms": 40, "loss": 0.0, "fps": 24, "freezes": 0, "relay": False,
                "candidate": "host", "bitrate_kbps": 900}  # fmt: skip
        await kiosk.send({"type": "call.stats", **good})
        # Sent again at once, closer than every 2 s: refused, not counted. (Sent before waiting
        # for anything, so a busy machine cannot stretch the gap past 2 s.)
        await kiosk.send({"type": "call.stats", **good})
        assert (await kiosk.expect("error"))["code"] == "stats_too_frequent"
        quality = await staff.expect("call.quality")
        assert quality["level"] == "good" and quality["bars"] == 3
        assert quality["kiosk"]["rtt_ms"] == 40 and quality["room"].startswith("call-")
        # Out-of-range figures are refused.
        await staff.send({"type": "call.stats", "loss": 1.5})
        assert (await staff.expect("error"))["code"] == "bad_message"
        # The staff side reports a poor link through TURN: the call is poor, on the console
        # and on the board.
        poor = {"rtt_ms": 650, "loss": 0.12, "fps": 6, "freezes": 4, "relay": True,
                "candidate": "relay"}  # fmt: skip
        await staff.send({"type": "call.stats", **poor})
        quality = await staff.expect_where("call.quality", lambda f: f["level"] == "poor")
        assert quality["bars"] == 1 and quality["relay"] is True
        snapshot = await board.expect_where(
            "board",
            lambda f: bool(f["calls"]) and (f["calls"][0]["quality"] or {}).get("level") == "poor",
        )
        assert snapshot["calls"][0]["quality"]["relay"] is True
        await asyncio.sleep(2.05)
        await kiosk.send({"type": "call.stats", **good, "rtt_ms": 120})
        await staff.expect_where("call.quality", lambda f: f["kiosk"]["rtt_ms"] == 120)

        await staff.send({"type": "call.hangup"})
        await staff.expect("left")
        async with server.state.db.read() as s:
            rows = {r.side: r for r in await s.scalars(
                select(CallQuality).where(CallQuality.ticket_id == ticket["id"])
            )}  # fmt: skip
        assert set(rows) == {"kiosk", "staff"}
        assert rows["kiosk"].samples == 2 and rows["kiosk"].rtt_median_ms == 80
        assert rows["kiosk"].rtt_worst_ms == 120 and rows["kiosk"].relay is False
        assert rows["kiosk"].level == "good"
        assert rows["staff"].samples == 1 and rows["staff"].loss_worst == 0.12
        assert rows["staff"].relay is True and rows["staff"].freezes == 4
        assert rows["staff"].poor_samples == 1 and rows["staff"].level == "poor"
        assert server.state.callcenter.quality.calls == {}  # nothing left behind

        # The reports list the call with both sides' figures.
        cookies = {"cloudhelp_session": token}
        async with server.http.get("/api/v1/reports/call-quality", cookies=cookies) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        assert body["total"] == {"calls": 1, "poor": 1, "fair": 0, "relayed": 1}
        (listed,) = body["calls"]
        assert listed["number"] == ticket["number"] and listed["staff"] == "赵刚"
        assert listed["level"] == "poor"  # the worse side's
        # Per station: the counts, and the kiosk side's medians (the station's own link).
        (station,) = body["stations"]
        assert station == {"station": listed["station"], "calls": 1, "poor": 1, "fair": 0,
                           "relayed": 1, "rtt_median_ms": 80, "loss_median": 0.0,
                           "fps_median": listed["sides"]["kiosk"]["fps_median"]}  # fmt: skip
        assert listed["sides"]["kiosk"]["rtt_median_ms"] == 80
        assert listed["sides"]["staff"]["level"] == "poor"
        async with server.http.get(
            "/api/v1/reports/call-quality?from=2026-12-09&to=2026-12-01", cookies=cookies
        ) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_range"
        # Only the calls of a level listed (the page lists the poor ones); the totals and the
        # stations count every call.
        for level, listed_calls in (("poor", 1), ("good", 0)):
            async with server.http.get(f"/api/v1/reports/call-quality?level={level}",
                                       cookies=cookies) as r:  # fmt: skip
                body = await r.json()
                assert len(body["calls"]) == listed_calls and body["total"]["calls"] == 1
        async with server.http.get("/api/v1/reports/call-quality?level=bad", cookies=cookies) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"


def test_a_calls_level_gets_worse_at_once_and_better_after_three_better_summaries() -> None:
    """One bad summary between good ones does not flip the bars back and forth: the side's
    shown level stays poor until three better summaries in a row (15 s) say otherwise."""
    figures = netquality.CallFigures(1, "B001")
    good = {"rtt_ms": 40, "loss": 0.0, "fps": 24, "freezes": 0}
    poor = {"rtt_ms": 650, "loss": 0.12, "fps": 6, "freezes": 4}
    seen = []
    for sample in (good, poor, good, good, good, good):
        summary = dict(sample, level=netquality.sample_level(sample))
        figures.add("kiosk", summary)
        seen.append(figures.level())
    assert seen == ["good", "poor", "poor", "poor", "good", "good"]
    # The summary keeps its own level (the reports count it): one poor summary.
    assert figures.sides["kiosk"].poor == 1 and figures.sides["kiosk"].latest["level"] == "good"
