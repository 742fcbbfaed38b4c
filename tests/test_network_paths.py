"""Calls across real networks: a kiosk and a staff member on separate hosts behind NAT.

Each host is a network namespace made by the test (tests/netkit.py), with aiortc peers speaking
the real protocol to a real CloudHelp server and a real coturn on the "public" network. The
NATs let their hosts reach the public server only, so the only way between the peers is coturn:
with UDP open (TURN/UDP), with UDP blocked (TURN over TLS on 443), and on a poor link (3 %
random loss, a 2 Mbit/s bottleneck, 150 ms added each way). A brief link cut must not end the
call: the session resumes and the media comes back. With real Chromium pages on both hosts, a
cut long enough for ICE to fail recovers by an ICE restart.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.browserkit import chromium, new_page, snap, video_width, wait_for_video
from tests.callkit import CallServer
from tests.netkit import PUBLIC, SERVER_PORT, Network, PeerProcess, call, coturn, district, times_of
from tests.test_browser import enrolled_kiosk, signed_in_staff

STUN = f"stun:{PUBLIC}:3478"
TURN_UDP = f"turn:{PUBLIC}:3478?transport=udp"
TURNS = f"turns:{PUBLIC}:443?transport=tcp"
# Give-up limits for the first decoded video frame, from the connected peer's wait: what is
# tested is that video comes, not how soon. How soon is benchmarks/network_paths.py's to
# measure (from `joined`, on this 2-core machine, 3 runs each: TURN/UDP 0.13–0.60 s, TURN/TLS
# 0.61–0.62 s, the poor link 3.9–5.4 s). A bound of 5 s asserted here once failed a loaded CI
# run whose kiosk connected 8.6 s after `joined` and decoded its first frame 0.4 s later.
FIRST_FRAME_SECONDS = 30.0
POOR_LINK_FIRST_FRAME_SECONDS = 60.0


@pytest.fixture
def network() -> Iterator[Network]:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("turnserver"):
        pytest.fail("needs root, nft and turnserver: run `bash scripts/test.sh`.")
    net = Network()
    try:
        net.up()
        yield net
    finally:
        net.down()


@pytest.fixture
def turn_secret() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def peer_env(network: Network, tmp_path: Path, turn_secret: str) -> Iterator[dict[str, str]]:
    """coturn running on the public address; the peers' environment trusts its certificate."""
    with coturn(network, tmp_path, turn_secret) as certificate:
        yield {"SSL_CERT_FILE": str(certificate)}


async def first_frames(peers: tuple[PeerProcess, ...], limit: float) -> None:
    """Each peer was told it joined, connected and decoded a first frame."""
    for peer in peers:
        await peer.event("first_frame", limit)
        times_of(peer)  # asserts all three happened


def assert_through_coturn(path: dict, port: int, via: str) -> None:
    """The selected pair runs through coturn: both sides' relayed addresses, or one side's
    relayed address and the other side's host or NAT mapping (coturn's address is the only
    one the NATs let through). A side that relays reaches coturn on ``port`` over ``via``."""
    assert "relay" in (path["local"], path["remote"]), path
    if path["local"] == "relay":
        assert path["turn"] == {"server": [PUBLIC, port], "via": via, "tls": False}, path


def frames_at(peer: PeerProcess, moment: float) -> int:
    reports = [e for e in peer.events if e["event"] == "frames" and e["t"] <= moment]
    return reports[-1]["received"] if reports else 0


async def test_behind_nats_the_call_goes_through_turn_udp_and_survives_a_link_cut(
    network: Network, peer_env: dict[str, str], turn_secret: str, sqlite_demo_url: str
) -> None:
    network.only_to_public()
    settings = {
        "stun_urls": [STUN],
        "turn_urls": [TURN_UDP, TURNS],
        "turn_secret": turn_secret,
        "heartbeat_seconds": 0.5,  # the server notices the cut well within it
    }
    async with (
        district(network, sqlite_demo_url, **settings) as (server, url),
        call(network, server, url, peer_env) as (kiosk, staff),
    ):
        for peer in (kiosk, staff):
            welcome = peer.first("welcome")
            assert welcome and welcome["ice_servers"] == [[STUN], [TURN_UDP, TURNS]]
            path = (await peer.event("connected", 20))["path"]
            # Host and server-reflexive candidates were offered; the NATs let neither through.
            assert {"host", "srflx", "relay"} <= set(path["gathered"]), path
            assert_through_coturn(path, 3478, "udp")
        await first_frames((kiosk, staff), FIRST_FRAME_SECONDS)

        # A 2 s cut of the kiosk's link.
        cut_at = time.monotonic()
        up_at = await network.cut("kiosk", 2.0)
        during = frames_at(staff, up_at) - frames_at(staff, cut_at + 0.5)
        assert during <= 2, f"{during} frames arrived while the link was down"
        at_up = frames_at(staff, up_at)
        back = await staff.wait_for(
            "video after the cut",
            lambda e: e["event"] == "frames" and e["t"] > up_at and e["received"] >= at_up + 15,
            timeout=15,
        )
        # The server missed the kiosk's heartbeat: the staff side was told, the kiosk's
        # session resumed (not reloaded), and the same call carries on.
        await staff.event("peer_reconnecting", 10)
        peer_back = await staff.event("peer_back", 10)
        assert peer_back["frame"]["reloaded"] is False
        await kiosk.event("resumed", 10)
        await kiosk.wait_for(
            "video after the cut",
            lambda e: e["event"] == "frames" and e["t"] > back["t"] and e["received"] > 0,
            timeout=10,
        )
        for peer in (kiosk, staff):
            assert peer.first("left") is None, peer.events[-5:]
            assert len([e for e in peer.events if e["event"] == "joined"]) == 1
            # aiortc has no ICE restart (docs/network-paths.md): its consent checks (every 5 s,
            # failed after 6 misses) never noticed a 2 s cut, and the media came back on the
            # pair it had selected.
            states = {e["connection"] for e in peer.events if e["event"] == "frames"}
            assert "failed" not in states and "closed" not in states, states
        assert back["t"] - up_at < 10


async def test_with_udp_blocked_turn_over_tls_on_443_carries_the_call(
    network: Network, peer_env: dict[str, str], turn_secret: str, sqlite_demo_url: str
) -> None:
    network.only_to_public()
    network.block_udp()
    # aiortc uses only the first TURN URL it is given (a browser tries each), so turns: comes
    # first here; no STUN URL (over blocked UDP it would hold aiortc's gathering, which does not
    # trickle, for its 5 s timeout).
    settings = {"turn_urls": [TURNS, TURN_UDP], "turn_secret": turn_secret}
    async with (
        district(network, sqlite_demo_url, **settings) as (server, url),
        call(network, server, url, peer_env) as (kiosk, staff),
    ):
        for peer in (kiosk, staff):
            path = (await peer.event("connected", 20))["path"]
            assert (path["local"], path["remote"]) == ("relay", "relay"), path
            assert path["turn"] == {"server": [PUBLIC, 443], "via": "tcp", "tls": True}
        await first_frames((kiosk, staff), FIRST_FRAME_SECONDS)
        await staff.wait_for(
            "steady video", lambda e: e["event"] == "frames" and e["received"] >= 30, 10
        )


async def test_on_a_lossy_slow_distant_link_the_call_connects_and_video_flows(
    network: Network, peer_env: dict[str, str], turn_secret: str, sqlite_demo_url: str
) -> None:
    network.only_to_public()
    # The kiosk's firewall lets out only the web and TURN ports, so all of its traffic goes
    # through the delaying relay on its NAT (which handles those ports).
    network.only_ports("kiosk", tcp=[SERVER_PORT, 3478, 443], udp=[3478])
    network.lossy("kiosk", 3)
    network.bottleneck("kiosk", "2mbit")
    settings = {"stun_urls": [STUN], "turn_urls": [TURN_UDP, TURNS], "turn_secret": turn_secret}
    relayed = [("tcp", SERVER_PORT), ("udp", 3478), ("tcp", 3478), ("tcp", 443)]
    with network.relay("kiosk", 0.150, relayed):
        async with (
            district(network, sqlite_demo_url, **settings) as (server, url),
            # Each peer's steps (start the process, sign in, the kiosk's ticket over the lossy
            # link, ring, answer) waited 40 s at most: a full run at a load of 10 on two cores
            # ran out (staff: no joined). What is tested is that the call connects, not when.
            call(network, server, url, peer_env, timeout=90) as (kiosk, staff),
        ):
            # aiortc gathers every candidate before it sends its description (no trickle): the
            # kiosk's TURN allocations cross the 3 %-loss link, and a lost STUN packet is sent
            # again after 0.5, 1, 2, 4 … s. A CI run on a loaded machine saw the kiosk still
            # unconnected after 30 s (its ICE "new"); the frames events now say how far the
            # offer/answer and the gathering got.
            for peer in (kiosk, staff):
                path = (await peer.event("connected", 60))["path"]
                assert_through_coturn(path, 3478, "udp")
            kiosk_connected = kiosk.first("connected")
            assert kiosk_connected and kiosk_connected["path"]["local"] == "relay"
            await first_frames((kiosk, staff), POOR_LINK_FIRST_FRAME_SECONDS)
            # The delay is really in the path: signaling and media round trips over 300 ms.
            measured = await kiosk.wait_for(
                "round trips",
                lambda e: e["event"] == "frames" and e["signaling_rtt"] and e["media_rtt"],
                timeout=15,
            )
            assert measured["signaling_rtt"] >= 0.3, measured
            assert measured["media_rtt"] >= 0.3, measured
            # Video keeps flowing to staff: 8 more frames arrive (a frozen picture delivers
            # none). The synthetic camera sends 15 a second; on this link aiortc's encoder,
            # starved of CPU on a loaded 2-core CI machine, was seen to deliver 3.6 a second,
            # and once to stall over 4 s after the first 15 frames (a lost key frame waits for
            # aiortc's picture-loss request and a new key frame over the 3 % loss): so the
            # frames are given up to 15 s, not a rate over a fixed 4 s.
            now = time.monotonic()
            start = await staff.wait_for(
                "frames", lambda e: e["event"] == "frames" and e["t"] >= now, 5
            )
            await staff.wait_for(
                "8 more frames",
                lambda e: e["event"] == "frames" and e["received"] >= start["received"] + 8,
                15,
            )


# Test-side probes on the pages (nothing of this is in the product): the states the kiosk's
# RTCPeerConnection went through, and a count of the remote video's frames shown.
WATCH_PC = """() => {
  const pc = window.cloudhelp.visit.call.pc;
  window.pcLog = [];
  const note = () => window.pcLog.push(
    [pc.iceConnectionState, pc.connectionState, pc.signalingState, Math.round(performance.now())]);
  for (const change of ["iceconnection", "connection", "signaling"])
    pc.addEventListener(`${change}statechange`, note);
  pc.probe = "the first";
}"""
COUNT_FRAMES = """() => {
  const video = document.querySelector("#remote-main");
  window.framesSeen = 0;
  const count = () => { window.framesSeen += 1; video.requestVideoFrameCallback(count); };
  video.requestVideoFrameCallback(count);
}"""
PC = """() => {
  const pc = window.cloudhelp.visit.call.pc;
  const ufrag = (d) => (d && d.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1];
  return {local: ufrag(pc.localDescription), remote: ufrag(pc.remoteDescription),
          ice: pc.iceConnectionState, connection: pc.connectionState,
          signaling: pc.signalingState, probe: pc.probe || null, log: window.pcLog};
}"""
# What a page receives, for a failure's message.
VIDEO_IN = """async () => {
  const call = window.cloudhelp.visit?.call || window.cloudhelp.call;
  const stats = await call.pc.getStats();
  const video = document.querySelector("#remote-main");
  const inbound = [...stats.values()].filter((s) => s.type === "inbound-rtp" && s.kind === "video")
    .map((s) => [s.mid, s.framesDecoded]);
  return {seen: window.framesSeen, shown: video.getVideoPlaybackQuality().totalVideoFrames,
          width: video.videoWidth, paused: video.paused, decoded: inbound,
          ice: call.pc.iceConnectionState, signaling: call.pc.signalingState};
}"""


# Chromium 156 (measured here): ICE "disconnected" 6 s after the cut, the connection "failed"
# 16 s after it, when the kiosk's page restarts ICE; the restart completes 2-3 s after the link
# is back. 40 s for that here: on a loaded CI machine the restart's offer waited for the page's
# own socket (cut too) to come back through its reconnect backoff (up to 8 s) and resume, and
# 20 s ran out with the offer still unanswered.
RESTART_SECONDS = 30
RECOVER_SECONDS = 40


async def frames_flow(page: Page, more: int, timeout: float) -> None:
    """``more`` frames of the remote video are shown from now on, within ``timeout``."""
    start = await page.evaluate("window.framesSeen")
    try:
        await page.wait_for_function(f"window.framesSeen >= {start + more}", timeout=timeout * 1000)
    except PlaywrightTimeoutError:
        raise AssertionError(f"no video on {page.url}: {await page.evaluate(VIDEO_IN)}") from None


async def answered_call(kiosk: Page, staff: Page, server: CallServer) -> None:
    await enrolled_kiosk(server, kiosk)
    await signed_in_staff(server, staff, "zhaogang")
    await kiosk.fill("#search", "yyblxkz")
    await kiosk.click("#results [data-item=NYNC-002]")
    await kiosk.click("#call-button")
    await wait_for_video(kiosk, "#preview")
    await kiosk.click("#start-call")
    await expect(staff.locator("#ring")).to_be_visible()
    await staff.click("#ring-accept")
    await expect(kiosk.locator("[data-screen=call]")).to_be_visible()


async def test_chromium_pages_behind_nats_recover_a_link_cut_by_ice_restart(
    network: Network,
    peer_env: dict[str, str],
    turn_secret: str,
    sqlite_demo_url: str,
    tmp_path: Path,
) -> None:
    """The kiosk and the staff console are real Chromium pages, each in its host's namespace.
    The kiosk's link is cut until its page restarts ICE, then restored: the restart completes
    (new ICE credentials both ways, on the same RTCPeerConnection) and video flows again on the
    same call."""
    network.only_to_public()
    origin = f"http://{PUBLIC}:{SERVER_PORT}"
    # Plain HTTP on a non-local address is no secure context: let this origin count as one so
    # the kiosk may open its (fake) camera.
    flags = [f"--unsafely-treat-insecure-origin-as-secure={origin}"]
    settings = {
        "stun_urls": [STUN],
        "turn_urls": [TURN_UDP],
        "turn_secret": turn_secret,
        "grace_seconds": 60.0,  # the signaling session outlives the cut
    }
    wrappers = {side: network.chromium_wrapper(side, tmp_path) for side in ("kiosk", "staff")}
    async with (
        district(network, sqlite_demo_url, **settings) as (server, url),
        chromium(extra_flags=flags, executable=wrappers["kiosk"]) as kiosk_browser,
        chromium(extra_flags=flags, executable=wrappers["staff"]) as staff_browser,
    ):
        assert url == origin
        kiosk = await new_page(kiosk_browser, url)
        staff = await new_page(staff_browser, url)
        await answered_call(kiosk, staff, server)
        for page in (kiosk, staff):
            assert await wait_for_video(page, "#remote-main") > 0
            await page.evaluate(COUNT_FRAMES)
            await frames_flow(page, 10, 10)
        await kiosk.evaluate(WATCH_PC)
        before = await kiosk.evaluate(PC)
        assert (before["ice"], before["signaling"]) == ("connected", "stable"), before

        # Cut the kiosk's link until its page has restarted ICE (a new local ufrag), then
        # restore it.
        await network.set_link("kiosk", False)
        try:
            await kiosk.wait_for_function(
                "window.cloudhelp.visit.call.pc.localDescription.sdp"
                f".indexOf('a=ice-ufrag:{before['local']}\\r') < 0",
                timeout=RESTART_SECONDS * 1000,
            )
            during = await kiosk.evaluate(PC)
            staff_frames = await staff.evaluate("window.framesSeen")
            await asyncio.sleep(1)
            assert await staff.evaluate("window.framesSeen") == staff_frames, "video in a cut"
        finally:
            await network.set_link("kiosk", True)
        # The cut was noticed as a disconnection first (not a failure). Chromium may report the
        # connection state's change a moment before the ICE state's: the first ICE state other
        # than "connected" is what counts.
        ice_changes = [entry[0] for entry in during["log"] if entry[0] != "connected"]
        assert ice_changes and ice_changes[0] == "disconnected", during

        # The restart completes: the staff side answered with new ICE credentials, the same
        # RTCPeerConnection is connected again, and video flows both ways.
        try:
            await kiosk.wait_for_function(
                "(() => { const pc = window.cloudhelp.visit.call.pc;"
                " return pc.signalingState === 'stable' && pc.iceConnectionState === 'connected'"
                f" && pc.remoteDescription.sdp.indexOf('a=ice-ufrag:{before['remote']}\\r') < 0;"
                " })()",
                timeout=RECOVER_SECONDS * 1000,
            )
        except PlaywrightTimeoutError:
            raise AssertionError(f"no ICE restart: {await kiosk.evaluate(PC)}") from None
        for page in (kiosk, staff):
            await frames_flow(page, 20, 10)
            assert await video_width(page, "#remote-main") > 0
        # New local credentials on the same RTCPeerConnection. Not necessarily those of the
        # restart made during the cut: its candidates were gathered with the link down, and when
        # its checks failed once the link was back the page restarted again (a CI run under
        # load saw two restarts; both are the page's recovery working).
        after = await kiosk.evaluate(PC)
        assert during["local"] != before["local"] != after["local"], (before, during, after)
        assert after["probe"] == "the first", after
        await snap(kiosk, "net-ice-restart-kiosk")
        await snap(staff, "net-ice-restart-staff")
        # The same call: nobody left, nothing was wrapped up.
        await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
        await expect(staff.locator("#wrapup")).to_be_hidden()
        await expect(staff.locator("#ring")).to_be_hidden()
