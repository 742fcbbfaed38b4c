"""Call quality: the pages' periodic ``call.stats`` summaries, the console's signal indicator
(``call.quality``), the board's view of each call, and the figures kept when a call ends."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from cloudhelp.callcenter.messages import CallStats
from cloudhelp.core.clock import iso
from cloudhelp.domain import netquality
from cloudhelp.domain.netquality import CallFigures
from cloudhelp.store.models import Call, Ticket, utcnow
from signaling.errors import SignalingError
from signaling.hub import Session

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

# A page sends a summary about every 5 s; closer than this one is refused (stats_too_frequent).
STATS_MIN_SECONDS = 2.0
# The broker channel on which each server process shares its members' summaries (several
# processes: a call's kiosk and staff member may be on two, its board on a third).
QUALITY_CHANNEL = "quality"


class Quality:
    """Each call's figures while it lasts (by call room), pushed to its staff member."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self.calls: dict[str, CallFigures] = {}  # call room → its figures so far
        self._last: dict[str, float] = {}  # session id → when its last summary was taken
        self.origin = secrets.token_hex(6)  # names this process's shared summaries
        self._netchecks: dict[str, dict[str, Any]] = {}  # call room → its kiosk's check, shared

    async def on_stats(self, session: Session, message: CallStats) -> None:
        room = session.room
        if room is None:
            raise SignalingError("not_in_call", "Call statistics are sent during a call.")
        now = time.monotonic()
        if now - self._last.get(session.id, -STATS_MIN_SECONDS) < STATS_MIN_SECONDS:
            raise SignalingError(
                "stats_too_frequent", f"Send call.stats at most every {STATS_MIN_SECONDS:g} s."
            )
        self._last[session.id] = now
        figures = self.calls.get(room) or await self._start(room)
        if figures is None:
            raise SignalingError("not_in_call", "That call is over.")
        sample: dict[str, Any] = message.model_dump(exclude={"type"})
        sample["level"] = netquality.sample_level(sample)
        sample["at"] = iso(utcnow())
        before = figures.level()
        side = "kiosk" if session.principal.kind == "kiosk" else "staff"
        figures.add(side, sample)
        kiosk, staff = _members(session)
        await self.center.hub.broker.broadcast(
            QUALITY_CHANNEL,
            {"type": "call.sample", "origin": self.origin, "room": room, "side": side,
             "sample": sample, "ticket": figures.ticket_id, "number": figures.ticket_number,
             "kiosk": kiosk, "staff": staff,
             "netcheck": self.center.netcheck.latest(kiosk) if kiosk else None},
        )  # fmt: skip
        await self._push_if_held(room, kiosk, staff)
        if figures.level() != before:
            self.center.pushes.board_changed()

    async def on_shared(self, message: dict[str, Any]) -> None:
        """Another process's member of a call reported: shown with this one's figures (its
        console, if held here, is told the call's quality; the board shows it)."""
        if message.get("origin") == self.origin:
            return
        try:
            room, side, sample = str(message["room"]), str(message["side"]), dict(message["sample"])
            figures = self.calls.get(room) or CallFigures(
                int(message["ticket"]), str(message["number"])
            )
        except (KeyError, TypeError, ValueError):
            return  # not a summary this version understands
        self.calls[room] = figures
        before = figures.level()
        figures.elsewhere[side] = sample
        if message.get("netcheck") is not None:
            self._netchecks[room] = message["netcheck"]
        await self._push_if_held(room, message.get("kiosk"), message.get("staff"))
        if figures.level() != before:
            self.center.pushes.board_changed()

    async def _push_if_held(self, room: str, kiosk: str | None, staff: str | None) -> None:
        """The call's quality to its staff member, by the process holding the console (the
        one that hears both sides' summaries, its own and those shared)."""
        if staff is not None and staff in self.center.hub.sessions:
            await self._push(room, kiosk, staff)

    async def _start(self, room: str) -> CallFigures | None:
        """The figures of a call room, from its first summary (None for a call that ended)."""
        call_id = int(room.removeprefix("call-"))
        async with self.db.read() as s:
            call = await s.get(Call, call_id)
            ticket = await s.get(Ticket, call.ticket_id) if call is not None else None
        if call is None or call.ended_at is not None or ticket is None:
            return None
        return self.calls.setdefault(room, CallFigures(ticket.id, ticket.number))

    async def push(self, room: str, session: Session) -> None:
        """Send the call's staff member its quality now (a snapshot: only the newest is kept)."""
        kiosk, staff = _members(session)
        if staff is not None:
            await self._push(room, kiosk, staff)

    async def _push(self, room: str, kiosk: str | None, staff: str) -> None:
        figures = self.calls.get(room)
        body = figures.now() if figures is not None else {"level": None, "bars": 0}
        netcheck = self.center.netcheck.latest(kiosk) if kiosk else None
        if netcheck is None:  # the kiosk's check was made on another process
            netcheck = self._netchecks.get(room)
        await self.center.hub.send(
            staff,
            {"type": "call.quality", "room": room, **body, "netcheck": netcheck,
             "_key": "quality"},
        )  # fmt: skip

    def take(self, room: str) -> CallFigures | None:
        """The figures of a call that ends (no longer kept here)."""
        self._netchecks.pop(room, None)
        return self.calls.pop(room, None)

    def board_view(self) -> dict[str, dict[str, Any]]:
        """Each call's quality now, by ticket number (for the board's calls)."""
        view = {}
        for figures in self.calls.values():
            now = figures.now()
            kiosk = now.get("kiosk") or {}
            view[figures.ticket_number] = {
                "level": now["level"], "bars": now["bars"], "relay": now["relay"],
                "rtt_ms": kiosk.get("rtt_ms"), "loss": kiosk.get("loss"),
            }  # fmt: skip
        return view

    def forget(self, session_id: str) -> None:
        self._last.pop(session_id, None)


def _members(session: Session) -> tuple[str | None, str | None]:
    """The kiosk's and the staff member's session ids in the sender's call."""
    ids = {
        session.id: session.principal.kind,
        **{p: i.get("role") for p, i in session.peers.items()},
    }
    kiosk = next((sid for sid, role in ids.items() if role == "kiosk"), None)
    staff = next((sid for sid, role in ids.items() if role == "staff"), None)
    return kiosk, staff
