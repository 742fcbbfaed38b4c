"""Echo peers for the kiosks' pre-call network check (docs/protocol.md, ``netcheck.offer``).

The kiosk offers a data channel through the ICE servers it was handed; an aiortc peer in the
server answers and sends every probe straight back, so the kiosk measures the round trip and the
loss on the very path a call would take (host, server-reflexive or TURN relay). Bounded: at most
``max_peers`` at once (more are refused), one per session, each closed after ``lifetime_seconds``
or when its check ends.

aiortc is imported by the first check, not with the module: it adds about 0.2 s of CPU to every
start of the server, which most starts (a test, a command) never use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiortc import RTCDataChannel, RTCPeerConnection

log = logging.getLogger("cloudhelp.echo")
# Probes are small: a longer message is not echoed (the peer is no relay for anything else).
PROBE_MAX_BYTES = 256
ANSWER_TIMEOUT_SECONDS = 5.0

IceServers = Callable[[str], list[dict[str, Any]]]


class EchoRefused(Exception):
    """An offer the echo peers do not take; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Echo:
    check: str
    pc: RTCPeerConnection
    echoed: int = 0
    timer: asyncio.TimerHandle | None = None
    closing: asyncio.Task[None] | None = field(default=None, repr=False)


class EchoPeers:
    """The echo peers running now, at most one per owner (a session id)."""

    def __init__(self, ice_servers: IceServers, max_peers: int, lifetime_seconds: float) -> None:
        self.ice_servers = ice_servers
        self.max_peers = max_peers
        self.lifetime_seconds = lifetime_seconds
        self._peers: dict[str, _Echo] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._peers)

    async def answer(self, owner: str, sdp: str) -> tuple[str, str]:
        """Answer ``owner``'s offer with a new echo peer: (check id, answer SDP). The owner's
        previous peer, if any, is closed first. Raises EchoRefused (``netcheck_busy``,
        ``bad_sdp``)."""
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

        _check_offer(sdp)
        await self.close(owner)
        if len(self._peers) >= self.max_peers:
            raise EchoRefused("netcheck_busy", "Too many network checks at once; try again soon.")
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self.ice_servers(f"netcheck-{owner}")
        ]
        # An explicit list: with none aiortc would ask a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        echo = _Echo(secrets.token_urlsafe(8), pc)
        self._peers[owner] = echo

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(message: bytes | str) -> None:
                if len(message) <= PROBE_MAX_BYTES and channel.readyState == "open":
                    channel.send(message)
                    echo.echoed += 1

        try:
            await asyncio.wait_for(self._negotiate(pc, sdp), ANSWER_TIMEOUT_SECONDS)
        except Exception as exc:
            await self.close(owner)
            log.info("netcheck offer refused: %s", exc)
            raise EchoRefused("bad_sdp", "The offer could not be answered.") from None
        loop = asyncio.get_running_loop()
        echo.timer = loop.call_later(self.lifetime_seconds, self._close_soon, owner, echo.check)
        return echo.check, pc.localDescription.sdp

    @staticmethod
    async def _negotiate(pc: RTCPeerConnection, sdp: str) -> None:
        from aiortc import RTCSessionDescription

        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())

    def view(self, owner: str, check: str | None) -> dict[str, Any] | None:
        """What the server saw of the owner's check (probes echoed, the kiosk's candidate type
        as the server's side of the pair names it), or None for another or a finished check."""
        echo = self._peers.get(owner)
        if echo is None or (check is not None and echo.check != check):
            return None
        return {
            "echoed": echo.echoed,
            "state": echo.pc.connectionState,
            "peer_candidate": _remote_candidate_type(echo.pc),
        }

    def _close_soon(self, owner: str, check: str) -> None:
        echo = self._peers.get(owner)
        if echo is not None and echo.check == check:
            task = asyncio.ensure_future(self.close(owner))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self, owner: str) -> None:
        """Close the owner's echo peer, if it has one."""
        echo = self._peers.pop(owner, None)
        if echo is None:
            return
        if echo.timer is not None:
            echo.timer.cancel()
        with contextlib.suppress(Exception):
            await echo.pc.close()

    async def close_all(self) -> None:
        for owner in list(self._peers):
            await self.close(owner)
        await asyncio.gather(*self._closing, return_exceptions=True)


def _check_offer(sdp: str) -> None:
    """An SDP offer with a data channel (an ``application`` m-line), or EchoRefused."""
    from aiortc.sdp import SessionDescription

    try:
        parsed = SessionDescription.parse(sdp)
    except Exception:
        raise EchoRefused("bad_sdp", "The offer is not a session description.") from None
    if not any(media.kind == "application" for media in parsed.media):
        raise EchoRefused("bad_sdp", "The offer has no data channel to echo on.")


def _remote_candidate_type(pc: RTCPeerConnection) -> str | None:
    """The type of the peer's candidate in the nominated pair (aiortc keeps it in aioice)."""
    sctp = pc.sctp
    if sctp is None:
        return None
    connection = getattr(sctp.transport.transport, "_connection", None)
    pair = getattr(connection, "_nominated", {}).get(1)
    return getattr(getattr(pair, "remote_candidate", None), "type", None)
