"""Staff presence: a console coming and going, and the status its staff member sets.

Autopause (set away after missed rings) happens where a ring is released
(routing.Routing.release, queue.release_offer); becoming available again restarts its count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudhelp.callcenter.messages import StaffStatus
from cloudhelp.domain import presence as staff_presence
from cloudhelp.domain import queue
from cloudhelp.store.models import StaffPresence, utcnow
from signaling.errors import SignalingError
from signaling.hub import Session

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

SNAPSHOT_KEYS = ("presence", "queue", "warnings")  # what a console is sent about its person


class Presence:
    """Keeps each staff member's presence row in step with their console."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self.gate = center._gate
        self.pushes = center.pushes
        self.timers = center._timers

    async def staff_started(self, session: Session, available: bool = False) -> None:
        """A console signed in: the staff member is online, away until they say available
        (``available``: at once, the console it replaced was answering calls)."""
        staff_id = int(session.principal.id)
        async with self.db.write() as s:
            now = utcnow()
            await staff_presence.sign_in(s, staff_id, session.id, now)
            if available:
                await staff_presence.set_status(s, staff_id, "available", now)
        await self.send_snapshots(staff_id)
        if available:
            await self.center.routing.dispatch()

    async def send_snapshots(self, staff_id: int) -> None:
        """Send the console its presence, warnings and queue, even if unchanged (a new page)."""
        for key in SNAPSHOT_KEYS:
            self.gate.reset(f"{key}:{staff_id}")
        await self.pushes.push_presence(staff_id)
        await self.pushes.push_warnings(staff_id)
        self.pushes.schedule_queues()

    async def staff_gone(self, staff_id: int, session_id: str) -> None:
        """The console's session ``session_id`` ended: its ring goes to someone else, its call
        ends, its wrap-up closes, and the staff member is offline."""
        async with self.db.read() as s:
            row = await s.get(StaffPresence, staff_id)
        if row is None or row.session_id not in (session_id, None):
            return  # a newer console holds the row
        center = self.center
        if row.state == "ringing" and row.ticket_id is not None:
            # Offline before the ring is released: released first, they were "available" until
            # the sign-off, and a dispatch pass in between could ring them again (the ticket
            # then waited out a whole ring for nobody).
            async with self.db.write() as s:
                await staff_presence.sign_off(s, staff_id, session_id, utcnow())
            await center.routing.release(row.ticket_id, staff_id, "staff_gone", missed=False)
        elif row.state == "in_call" and row.ticket_id is not None:
            await center.calls.end_call(row.ticket_id, "peer_gone")
        async with self.db.write() as s:
            await queue.finish_wrapup(s, staff_id, None, "", "staff_gone")
            await staff_presence.sign_off(s, staff_id, session_id, utcnow())
        self.timers.cancel("wrapup", staff_id)

    async def on_status(self, session: Session, message: StaffStatus) -> None:
        staff_id = int(session.principal.id)
        async with self.db.write() as s:
            refused = await staff_presence.set_status(s, staff_id, message.status, utcnow())
        if refused is not None:
            if message.status == "available":
                raise SignalingError(
                    "invalid_state", f"You cannot become available while {refused}."
                )
            raise SignalingError("invalid_state", f"Finish first: you are {refused}.")
        await self.pushes.push_presence(staff_id)
        self.pushes.schedule_queues()
        await self.center.routing.dispatch()
