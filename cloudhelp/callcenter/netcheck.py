"""The kiosk's pre-call network check: an echo peer answers its offer, the server judges the
figures the kiosk measured, and keeps the result for the ticket the kiosk takes next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudhelp.callcenter.messages import NetcheckOffer, NetcheckResult
from cloudhelp.core.clock import iso
from cloudhelp.core.logs import log_event
from cloudhelp.domain import netquality, queue
from cloudhelp.media.echo import EchoPeers, EchoRefused
from cloudhelp.store.models import utcnow
from signaling.errors import SignalingError
from signaling.hub import Session
from signaling.ice import ice_servers

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter


class Netcheck:
    """Echo peers for the kiosks' checks, and each kiosk session's latest result."""

    def __init__(self, center: CallCenter, max_peers: int, lifetime_seconds: float) -> None:
        self.center = center
        self.db = center.db
        settings = center.hub.settings
        self.echo = EchoPeers(
            lambda name: ice_servers(settings.ice, name), max_peers, lifetime_seconds
        )
        self.results: dict[str, dict[str, Any]] = {}  # kiosk session id → its latest result

    async def on_offer(self, session: Session, message: NetcheckOffer) -> None:
        try:
            check, sdp = await self.echo.answer(session.id, message.sdp)
        except EchoRefused as refused:
            raise SignalingError(refused.code, refused.message) from None
        await self.center.hub.send(
            session.id, {"type": "netcheck.answer", "check": check, "sdp": sdp}
        )

    async def on_result(self, session: Session, message: NetcheckResult) -> None:
        """Judge the figures (the server's count of echoed probes bounds the kiosk's), keep
        them, put them on the kiosk's open ticket, and answer ``netcheck.saved``."""
        seen = self.echo.view(session.id, message.check)
        await self.echo.close(session.id)
        media = message.media.model_dump() if message.media is not None else None
        if media is not None and seen is not None:
            media["answered"] = min(media["answered"], seen["echoed"])
        verdict = netquality.check_verdict(message.signaling_rtt_ms, media)
        record: dict[str, Any] = {
            "verdict": verdict,
            "signaling_rtt_ms": message.signaling_rtt_ms,
            **(media or {"connected": False}),
            "echoed": seen["echoed"] if seen else None,
            "at": iso(utcnow()),
        }
        self.results[session.id] = record
        log_event("netcheck.result", kiosk=session.principal.id, verdict=verdict,
                  candidate=record.get("candidate"), rtt_ms=record.get("rtt_ms"))  # fmt: skip
        async with self.db.write() as s:
            ticket = await queue.open_ticket_of_kiosk(s, int(session.principal.id))
            if ticket is not None:
                ticket.netcheck = record
        await self.center.hub.send(
            session.id, {"type": "netcheck.saved", "verdict": verdict, "netcheck": record}
        )
        if ticket is not None:
            self.center.pushes.schedule_queues()
        if session.room is not None:
            await self.center.quality.push(session.room, session)

    def latest(self, session_id: str) -> dict[str, Any] | None:
        return self.results.get(session_id)

    async def forget(self, session_id: str) -> None:
        """The session ended: its echo peer closes and its result goes."""
        self.results.pop(session_id, None)
        await self.echo.close(session_id)
