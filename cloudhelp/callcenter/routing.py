"""Routing: offering waiting tickets to staff (the ring), and the staff's answers to it.

An offer, an answer and a pick are each one conditional UPDATE of the ticket and the staff
member's presence (cloudhelp.domain.queue): of two server processes racing for a ticket or
a staff member, one wins and the other sees the row moved on.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.callcenter import frames
from cloudhelp.callcenter.messages import OfferReply, PickTicket, TransferTicket
from cloudhelp.callcenter.pushes import ring_key
from cloudhelp.core.logs import log_event
from cloudhelp.domain import catalog, deadlines, prereview, presence, queue, transfer
from cloudhelp.store.models import StaffPresence, Ticket, utcnow
from signaling.errors import SignalingError
from signaling.hub import Session

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

Skills = dict[int, tuple[set[int], set[int]]]


class Routing:
    """Rings available staff for waiting tickets; takes accept, decline, pick and transfer."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self.pushes = center.pushes
        self.timers = center._timers
        self._lock = asyncio.Lock()  # one dispatch pass at a time in this process
        self._again = False  # a dispatch was asked for while a pass ran

    @property
    def busy(self) -> bool:
        """Whether a dispatch pass is running."""
        return self._lock.locked()

    async def dispatch(self) -> None:
        """Offer waiting tickets to available staff whose skills cover the item.

        One pass at a time in this process. A call made while a pass runs returns at once and
        has the pass run again when it ends, so a burst of takes costs a few passes, not one
        each; every change a call stands for is written before it calls, so the next pass
        sees it.
        """
        if self._lock.locked():
            self._again = True
            return
        async with self._lock:
            while True:
                self._again = False
                offered = await self._offer_pass()
                if not offered and not self._again:
                    return

    async def _offer_pass(self) -> bool:
        """One read of the queue and the available staff, one offer per staff member (oldest
        ticket first) claimed in one transaction, then the rings. Whether any was made."""
        async with self.db.read() as s:
            staff = await presence.available_staff(s)
            if not staff:
                return False
            tickets = await queue.waiting_tickets(s)
            if not tickets:
                return False
            covers = await presence.skill_sets(s, [p.staff_id for p in staff])
            offers = await queue.offer_counts(s, [t.id for t in tickets])
        plan = self._match(tickets, staff, covers, offers, utcnow())
        ring = {t.id: t.department.ring_seconds for t in tickets}
        try:
            async with self.db.write() as s:
                claimed = await queue.claim_offers(s, [(t, p, ring[t]) for t, p in plan])
        except queue.Conflict:
            # A staff member moved on since the read: the batch was rolled back; claim one
            # at a time instead, skipping whoever moved on.
            claimed = []
            for ticket_id, staff_id in plan:
                try:
                    async with self.db.write() as s:
                        claimed += await queue.claim_offers(
                            s, [(ticket_id, staff_id, ring[ticket_id])]
                        )
                except queue.Conflict:
                    continue
        if claimed:
            # Announced through the façade (CallCenter._announce_offers), where a test holds
            # it to race a cancellation with the ring.
            await self.center._announce_offers(claimed)
        return bool(claimed)

    def _match(
        self,
        tickets: Sequence[Ticket],
        staff: Sequence[StaffPresence],
        covers: Skills,
        offers: Counter[tuple[int, int | None]],
        now: datetime,
    ) -> list[tuple[int, int]]:
        """(ticket, staff member) pairs to offer: each ticket in the order of service to the
        first of its candidates not yet given one."""
        # Longest idle first: among a ticket's candidates, the order after its earlier offers.
        by_idle = sorted(staff, key=lambda p: (p.idle_since or p.since, p.staff_id))
        free = {p.staff_id: p for p in by_idle}
        plan: list[tuple[int, int]] = []
        for ticket in tickets:
            if not free:
                break
            staff_id = self._first_candidate(ticket, free.values(), covers, offers, now)
            if staff_id is not None:
                plan.append((ticket.id, staff_id))
                del free[staff_id]
        return plan

    def _first_candidate(
        self,
        ticket: Ticket,
        by_idle: Iterable[StaffPresence],
        covers: Skills,
        offers: Counter[tuple[int, int | None]],
        now: datetime,
    ) -> int | None:
        """Whom to offer ``ticket``, of ``by_idle`` (longest idle first): the preferred
        reviewer during the preference window, else the one who covers its item and was
        offered it the fewest times, the longest idle among equals. One pass, stopping at the
        first never offered it (in a burst, the first who covers it)."""
        preferred = ticket.preferred_staff_id
        waited = (now - ticket.enqueued_at).total_seconds()
        if preferred is not None and waited < self.center.prefer_reviewer_seconds:
            # A correction session first rings the staff member who did the pre-review.
            return preferred if any(p.staff_id == preferred for p in by_idle) else None
        # A skill for the item alone counts while the ticket is in the item's own department
        # (one transferred to another department goes to that department's staff).
        by_item = ticket.item.department_id == ticket.department_id
        best: int | None = None
        fewest = 0
        for p in by_idle:
            departments, items = covers[p.staff_id]
            if ticket.department_id not in departments and not (
                by_item and ticket.item_id in items
            ):
                continue
            count = offers[(ticket.id, p.staff_id)]
            if count == 0:
                return p.staff_id
            if best is None or count < fewest:
                best, fewest = p.staff_id, count
        return best

    async def announce_offers(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Ring each staff member for the ticket just claimed for them (one read for all);
        arm each ring's time-out (its deadline was set with the offer)."""
        stamp = self.pushes.gate.read()
        async with self.db.read() as s:
            ticket_ids, staff_ids = [t for t, _ in pairs], [p for _, p in pairs]
            tickets = {t.id: t for t in await queue.tickets_by_id(s, ticket_ids)}
            rows = {r.staff_id: r for r in await presence.presence_rows(s, staff_ids)}
            transfers = await transfer.transferred_by(s, ticket_ids)
        for ticket_id, staff_id in pairs:
            ticket, row = tickets.get(ticket_id), rows.get(staff_id)
            log_event("ticket.offered", ticket=ticket_id, staff=staff_id)
            if ticket is None or ticket.status != "offered" or ticket.offered_to != staff_id:
                continue  # cancelled, or answered, before the ring could be announced
            if ticket.ring_deadline is not None:
                self.center.expiries.arm("ring", ticket_id, ticket.ring_deadline)
            if row is None:
                continue
            # Gated by the ticket's version: a ring.cancelled sent meanwhile is never overtaken.
            summary = frames.ticket_summary(ticket)
            ring = ticket.department.ring_seconds
            message = frames.ring_frame(summary, ring, transfers.get(ticket_id))
            await self.pushes.send_if_changed(
                ring_key(ticket_id, staff_id), row.session_id, message, ticket.version
            )
            await self.pushes.send_if_changed(
                f"presence:{staff_id}", row.session_id, frames.presence_frame(row), stamp
            )
        self.pushes.schedule_queues()

    async def ring_expired(self, ticket_id: int) -> None:
        """The ring's deadline passed: claimed (once, by whichever process sees it due), the
        ticket waits again, the missed ring counts towards autopause, and dispatch runs."""
        async with self.db.write() as s:
            if not await deadlines.claim(s, "ring", ticket_id, utcnow()):
                return
            ticket = await s.get(Ticket, ticket_id)
            staff_id = ticket.offered_to if ticket is not None else None
            if staff_id is None:
                return
            released = await self._write_release(s, ticket_id, staff_id, "timeout", missed=True)
        if await self._announce_release(ticket_id, staff_id, "timeout", released):
            await self.dispatch()

    async def release(self, ticket_id: int, staff_id: int, reason: str, *, missed: bool) -> bool:
        """Stop ringing the staff member (declined, gone); the ticket waits again. A missed
        ring counts towards autopause (queue.release_offer). False if not ringing."""
        async with self.db.write() as s:
            released = await self._write_release(s, ticket_id, staff_id, reason, missed=missed)
        return await self._announce_release(ticket_id, staff_id, reason, released)

    async def _write_release(
        self, s: AsyncSession, ticket_id: int, staff_id: int, reason: str, *, missed: bool
    ) -> tuple[str, int | None] | None:
        """Put the offer back in the caller's transaction: the staff member's new state and
        the ticket's version, or None if the ticket was not ringing for them."""
        ticket = await s.get(Ticket, ticket_id)
        max_missed = ticket.department.max_missed_offers if ticket else 2
        state = await queue.release_offer(
            s, ticket_id, staff_id, reason, missed=missed, max_missed=max_missed
        )
        if state is None:
            return None
        return state, await queue.ticket_version(s, ticket_id)

    async def _announce_release(
        self, ticket_id: int, staff_id: int, reason: str, released: tuple[str, int | None] | None
    ) -> bool:
        """Tell the staff member the ring stopped (after _write_release); whether it had."""
        if released is None:
            return False
        state, version = released
        self.timers.cancel("ring", ticket_id)
        log_event(f"ticket.offer_{reason}", ticket=ticket_id, staff=staff_id, staff_state=state)
        await self.pushes.send_staff(
            staff_id,
            {"type": "ring.cancelled", "ticket": ticket_id, "reason": reason, "version": version},
            (ring_key(ticket_id, staff_id), version or 0),
        )
        await self.pushes.push_presence(staff_id)
        self.pushes.schedule_queues()
        return True

    async def on_offer_reply(self, session: Session, message: OfferReply) -> None:
        staff_id = int(session.principal.id)
        if message.type == "ring.decline":
            if not await self.release(message.ticket, staff_id, "declined", missed=False):
                raise SignalingError("not_your_offer", "That ticket is not ringing for you.")
            await self.dispatch()
            return
        call_id = await self._connect(session, message.ticket, picked=False)
        if call_id is None:
            raise SignalingError("not_your_offer", "That ticket is no longer ringing for you.")
        self.timers.cancel("ring", message.ticket)
        await self.center.calls.open_call(message.ticket, call_id, session)

    async def on_pick(self, session: Session, message: PickTicket) -> None:
        staff_id = int(session.principal.id)
        async with self.db.read() as s:
            ticket = await s.get(Ticket, message.ticket)
            if ticket is None:
                raise SignalingError("no_such_ticket", "There is no such ticket.")
            if not await queue.skills_cover(s, staff_id, ticket):
                raise SignalingError("not_skilled", "That ticket is for an item you do not handle.")
        call_id = await self._connect(session, message.ticket, picked=True)
        if call_id is None:
            raise SignalingError(
                "ticket_taken", "That ticket is no longer waiting, or you are busy."
            )
        await self.center.calls.open_call(message.ticket, call_id, session)

    async def _connect(self, session: Session, ticket_id: int, *, picked: bool) -> int | None:
        """Claim the ticket for the staff member's call (an answered ring or a pick): the new
        call's id, or None if the ticket or the staff member moved on first."""
        staff_id = int(session.principal.id)
        try:
            async with self.db.write() as s:
                call = await queue.connect(s, ticket_id, staff_id, picked=picked)
                if call is None:
                    return None
                # A correction session opens the case's next round.
                await prereview.start_correction_round(
                    s, ticket_id, staff_id, session.principal.info["username"]
                )
                return call.id
        except queue.Conflict:
            return None

    async def on_transfer(self, session: Session, message: TransferTicket) -> None:
        staff_id = int(session.principal.id)
        async with self.db.read() as s:
            department = await catalog.get_department(s, message.department)
            ticket_id = await presence.call_ticket(s, staff_id)
        if department is None:
            raise SignalingError(
                "no_such_department", f"There is no department {message.department!r}."
            )
        if ticket_id is None:
            raise SignalingError("not_in_call", "Only a ticket in your call can be transferred.")
        await self.center.calls.end_call(ticket_id, "transferred", transfer_to=department.id)
        await self.dispatch()
