"""One party of a call, run in its own network namespace by the multi-host network tests.

``python -m tests.netpeer kiosk|staff URL AUTH_JSON [--item ITEM]`` signs in to a real CloudHelp
server over the protocol (docs/protocol.md), takes a ticket (kiosk) or answers the ring
(staff), and runs the call's media with :class:`cloudhelp.media.peer.CallPeer` (aiortc), using
the ICE servers the server handed out in ``welcome``. It prints one JSON line per event, each
with ``t`` on the monotonic clock (one clock for every process on the machine): ``welcome``,
``joined``, ``connected`` (with the selected candidate pair and the TURN connection),
``first_frame``, ``frames`` (every 0.2 s, with the signaling and media round trips),
``socket_closed``/``resumed`` (it resumes its session whenever the socket drops),
``peer_reconnecting``, ``peer_back``, ``left``, ``failed``. It runs until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import socket
import sys
import time
from typing import Any

import aiohttp

from cloudhelp.media.peer import CallPeer, ProtocolError, SignalingClient

REPORT_SECONDS = 0.2


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


def path_of(peer: CallPeer) -> dict[str, Any]:
    """The selected candidate pair, and how this side reaches its TURN server if it relays."""
    transport = peer.pc.getTransceivers()[0].sender.transport.transport
    local_kinds = sorted({c.type for c in transport.iceGatherer.getLocalCandidates()})
    pair = transport._connection._nominated[1]
    path: dict[str, Any] = {
        "local": pair.local_candidate.type,
        "remote": pair.remote_candidate.type,
        "gathered": local_kinds,
    }
    if pair.local_candidate.type == "relay":
        inner = getattr(pair.protocol.transport, "_TurnTransport__inner_protocol")  # noqa: B009
        stream = inner.transport
        path["turn"] = {
            "server": list(stream.get_extra_info("peername")),
            "via": "tcp" if stream.get_extra_info("socket").type == socket.SOCK_STREAM else "udp",
            "tls": stream.get_extra_info("ssl_object") is not None,
        }
    return path


async def media_rtt(peer: CallPeer) -> float | None:
    """The media round trip aiortc measured from RTCP (remote-inbound-rtp), in seconds."""
    report = await peer.pc.getStats()
    for stats in report.values():
        if stats.type == "remote-inbound-rtp" and stats.roundTripTime is not None:
            return float(stats.roundTripTime)
    return None


_PING_IDS = itertools.count(1)


async def signaling_rtt(client: SignalingClient) -> float | None:
    """One ping's round trip. The ping carries an ``id`` its pong repeats: a keep-alive pong
    still in flight (sent before this ping) must not be taken for this one's."""
    client.drain("pong")
    ping_id = f"rtt{next(_PING_IDS)}"
    started = time.monotonic()
    try:
        await client.send({"type": "ping", "id": ping_id})
        await client.expect("pong", timeout=3, id=ping_id)
    except (ConnectionError, TimeoutError, RuntimeError, ProtocolError):
        return None
    return time.monotonic() - started


async def keep_resumed(client: SignalingClient) -> None:
    """Resume the session whenever its socket drops (as the pages do)."""
    while True:
        await client.closed.wait()
        emit("socket_closed", code=client.close_code)
        while True:
            try:
                await asyncio.wait_for(client.resume(), 3)
            except (OSError, aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                emit("resume_failed", error=repr(exc))
                await asyncio.sleep(0.3)
            else:
                emit("resumed")
                break


async def become_available(client: SignalingClient, within: float = 60.0) -> None:
    """Say "available" until the server says so: a status sent while the socket was dropping
    (a busy machine misses a heartbeat) is lost, and the session resumes as it was — as a
    person would press 开始接听 again."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await client.send({"type": "staff.status", "status": "available"})
        try:
            await client.expect("presence", timeout=3, state="available")
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


async def probe(client: SignalingClient, peer: CallPeer, rtts: dict[str, float | None]) -> None:
    """Measure the signaling and media round trips, twice a second."""
    while True:
        rtts["signaling_rtt"] = await signaling_rtt(client)
        rtts["media_rtt"] = await media_rtt(peer)
        await asyncio.sleep(0.5)


FROZEN_SECONDS = 1.0  # no new frame for this long: the picture is frozen


async def report(client: SignalingClient, peer: CallPeer) -> None:
    rtts: dict[str, float | None] = {"signaling_rtt": None, "media_rtt": None}
    prober = asyncio.create_task(probe(client, peer, rtts))
    first = False
    last = 0.0
    counted, moved = 0, time.monotonic()
    try:
        while True:
            await asyncio.sleep(0.01)
            frames = peer.frames_of(0)
            if frames and not first:
                first = True
                emit("first_frame")
            if frames != counted:
                counted, moved = frames, time.monotonic()
            elif first and time.monotonic() - moved >= FROZEN_SECONDS:
                # A frozen picture: ask for a keyframe again, as a browser does (aiortc asks
                # once per loss it sees; on the 3 %-loss link that request was lost too and
                # the picture stayed frozen, CI 6 December).
                moved = time.monotonic()
                for receiver in peer.pc.getReceivers():
                    if receiver.track is not None and receiver.track.kind == "video":
                        for source in receiver.getSynchronizationSources():
                            await receiver._send_rtcp_pli(source.source)
                emit("keyframe_asked", received=frames)
            if time.monotonic() - last >= REPORT_SECONDS:
                last = time.monotonic()
                pc = peer.pc
                emit("frames", received=frames, ice=pc.iceConnectionState,
                     connection=pc.connectionState, signaling=pc.signalingState,
                     gathering=pc.iceGatheringState, **rtts)  # fmt: skip
    finally:
        prober.cancel()


async def run(role: str, url: str, auth: dict[str, Any], item: str) -> None:
    async with aiohttp.ClientSession() as http:
        client = SignalingClient(url, http)
        welcome = await client.connect(auth)
        emit("welcome", ice_servers=[s["urls"] for s in welcome.get("ice_servers", [])])
        peer = CallPeer(client, relay_only=welcome.get("ice_transport_policy") == "relay")

        def on_frame(frame: dict[str, Any]) -> None:
            if frame["type"] in ("joined", "peer_reconnecting", "peer_back", "left"):
                emit(frame["type"], frame=frame)

        client.listeners.append(on_frame)
        tasks = [asyncio.create_task(keep_resumed(client))]
        if role == "kiosk":
            await client.send({"type": "ticket.take", "item": item})
        else:
            await client.expect("presence", state="away")
            await become_available(client)
            emit("available")
            ring = await client.expect("ring", timeout=60)
            await client.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        await client.expect("joined", timeout=60)
        tasks.append(asyncio.create_task(report(client, peer)))
        await peer.connected.wait()
        emit("connected", path=path_of(peer))
        # Until the test closes stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in tasks:
            task.cancel()
        await peer.close()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.netpeer")
    parser.add_argument("role", choices=["kiosk", "staff"])
    parser.add_argument("url")
    parser.add_argument("auth", help="the hello's auth object, as JSON")
    parser.add_argument("--item", default="NYNC-001", help="the service item (kiosk)")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.role, args.url, json.loads(args.auth), args.item))
    except Exception as exc:
        emit("failed", error=repr(exc))
        raise
    with contextlib.suppress(Exception):
        sys.stdout.close()


if __name__ == "__main__":
    main()
