"""Kiosk tickets: taking one (for an item, or a correction session of a case), cancelling it,
and what happens to it when the kiosk goes away or comes back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.callcenter.batches import BatchedWrites
from cloudhelp.callcenter.messages import CancelTicket, TakeTicket
from cloudhelp.callcenter.pushes import ring_key
from cloudhelp.core import signed
from cloudhelp.core.errors import must_exist
from cloudhelp.core.logs import log_event
from cloudhelp.domain import accounts, appointments, cases, catalog, deadlines, queue
from cloudhelp.store.models import Case, Kiosk, ServiceItem, Ticket, utcnow
from signaling.errors import SignalingError
from signaling.hub import Session

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

# After the preference window a correction ticket may ring anyone; a little later than the
# window itself, so the dispatch finds it over.
PREFER_WINDOW_MARGIN_SECONDS = 0.1


@dataclass(frozen=True)
class _Take:
    """A ``ticket.take`` (its case grant checked) waiting to be written with the others of
    its batch (Tickets._write_tickets)."""

    session: Session
    message: TakeTicket
    kiosk_id: int


@dataclass(frozen=True)
class _Checked:
    """A take with what it names, read in its batch's transaction, about to be written."""

    session: Session
    item: ServiceItem
    kiosk: Kiosk
    case: Case | None
    appointment: str | None


class Tickets:
    """A kiosk's ticket from taking it until a staff member answers (or it is given up)."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self.gate = center._gate
        self.pushes = center.pushes
        self.timers = center._timers
        self._writes: BatchedWrites[_Take, tuple[int, ServiceItem, Case | None]] = BatchedWrites(
            center.db, center._tasks.spawn, self._write_tickets
        )

    async def on_take(self, session: Session, message: TakeTicket) -> None:
        kiosk_id = int(session.principal.id)
        if message.case is not None:
            self._check_case_grant(kiosk_id, message)
        # Read and written together with the other tickets taken meanwhile: a burst of takes
        # costs a few transactions of a few statements each, not several of each per ticket.
        ticket_id, item, case = await self._writes.run(_Take(session, message, kiosk_id))
        log_event("ticket.enqueued", ticket=ticket_id, item=item.code, kiosk=kiosk_id)
        if case is not None and case.staff_id is not None:
            # After the preference window any staff member who handles the item may answer.
            self.timers.arm(
                "prefer_window",
                ticket_id,
                self.center.prefer_reviewer_seconds + PREFER_WINDOW_MARGIN_SECONDS,
                self.center.routing.dispatch,
            )
        self.pushes.schedule_queues()
        await self.center.routing.dispatch()

    async def _write_tickets(
        self, s: AsyncSession, takes: Sequence[_Take]
    ) -> list[tuple[int, ServiceItem, Case | None] | SignalingError]:
        """The tickets of takes that arrived together, each refused alone (before writing
        anything) if its item, case or appointment is not one to call about, its kiosk has
        a ticket already or its appointment cannot be checked in here and now: each one's
        id, item and case, or its refusal. The items and kiosks of the batch are read with
        one statement each."""
        kiosks = await accounts.kiosks_by_id(s, {take.kiosk_id for take in takes})
        items = await catalog.items_by_code(
            s, {take.message.item for take in takes if take.message.item is not None}
        )
        busy = await queue.kiosks_with_open_tickets(s, list(kiosks))
        outcomes: list[_Checked | SignalingError] = []
        accepted: list[queue.NewTicket] = []
        for take in takes:
            try:
                item, case = await self._item_and_case(s, take.message, items)
                kiosk = must_exist(kiosks.get(take.kiosk_id), f"kiosk {take.kiosk_id}")
                checked = _Checked(take.session, item, kiosk, case, take.message.appointment)
                accepted.append(await self._new_ticket(s, checked, busy))
                outcomes.append(checked)
                busy.add(kiosk.id)  # a second take of the same kiosk in this batch
            except SignalingError as refused:
                outcomes.append(refused)
        ids = iter(ticket.id for ticket in await queue.take_many(s, accepted))
        return [
            outcome
            if isinstance(outcome, SignalingError)
            else (next(ids), outcome.item, outcome.case)
            for outcome in outcomes
        ]

    async def _new_ticket(self, s: AsyncSession, take: _Checked, busy: set[int]) -> queue.NewTicket:
        """The ticket ``take`` asks for; SignalingError, before writing anything, if it may
        not be taken (``busy``: the kiosks with a ticket already)."""
        if take.kiosk.id in busy:
            raise SignalingError("ticket_open", "This kiosk already has a ticket in the queue.")
        appointment_id = None
        if take.appointment is not None:
            try:  # refused before anything is written
                booked = await appointments.check_in(
                    s, take.appointment, take.kiosk.station_id, self.center.appointment_clock()
                )
            except appointments.AppointmentError as refused:
                raise SignalingError(refused.code, refused.message) from None
            appointment_id = booked.id
        return queue.NewTicket(
            item=take.item,
            kiosk_id=take.kiosk.id,
            station_id=take.kiosk.station_id,
            session_id=take.session.id,
            case=take.case,
            appointment_id=appointment_id,
            netcheck=self.center.netcheck.latest(take.session.id),  # the check before this call
        )

    async def _item_and_case(
        self, s: AsyncSession, message: TakeTicket, items: dict[str, ServiceItem]
    ) -> tuple[ServiceItem, Case | None]:
        """The item the ticket is for, and the case of a correction session (or None);
        ``items``: the batch's items named by code, read already."""
        case = None
        if message.case is not None:
            case = await cases.for_correction(s, message.case)
            if case is None:
                raise SignalingError(
                    "no_such_case", "No case with that number is waiting for corrections."
                )
            item: ServiceItem | None = case.item
        elif message.appointment is not None:
            booked = await appointments.find(s, message.appointment)
            if booked is None:
                raise SignalingError(
                    "no_such_appointment", "There is no appointment with this code."
                )
            item = booked.item
        elif message.item is not None:
            item = items.get(message.item)
        else:
            raise SignalingError(
                "bad_message", "Say which item (item), case (case) or appointment (appointment)."
            )
        if item is None:
            raise SignalingError("no_such_item", f"There is no service item {message.item!r}.")
        if not item.cloud:
            raise SignalingError(
                "not_cloud", "This item cannot be handled by video; please go to the hall."
            )
        return item, case

    def _check_case_grant(self, kiosk_id: int, message: TakeTicket) -> None:
        """A correction session only for a case this kiosk looked up (number and last four
        digits) within the grant's lifetime: no kiosk opens one for any case number."""
        try:
            signed.check(
                self.center.secret_key,
                message.grant,
                signed.CASE_GRANT,
                (str(message.case), kiosk_id),
            )
        except signed.TokenRefused as refused:
            if refused.reason == "expired":
                raise SignalingError(
                    "case_grant_expired", "The case lookup expired; look the case up again."
                ) from None
            raise SignalingError(
                "case_grant_invalid",
                "Look the case up at this kiosk (number and last four digits) before calling.",
            ) from None

    async def on_cancel(self, session: Session, message: CancelTicket) -> None:
        async with self.db.read() as s:
            ticket = await queue.open_ticket_of_kiosk(s, int(session.principal.id))
        if ticket is None or ticket.status not in queue.QUEUED:
            raise SignalingError("no_ticket", "There is no waiting ticket to cancel.")
        await self.close_queued(ticket.id, "cancelled", "resident_cancelled")
        self.pushes.schedule_queues()
        await self.center.routing.dispatch()

    async def close_queued(self, ticket_id: int, status: str, reason: str) -> None:
        """Cancel or abandon a queued ticket; a ring for it stops."""
        async with self.db.write() as s:
            ticket = await queue.close_queued(s, ticket_id, status, reason)
        await self._announce_closed(ticket_id, ticket, status, reason)

    async def _announce_closed(
        self, ticket_id: int, ticket: Ticket | None, status: str, reason: str
    ) -> None:
        """Tell the ringing staff member and the kiosk (after queue.close_queued; nothing if
        it closed nothing)."""
        if ticket is None:
            return
        log_event(f"ticket.{status}", ticket=ticket_id, reason=reason)
        self.timers.cancel("ring", ticket_id)
        if ticket.offered_to is not None:
            await self.pushes.send_staff(
                ticket.offered_to,
                {"type": "ring.cancelled", "ticket": ticket_id, "reason": reason,
                 "version": ticket.version},
                (ring_key(ticket_id, ticket.offered_to), ticket.version),
            )  # fmt: skip
            await self.pushes.push_presence(ticket.offered_to)
        await self.pushes.push_ticket(ticket_id)

    async def kiosk_started(self, session: Session) -> None:
        """A kiosk signed in: a ticket it left queued follows it to the new session."""
        kiosk_id = int(session.principal.id)
        async with self.db.read() as s:  # usually there is none: no write, no write lock
            left = await queue.open_ticket_of_kiosk(s, kiosk_id)
        if left is None or left.status not in queue.QUEUED:
            return
        async with self.db.write() as s:
            ticket_id = await queue.hold_queued_ticket(s, kiosk_id, session.id)
        if ticket_id is not None:
            self.timers.cancel("abandon", ticket_id)
            self.gate.reset(f"ticket:{ticket_id}")
            await self.pushes.push_ticket(ticket_id)

    async def take_over(self, old: Session, new: Session) -> None:
        """A second sign-in of the same kiosk takes its queued ticket over."""
        async with self.db.write() as s:
            await queue.hold_queued_ticket(s, int(old.principal.id), new.id)

    async def kiosk_gone(self, kiosk_id: int, session_id: str, reason: str) -> bool:
        """The kiosk's session ``session_id`` ended: abandon its queued ticket or end its call;
        False if it had neither (or a newer session of the kiosk holds the ticket)."""
        async with self.db.read() as s:
            ticket = await queue.open_ticket_of_kiosk(s, kiosk_id)
        if ticket is None or ticket.session_id not in (session_id, None):
            return False
        if ticket.status in queue.QUEUED:
            why = "resident_left" if reason == "left" else "kiosk_gone"
            await self.close_queued(ticket.id, "abandoned", why)
        elif ticket.status == "connected":
            await self.center.calls.end_call(ticket.id, "peer_gone")
        return True

    async def abandon_expired(self, ticket_id: int) -> None:
        """The abandon deadline passed and the kiosk did not come back (coming back clears
        it): claimed (once, by whichever process sees it due), the ticket is abandoned."""
        async with self.db.write() as s:
            if not await deadlines.claim(s, "abandon", ticket_id, utcnow()):
                return
            ticket = await s.get(Ticket, ticket_id)
            if ticket is None or ticket.session_id is not None:
                return
            closed = await queue.close_queued(s, ticket_id, "abandoned", "kiosk_gone")
        await self._announce_closed(ticket_id, closed, "abandoned", "kiosk_gone")
        if closed is not None:
            self.pushes.schedule_queues()
