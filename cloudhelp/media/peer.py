"""A real Python WebRTC peer (aiortc) that plays a kiosk or a staff member over the protocol.

Used by the end-to-end tests and the benchmarks: it signs in, takes a ticket or answers an
offer, sends a synthetic camera, can add a second video track as a screen share
(renegotiation), and sends files over a data channel in chunks with backpressure and a sha-256
check. aiortc does not trickle: its local description already carries every candidate, and an
end-of-candidates marker follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp
from av import VideoFrame

from cloudhelp.core.errors import must_exist

log = logging.getLogger("cloudhelp.peer")
PROTOCOL_VERSION = 1
ACK_SECONDS = 5.0
# How long ``expect`` waits for a frame by default: a give-up limit, not a speed the server must
# keep (an answer within milliseconds on a quiet machine can take 10 s on a loaded one).
EXPECT_SECONDS = 30.0
FILE_CHUNK = 16 * 1024
BUFFER_HIGH = 1024 * 1024
BUFFER_LOW = 256 * 1024


class ProtocolError(Exception):
    """The server answered with an ``error`` frame where something else was expected."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.code = frame.get("code")
        self.frame = frame


_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


class SignalingClient:
    """One CloudHelp protocol session over a WebSocket, able to drop and resume."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: dict[str, Any] = {}
        self.last_seq = 0
        self.closed: asyncio.Event = asyncio.Event()
        self.close_code: int | None = None
        self._inbox: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[dict[str, Any]], Any]] = []

    @property
    def session_id(self) -> str:
        return str(self.welcome["session"])

    async def _open(self, hello: dict[str, Any]) -> dict[str, Any]:
        self.ws = await self.http.ws_connect(f"{self.base_url}/ws", heartbeat=None)
        self.closed.clear()
        await self.ws.send_json(hello)
        msg = await self.ws.receive(timeout=10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"connection closed before welcome ({self.ws.close_code})")
        frame = json.loads(msg.data)
        if frame["type"] == "error":
            await self.ws.close()
            raise ProtocolError(frame)
        self._reader = asyncio.create_task(self._read(self.ws))
        if self._keepalive is None or self._keepalive.done():
            self._keepalive = asyncio.create_task(self._acknowledge())
        return frame

    async def _acknowledge(self) -> None:
        """Tell the server what arrived, so it need not keep it for a resume."""
        while True:
            await asyncio.sleep(ACK_SECONDS)
            if self.ws is not None and not self.ws.closed:
                with contextlib.suppress(ConnectionError):
                    await self.ws.send_json({"type": "ping", "seq": self.last_seq})

    async def connect(self, auth: dict[str, Any]) -> dict[str, Any]:
        self.welcome = await self._open({"type": "hello", "v": PROTOCOL_VERSION, "auth": auth})
        return self.welcome

    async def resume(self, reloaded: bool = False) -> dict[str, Any]:
        """Open a new socket for the same session; missed messages are replayed.

        ``reloaded``: resume as a reloaded page does (nothing replayed; current state sent).
        """
        resume: dict[str, Any] = {
            "session": self.welcome["session"],
            "token": self.welcome["token"],
            "last_seq": self.last_seq,
        }
        if reloaded:
            resume["reloaded"] = True
            self._inbox.clear()
        welcome = await self._open({"type": "hello", "v": PROTOCOL_VERSION, "resume": resume})
        if welcome.get("resumed") is not True:
            raise ProtocolError(
                welcome
                | {"code": "not_resumed", "message": "The server opened a new session instead."}
            )
        return welcome

    async def drop(self) -> None:
        """Lose the connection abruptly (as a network failure would), without saying bye."""
        if self._reader:
            self._reader.cancel()
        if self._keepalive:
            self._keepalive.cancel()
        if self.ws is not None:
            await self.ws.close(code=1006)

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(ConnectionError):
                await self.ws.send_json({"type": "bye"})
            await self.ws.close()
        if self._reader:
            self._reader.cancel()
        if self._keepalive:
            self._keepalive.cancel()

    async def send(self, message: dict[str, Any]) -> None:
        await must_exist(self.ws, "the session's WebSocket (connect first)").send_json(message)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Frames into the inbox until the socket closes. ``close_code`` is then the code of
        the server's close frame when one arrived, as a browser reports it (RFC 6455 7.1.5):
        aiohttp reports 1006 when its reply to that frame cannot be written, as through a
        proxy that closed the connection right after passing the frame on."""
        received: int | None = None
        try:
            while True:
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    received = int(msg.data)
                if msg.type in _CLOSED:
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if "seq" in frame:
                    self.last_seq = frame["seq"]
                for listener in self.listeners:
                    try:
                        result = listener(frame)
                        if asyncio.iscoroutine(result):
                            await result
                    except Exception:
                        log.exception("listener failed on %s", frame.get("type"))
                async with self._arrived:
                    self._inbox.append(frame)
                    self._arrived.notify_all()
        finally:
            self.close_code = received if received is not None else ws.close_code
            self.closed.set()

    async def expect(
        self, type_: str, timeout: float = EXPECT_SECONDS, **fields: Any
    ) -> dict[str, Any]:
        """The next message of ``type_`` (with matching fields); earlier other ones stay queued.

        An ``error`` frame that arrives first is raised as ProtocolError unless one is expected.
        """

        def match(frame: dict[str, Any]) -> bool:
            return frame["type"] == type_ and all(frame.get(k) == v for k, v in fields.items())

        deadline = time.monotonic() + timeout
        async with self._arrived:
            while True:
                for frame in list(self._inbox):
                    if match(frame):
                        self._inbox.remove(frame)
                        return frame
                    if frame["type"] == "error" and type_ != "error":
                        self._inbox.remove(frame)
                        raise ProtocolError(frame)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # What did come, briefly: the frames' contents tell why (a ticket's status).
                    seen = [json.dumps(f, ensure_ascii=False)[:200] for f in self._inbox]
                    raise TimeoutError(
                        f"no {type_!r} {fields or ''} within {timeout}s; queued: {seen}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), remaining)

    async def expect_where(
        self,
        type_: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = EXPECT_SECONDS,
    ) -> dict[str, Any]:
        """The next ``type_`` message that satisfies ``predicate``; others of that type go."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.expect(type_, timeout=max(0.01, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    def drain(self, type_: str) -> list[dict[str, Any]]:
        taken = [f for f in self._inbox if f["type"] == type_]
        for frame in taken:
            self._inbox.remove(frame)
        return taken


# ---------------------------------------------------------------------------- media


class SyntheticVideoTrack(MediaStreamTrack):
    """A moving test pattern, so the receiver can count real decoded frames."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15, shade: int = 0) -> None:
        super().__init__()
        self.width, self.height, self.fps, self.shade = width, height, fps, shade
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        frame = VideoFrame(self.width, self.height, "yuv420p")
        luma = bytes(((x + self._count * 4 + self.shade) % 256) for x in range(self.width))
        frame.planes[0].update(luma * self.height)
        chroma = bytes([128]) * (frame.planes[1].buffer_size)
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = self._count
        frame.time_base = fractions.Fraction(1, self.fps)
        self._count += 1
        return frame


@dataclass
class ReceivedFile:
    name: str
    size: int
    sha256: str
    data: bytes
    ok: bool


@dataclass
class _Incoming:
    meta: dict[str, Any]
    chunks: list[bytes] = field(default_factory=list)
    received: int = 0


class CallPeer:
    """The WebRTC side of one party: camera, optional screen share, file transfer."""

    def __init__(self, signaling: SignalingClient, *, relay_only: bool = False) -> None:
        self.signaling = signaling
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in signaling.welcome.get("ice_servers", [])
        ]
        policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        self.camera = SyntheticVideoTrack()
        self.screen: SyntheticVideoTrack | None = None
        self.frames: dict[str, int] = {}
        self.track_order: list[str] = []
        self.files: asyncio.Queue[ReceivedFile] = asyncio.Queue()
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.channel: RTCDataChannel | None = None
        self.channel_open = asyncio.Event()
        self.connected = asyncio.Event()
        self.peer_session: str | None = None
        self._incoming: dict[str, _Incoming] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._camera_added = False
        signaling.listeners.append(self._on_signal)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.track_order.append(track.id)
            self.frames[track.id] = 0
            self._spawn(self._count_frames(track))

        @self.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self._use_channel(channel)

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count_frames(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames[track.id] += 1

    def frames_of(self, index: int) -> int:
        """Decoded frames received on the ``index``-th remote track (0: camera, 1: screen)."""
        if index >= len(self.track_order):
            return 0
        return self.frames[self.track_order[index]]

    # -------------------------------------------------------------- negotiation

    async def _on_signal(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "joined":
            self.peer_session = frame["peers"][0]["session"]
            if frame["initiator"]:
                self._spawn(self._start_call())
        elif kind == "offer":
            await self._answer(frame["sdp"])  # before any candidate that follows it
        elif kind == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "answer"))
        elif kind == "candidate" and frame.get("candidate"):
            c = frame["candidate"]
            candidate = candidate_from_sdp(c["candidate"].removeprefix("candidate:"))
            candidate.sdpMid, candidate.sdpMLineIndex = c.get("sdpMid"), c.get("sdpMLineIndex")
            await self.pc.addIceCandidate(candidate)

    def _add_camera(self) -> None:
        if not self._camera_added:
            self.pc.addTrack(self.camera)
            self._camera_added = True

    async def _start_call(self) -> None:
        self._add_camera()
        self._use_channel(self.pc.createDataChannel("files"))
        await self._send_offer()

    async def _send_offer(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send_description()

    async def _answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        self._add_camera()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self._send_description()

    async def _send_description(self) -> None:
        description = self.pc.localDescription
        await self.signaling.send({"type": description.type, "sdp": description.sdp})
        # Candidates travel inside the SDP; mirror them as trickle messages and end them, as a
        # browser would, so the relay path for candidates is exercised too.
        for transceiver in self.pc.getTransceivers()[:1]:
            gatherer = transceiver.sender.transport.transport.iceGatherer
            for candidate in gatherer.getLocalCandidates():
                await self.signaling.send(
                    {
                        "type": "candidate",
                        "candidate": {
                            "candidate": "candidate:" + candidate_to_sdp(candidate),
                            "sdpMid": transceiver.mid,
                            "sdpMLineIndex": 0,
                        },
                    }
                )
        await self.signaling.send({"type": "candidate", "candidate": None})

    async def share_screen(self) -> None:
        """Add a second video track (the 'screen') and renegotiate."""
        self.screen = SyntheticVideoTrack(width=640, height=360, shade=90)
        self.pc.addTrack(self.screen)
        await self._send_offer()

    # -------------------------------------------------------------- files

    def _use_channel(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        channel.bufferedAmountLowThreshold = BUFFER_LOW

        @channel.on("open")
        def on_open() -> None:
            self.channel_open.set()

        if channel.readyState == "open":
            self.channel_open.set()

        @channel.on("message")
        def on_message(message: bytes | str) -> None:
            self._on_channel_message(message)

    def _on_channel_message(self, message: bytes | str) -> None:
        if isinstance(message, bytes):
            current = next(iter(self._incoming.values()), None)
            if current is not None:
                current.chunks.append(message)
                current.received += len(message)
            return
        frame = json.loads(message)
        if frame["kind"] == "file":
            self._incoming[frame["id"]] = _Incoming(frame)
        elif frame["kind"] == "end":
            incoming = self._incoming.pop(frame["id"])
            data = b"".join(incoming.chunks)
            digest = hashlib.sha256(data).hexdigest()
            ok = digest == frame.get("sha256") and len(data) == incoming.meta["size"]
            self.files.put_nowait(ReceivedFile(incoming.meta["name"], len(data), digest, data, ok))
            must_exist(self.channel, "the data channel").send(
                json.dumps({"kind": "ack", "id": frame["id"], "ok": ok, "sha256": digest})
            )
        elif frame["kind"] == "ack":
            future = self.acks.pop(frame["id"], None)
            if future is not None and not future.done():
                future.set_result(frame)

    async def send_file(self, name: str, data: bytes, chunk: int = FILE_CHUNK) -> dict[str, Any]:
        """Send one file; returns the receiver's acknowledgement (``ok`` and its sha-256)."""
        await asyncio.wait_for(self.channel_open.wait(), 20)
        channel = must_exist(self.channel, "the data channel")
        # The peer's maximum message size, from its SDP (aiortc keeps it privately).
        limit = getattr(self.pc.sctp, "_remote_max_message_size", None) or chunk
        chunk = min(chunk, limit)
        transfer_id = hashlib.sha256(f"{name}{time.monotonic()}".encode()).hexdigest()[:12]
        digest = hashlib.sha256(data).hexdigest()
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.acks[transfer_id] = ack
        low = asyncio.Event()
        channel.on("bufferedamountlow", low.set)
        meta = {
            "kind": "file",
            "id": transfer_id,
            "name": name,
            "size": len(data),
        }
        channel.send(json.dumps(meta))
        for offset in range(0, len(data), chunk):
            if channel.bufferedAmount > BUFFER_HIGH:
                low.clear()
                await asyncio.wait_for(low.wait(), 30)
            channel.send(data[offset : offset + chunk])
        channel.send(json.dumps({"kind": "end", "id": transfer_id, "sha256": digest}))
        return await asyncio.wait_for(ack, 60)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.pc.close()


# ---------------------------------------------------------------------------- network check

# The signaling round trip is the median of this many pings, one after the other: one pause of
# the server (a database write, a collector pass) does not make a good network look poor.
SIGNALING_PINGS = 3


async def network_check(
    signaling: SignalingClient,
    *,
    probes: int = 20,
    interval: float = 0.05,
    relay_only: bool = False,
    seconds: float = 5.0,
) -> dict[str, Any]:
    """The kiosk's pre-call check as the pages run it (docs/protocol.md, ``netcheck.offer``):
    the signaling round trip (the median of three pings with ids), then ``probes``
    data-channel probes through the welcome's ICE servers to the server's echo peer, unordered
    and never retransmitted, so a lost probe stays lost; the probing ends within ``seconds``.
    Sends ``netcheck.result`` and returns the ``netcheck.saved`` frame."""
    deadline = time.monotonic() + seconds
    pings: list[float] = []
    for number in range(SIGNALING_PINGS):
        started = time.monotonic()
        await signaling.send({"type": "ping", "id": f"netcheck{number}"})
        await signaling.expect("pong", timeout=seconds, id=f"netcheck{number}")
        pings.append((time.monotonic() - started) * 1000)
    signaling_rtt = sorted(pings)[len(pings) // 2]
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in signaling.welcome.get("ice_servers", [])
    ]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
    media: dict[str, Any] = {"connected": False, "probes": probes, "answered": 0}
    check = None
    try:
        channel = pc.createDataChannel("netcheck", ordered=False, maxRetransmits=0)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        sent: dict[int, float] = {}
        rtts: list[float] = []
        all_back = asyncio.Event()

        @channel.on("message")
        def on_echo(message: bytes | str) -> None:
            number = json.loads(message)["n"]
            if number in sent:
                rtts.append((time.monotonic() - sent.pop(number)) * 1000)
                if len(rtts) == probes:
                    all_back.set()

        await pc.setLocalDescription(await pc.createOffer())
        await signaling.send({"type": "netcheck.offer", "sdp": pc.localDescription.sdp})
        answer = await signaling.expect("netcheck.answer", timeout=seconds)
        check = answer["check"]
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await asyncio.wait_for(opened.wait(), max(0.1, deadline - time.monotonic()))
        media["connected"] = True
        media["candidate"] = _local_candidate_type(pc)
        for number in range(probes):
            sent[number] = time.monotonic()
            channel.send(json.dumps({"n": number}))
            await asyncio.sleep(interval)
        with contextlib.suppress(TimeoutError):  # the stragglers: a second at most
            await asyncio.wait_for(
                all_back.wait(), min(1.0, max(0.01, deadline - time.monotonic()))
            )
        media["answered"] = len(rtts)
        media["loss"] = round(1 - len(rtts) / probes, 4) if probes else 0.0
        media["rtt_ms"] = round(sorted(rtts)[len(rtts) // 2], 2) if rtts else None
    except (TimeoutError, ProtocolError) as exc:
        log.info("network check stopped: %s", exc)
    finally:
        await pc.close()
    result = {"type": "netcheck.result", "check": check,
              "signaling_rtt_ms": round(signaling_rtt, 2), "media": media}  # fmt: skip
    await signaling.send(result)
    return await signaling.expect("netcheck.saved")  # the server's answer: not the check's time


def _local_candidate_type(pc: RTCPeerConnection) -> str | None:
    """This side's candidate type in the nominated pair (aiortc keeps it in aioice)."""
    sctp = pc.sctp
    if sctp is None:
        return None
    connection = getattr(sctp.transport.transport, "_connection", None)
    pair = getattr(connection, "_nominated", {}).get(1)
    return getattr(getattr(pair, "local_candidate", None), "type", None)
