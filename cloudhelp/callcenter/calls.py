"""Calls: the room a connected ticket opens, its end, the wrap-up after it, and the rating.

The hub relays the media negotiation between the two members of a call room; this module
opens and closes the room around the ticket's changes, and keeps each call's session log
(chat lines, screen sharing) until the call ends and the log is written with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudhelp.callcenter.messages import Hangup, SubmitRating, WrapupDone
from cloudhelp.core.errors import must_exist
from cloudhelp.core.logs import log_event
from cloudhelp.domain import deadlines, netquality, outcomes, presence, queue, ratings
from cloudhelp.store.models import Kiosk, StaffPresence, Ticket, utcnow
from signaling.errors import SignalingError
from signaling.hub import Session

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

# Screen-sharing toggles kept in a call's session log (its ``ended`` ticket event); beyond that
# only the latest toggle and the count ``screen_toggles`` are kept.
SCREEN_LOG_MAX = 20


@dataclass(frozen=True)
class _Ended:
    """What the end of a call wrote, for the announcements that follow it."""

    call_id: int
    staff_id: int
    staff_session: str | None
    kiosk_session: str | None
    wrapup_seconds: int
    wrapup_deadline: datetime | None  # None: the staff member has no presence row
    proposal: str
    version: int


class Calls:
    """Opens and ends calls, runs wrap-up, takes ratings; keeps each call's session log."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self.hub = center.hub
        self.gate = center._gate
        self.pushes = center.pushes
        self.timers = center._timers
        self.log = center._call_log  # room → {"chats": n, "screen": [toggles]…}

    async def open_call(self, ticket_id: int, call_id: int, staff_session: Session) -> None:
        """The ticket is connected: put the kiosk's and the staff member's sessions in a room."""
        async with self.db.read() as s:
            ticket = must_exist(await s.get(Ticket, ticket_id), f"ticket {ticket_id}")
            kiosk = await s.get(Kiosk, ticket.kiosk_id)
            kiosk_session = ticket.session_id
        log_event(
            "call.connected", ticket=ticket_id, call=call_id, staff=staff_session.principal.id
        )
        # The connected ticket goes before ``joined``: a queue snapshot read earlier (older
        # version) can then never reach the kiosk after the call has begun.
        await self.pushes.push_ticket(ticket_id)
        if kiosk_session is not None and kiosk is not None:
            await self.hub.open_room(
                f"call-{call_id}",
                {
                    kiosk_session: {
                        "role": "kiosk",
                        "kiosk": kiosk.code,
                        "station": kiosk.station.name,
                    },
                    staff_session.id: {
                        "role": "staff",
                        "name": staff_session.principal.info.get("name", ""),
                    },
                },
            )
        await self.pushes.push_presence(int(staff_session.principal.id))
        self.pushes.schedule_queues()

    async def end_call(self, ticket_id: int, reason: str, transfer_to: int | None = None) -> bool:
        """End the ticket's call: wrap-up starts (or the ticket is back in a queue, for
        ``transfer_to``); the room closes. False if the ticket was not in a call."""
        stamp = self.gate.read()
        ended = await self._write_end(ticket_id, reason, transfer_to)
        if ended is None:
            return False
        log_event("call.ended", ticket=ticket_id, call=ended.call_id, reason=reason)
        staff_id = ended.staff_id
        if ended.wrapup_deadline is not None:
            self.center.expiries.arm("wrapup", staff_id, ended.wrapup_deadline)
        # The ticket's new state (wrap-up) before ``left``: no snapshot of the call can reach
        # the kiosk after the call is over. A transferred ticket is back in a queue: its
        # position follows ``left``, for the waiting screen the kiosk returns to (anything
        # older than the call is dropped by its version).
        if transfer_to is None:
            await self.pushes.push_ticket(ticket_id)
        members = [sid for sid in (ended.kiosk_session, ended.staff_session) if sid]
        await self.hub.close_room(f"call-{ended.call_id}", members, reason)
        if transfer_to is not None:
            await self.pushes.push_ticket(ticket_id)
        # Not after a presence read later than this call's end (the staff member may have
        # finished wrap-up already): the console would go back to a wrap-up that is over.
        session = ended.staff_session
        if session is not None and not self.gate.sent_after(f"presence:{staff_id}", stamp):
            await self.hub.send(
                session,
                {"type": "wrapup", "ticket": ticket_id, "seconds": ended.wrapup_seconds,
                 "outcome": ended.proposal, "version": ended.version, "end_reason": reason},
            )  # fmt: skip
        await self.pushes.push_presence(staff_id)
        self.pushes.schedule_queues()
        return True

    async def _write_end(
        self, ticket_id: int, reason: str, transfer_to: int | None
    ) -> _Ended | None:
        """End the call in the database, with its session log (wrap-up's deadline is set with
        it); None if there was none."""
        async with self.db.write() as s:
            log = self.log.get(f"call-{await queue.open_call_id(s, ticket_id)}", {})
            ended = await queue.end_call(s, ticket_id, reason, transfer_to=transfer_to, log=log)
            if ended is None:
                return None
            ticket, call = ended
            self.log.pop(f"call-{call.id}", None)
            figures = self.center.quality.take(f"call-{call.id}")
            await netquality.save_summaries(s, call.id, ticket.id, figures)
            row = await s.get(StaffPresence, call.staff_id)
            return _Ended(
                call_id=call.id,
                staff_id=call.staff_id,
                staff_session=row.session_id if row else None,
                kiosk_session=ticket.session_id,
                wrapup_seconds=ticket.department.wrapup_seconds,
                wrapup_deadline=row.wrapup_deadline if row else None,
                proposal=await outcomes.proposed_outcome(s, ticket, reason),
                version=ticket.version,
            )

    async def finish_wrapup(
        self, staff_id: int, outcome: str | None, note: str, reason: str
    ) -> bool:
        """Close the staff member's wrap-up (done); False if not in wrap-up."""
        async with self.db.write() as s:
            ticket_id = await queue.finish_wrapup(s, staff_id, outcome, note, reason)
        return await self._announce_wrapup_finished(staff_id, ticket_id)

    async def wrapup_expired(self, staff_id: int) -> None:
        """Wrap-up's deadline passed: claimed (once, by whichever process sees it due), it
        closes with the outcome the call implies."""
        async with self.db.write() as s:
            if not await deadlines.claim(s, "wrapup", staff_id, utcnow()):
                return
            ticket_id = await queue.finish_wrapup(s, staff_id, None, "", "timeout")
        await self._announce_wrapup_finished(staff_id, ticket_id)

    async def _announce_wrapup_finished(self, staff_id: int, ticket_id: int | None) -> bool:
        """Push what closing wrap-up changed, and dispatch; False if it was not open."""
        self.timers.cancel("wrapup", staff_id)
        if ticket_id is None:
            return False
        if ticket_id:
            await self.pushes.push_ticket(ticket_id)
        await self.pushes.push_presence(staff_id)
        self.pushes.schedule_queues()
        await self.center.routing.dispatch()
        return True

    async def on_hangup(self, session: Session, message: Hangup) -> None:
        async with self.db.read() as s:
            if session.principal.kind == "kiosk":
                ticket = await queue.open_ticket_of_kiosk(s, int(session.principal.id))
                ticket_id = ticket.id if ticket and ticket.status == "connected" else None
            else:
                ticket_id = await presence.call_ticket(s, int(session.principal.id))
        reason = message.reason or f"{session.principal.kind}_hangup"
        if ticket_id is None or not await self.end_call(ticket_id, reason):
            raise SignalingError("not_in_call", "You are not in a call.")

    async def on_wrapup_done(self, session: Session, message: WrapupDone) -> None:
        staff_id = int(session.principal.id)
        if not await self.finish_wrapup(staff_id, message.outcome, message.note, "done"):
            raise SignalingError("invalid_state", "You are not in wrap-up.")

    async def on_rating(self, session: Session, message: SubmitRating) -> None:
        try:
            async with self.db.write() as s:
                ticket = await s.get(Ticket, message.ticket)
                if ticket is None or ticket.kiosk_id != int(session.principal.id):
                    raise SignalingError("no_such_ticket", "This kiosk has no such ticket.")
                rating, follow_up = await ratings.rate(
                    s,
                    ticket,
                    message.level,
                    message.reasons,
                    self.center.follow_up_working_days,
                    message.outcome,
                )
                rating_id = rating.id
        except ratings.RatingError as exc:
            raise SignalingError(exc.code, exc.message) from None
        log_event(
            "ticket.rated", ticket=message.ticket, level=message.level, follow_up=bool(follow_up)
        )
        await self.hub.send(
            session.id, {"type": "rating.saved", "ticket": message.ticket, "rating": rating_id}
        )

    def relayed(self, session: Session, message: dict[str, Any]) -> None:
        """Count chat lines and note screen sharing of each call, for its session log."""
        data = message.get("data")
        if not isinstance(data, dict) or not session.room:
            return
        call = self.log.setdefault(session.room, {"chats": 0, "screen": []})
        if data.get("kind") == "chat":
            call["chats"] += 1
        elif data.get("kind") == "screen":
            who, on = session.principal.kind, bool(data.get("on"))
            toggle = {"by": who, "on": on, "at": utcnow().isoformat()}
            screen = call["screen"]
            if len(screen) < SCREEN_LOG_MAX:
                screen.append(toggle)
            else:  # bounded: the latest toggle replaces the last kept one, the total is counted
                screen[-1] = toggle
                call["screen_toggles"] = call.get("screen_toggles", SCREEN_LOG_MAX) + 1
