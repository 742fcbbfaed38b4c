"""Tickets (排队号) in the database: numbering, atomic claims and every state change.

Each function runs inside the caller's write transaction and changes a ticket only from the
state it expects (a conditional UPDATE), so two staff members on two server processes can
never get the same ticket. docs/queue.md describes the states (the wait estimate is in
cloudhelp.domain.estimates).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, func, literal, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import local_day
from cloudhelp.core.errors import must_exist
from cloudhelp.domain import outcomes
from cloudhelp.store import counters
from cloudhelp.store.models import (
    Call,
    Case,
    Category,
    ServiceItem,
    StaffPresence,
    StaffSkill,
    Ticket,
    TicketCounter,
    TicketEvent,
    UTCDateTime,
    utcnow,
)

QUEUED = ("waiting", "offered")
OPEN_STATES = ("waiting", "offered", "connected", "wrapup")
# A kiosk holds at most one ticket in these states (a ticket in wrap-up has let it go).
HELD_BY_KIOSK = (*QUEUED, "connected")
# The state tests of queries that run on every hello, routing pass and board push, built once:
# ``in_`` on a tuple makes a new bind parameter whose memoized clone set refers to itself, a
# cycle only the GC's full pass frees (with 5,000 kiosks signing in, ~2 KiB of such garbage
# each, counted in the server's RSS).
IS_HELD_BY_KIOSK = Ticket.status.in_(HELD_BY_KIOSK)
IS_QUEUED = Ticket.status.in_(QUEUED)
IS_OPEN = Ticket.status.in_(OPEN_STATES)


class Conflict(Exception):
    """A claim lost a race half-way; raised so the caller's transaction rolls back."""


async def reserve_numbers(
    session: AsyncSession, day: str, category: Category, count: int = 1
) -> int:
    """Reserve ``count`` consecutive ticket numbers of the category on the local day; returns
    the first sequence number. Live tickets and generated history share this one counter.

    A day's counter that does not exist yet starts after the highest number already used that
    day (tickets written before the counter, e.g. by an older history generator), so a new
    number never collides with an old one.
    """
    key = {"day": day, "category_id": category.id}
    last = await counters.bump(session, TicketCounter, key, by=count)  # one statement, usually
    if last is None:
        used = await session.scalar(
            select(func.max(cast(func.substr(Ticket.number, 2), Integer))).where(
                Ticket.day == day, Ticket.number.like(f"{category.letter}%")
            )
        )
        last = await counters.advance(session, TicketCounter, key, by=count, start=used or 0)
    return last - count + 1


def ticket_number(letter: str, sequence: int) -> str:
    """A ticket's number as the kiosk shows it: the category letter and three digits (B001)."""
    return f"{letter}{sequence:03d}"


async def record(
    session: AsyncSession, ticket_id: int, kind: str, staff_id: int | None = None, **detail: Any
) -> None:
    session.add(TicketEvent(ticket_id=ticket_id, kind=kind, staff_id=staff_id, detail=detail))


async def merge_call_log(
    session: AsyncSession, call_id: int, log: dict[str, Any], screen_max: int
) -> bool:
    """Add the part of an ended call's session log gathered on another node (its members'
    chat lines and screen toggles) to the event that ended the call (``merged_call_log``);
    False when that event is not there."""
    call = await session.get(Call, call_id)
    if call is None:
        return False
    events = await session.scalars(
        select(TicketEvent)
        .where(
            TicketEvent.ticket_id == call.ticket_id,
            TicketEvent.kind.in_(("ended", "transferred")),
        )
        .with_for_update()
    )
    event = next((e for e in events if (e.detail or {}).get("call") == call_id), None)
    if event is None:
        return False
    event.detail = merged_call_log(dict(event.detail or {}), log, screen_max)  # a new dict
    return True


def merged_call_log(
    saved: dict[str, Any], extra: dict[str, Any], screen_max: int
) -> dict[str, Any]:
    """``saved`` (an ended call's event detail) with ``extra``'s chat lines and screen toggles
    added: toggles in time order, at most ``screen_max`` (the first ones and the latest, as
    one node keeps them), ``screen_toggles`` counting them all once there are more."""
    toggles = [*saved.get("screen", []), *extra.get("screen", [])]
    toggles.sort(key=lambda toggle: str(toggle.get("at", "")))
    total = saved.get("screen_toggles", len(saved.get("screen", []))) + extra.get(
        "screen_toggles", len(extra.get("screen", []))
    )
    merged = {**saved, "chats": int(saved.get("chats", 0)) + int(extra.get("chats", 0))}
    merged["screen"] = (
        toggles if len(toggles) <= screen_max else [*toggles[: screen_max - 1], toggles[-1]]
    )
    if total > screen_max:
        merged["screen_toggles"] = total
    return merged


@dataclass(frozen=True)
class NewTicket:
    """A ticket to take (take_many): a correction session's carries its case (and with it the
    case's reviewer), a checked-in one its appointment, and the pre-call check before it."""

    item: ServiceItem
    kiosk_id: int
    station_id: int
    session_id: str
    case: Case | None = None
    appointment_id: int | None = None
    netcheck: dict[str, Any] | None = None


async def take_many(session: AsyncSession, new: Sequence[NewTicket]) -> list[Ticket]:
    """Waiting tickets with their numbers and ``enqueued`` events, in the order of ``new``:
    one counter UPDATE per category, one INSERT of the tickets and one of the events, whatever
    their number."""
    now = utcnow()
    day = local_day(now)
    numbers = [""] * len(new)
    by_category: dict[int, list[int]] = {}  # positions in ``new``
    for position, taken in enumerate(new):
        by_category.setdefault(taken.item.category.id, []).append(position)
    for positions in by_category.values():
        category = new[positions[0]].item.category
        first = await reserve_numbers(session, day, category, len(positions))
        for offset, position in enumerate(positions):
            numbers[position] = ticket_number(category.letter, first + offset)
    tickets = [
        Ticket(
            day=day,
            number=number,
            item_id=taken.item.id,
            department_id=taken.item.department_id,
            station_id=taken.station_id,
            kiosk_id=taken.kiosk_id,
            session_id=taken.session_id,
            status="waiting",
            enqueued_at=now,
            case_id=taken.case.id if taken.case is not None else None,
            preferred_staff_id=taken.case.staff_id if taken.case is not None else None,
            appointment_id=taken.appointment_id,
            netcheck=taken.netcheck,
        )
        for taken, number in zip(new, numbers, strict=True)
    ]
    session.add_all(tickets)
    await session.flush()
    for ticket, taken in zip(tickets, new, strict=True):
        await record(session, ticket.id, "enqueued", item=taken.item.code)
    return tickets


async def kiosks_with_open_tickets(session: AsyncSession, kiosk_ids: Sequence[int]) -> set[int]:
    """Which of ``kiosk_ids`` have a ticket still queued or in a call (open_ticket_of_kiosk)."""
    open_tickets = await session.scalars(
        select(Ticket.kiosk_id).where(Ticket.kiosk_id.in_(kiosk_ids), IS_HELD_BY_KIOSK)
    )
    return {kiosk_id for kiosk_id in open_tickets.all() if kiosk_id is not None}


async def kiosk_sessions(session: AsyncSession) -> dict[str, int]:
    """Every kiosk session a ticket the kiosk holds names: session id → kiosk id."""
    stmt = select(Ticket.session_id, Ticket.kiosk_id).where(
        IS_HELD_BY_KIOSK,
        Ticket.session_id.is_not(None),
        Ticket.kiosk_id.is_not(None),
    )
    rows = (await session.execute(stmt)).all()
    return {sid: kiosk_id for sid, kiosk_id in rows if sid is not None and kiosk_id is not None}


async def open_ticket_of_kiosk(session: AsyncSession, kiosk_id: int) -> Ticket | None:
    """The kiosk's ticket that is still queued or in a call (at most one)."""
    return await session.scalar(
        select(Ticket)
        .where(Ticket.kiosk_id == kiosk_id, IS_HELD_BY_KIOSK)
        .order_by(Ticket.id.desc())
        .limit(1)
    )


async def hold_queued_ticket(session: AsyncSession, kiosk_id: int, session_id: str) -> int | None:
    """The kiosk's queued ticket follows its session ``session_id`` (a sign-in again, or a
    take-over), its abandon deadline cleared; its id, None when the kiosk has none queued.
    One conditional UPDATE: a ticket that left the queue meanwhile is not touched."""
    stmt = (
        update(Ticket)
        .where(Ticket.kiosk_id == kiosk_id, IS_QUEUED)
        .values(session_id=session_id, abandon_deadline=None)
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalars().first()


async def _update(session: AsyncSession, stmt: Any) -> bool:
    """Run a conditional UPDATE; whether it changed exactly one row (the claim held)."""
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    if not isinstance(result, CursorResult):  # an UPDATE always answers with one
        raise TypeError(f"an UPDATE answered {type(result).__name__}, not a CursorResult")
    return result.rowcount == 1


async def claim_offers(
    session: AsyncSession, offers: Sequence[tuple[int, int, float]]
) -> list[tuple[int, int]]:
    """Offer waiting tickets to available staff members, ``(ticket, staff member, ring
    seconds)`` each; a ring times out after its seconds (its deadline,
    cloudhelp.domain.deadlines). The (ticket, staff member) pairs offered.

    Two UPDATEs and one INSERT whatever the number of offers: a ticket that moved on is left
    out; a staff member who moved on raises Conflict (roll back).
    """
    if not offers:
        return []
    now = utcnow()
    staff_of = {ticket_id: staff_id for ticket_id, staff_id, _ in offers}
    deadline_of = {
        ticket_id: literal(now + timedelta(seconds=ring), UTCDateTime)
        for ticket_id, _, ring in offers
    }
    got = await session.scalars(
        update(Ticket)
        .where(Ticket.id.in_(staff_of), Ticket.status == "waiting")
        .values(
            status="offered",
            offered_to=case(staff_of, value=Ticket.id),
            offered_at=now,
            ring_deadline=case(deadline_of, value=Ticket.id),
            offer_count=Ticket.offer_count + 1,
            version=Ticket.version + 1,
        )
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    offered = set(got.all())
    pairs = [(ticket_id, staff_id) for ticket_id, staff_id, _ in offers if ticket_id in offered]
    if not pairs:
        return []
    ticket_of = {staff_id: ticket_id for ticket_id, staff_id in pairs}
    rung = await session.scalars(
        update(StaffPresence)
        .where(StaffPresence.staff_id.in_(ticket_of), StaffPresence.state == "available")
        .values(state="ringing", since=now, ticket_id=case(ticket_of, value=StaffPresence.staff_id))
        .returning(StaffPresence.staff_id)
        .execution_options(synchronize_session=False)
    )
    if len(set(rung.all())) != len(ticket_of):
        raise Conflict
    for ticket_id, staff_id in pairs:
        await record(session, ticket_id, "offered", staff_id)
    return pairs


async def release_offer(
    session: AsyncSession,
    ticket_id: int,
    staff_id: int,
    reason: str,
    *,
    missed: bool,
    max_missed: int,
) -> str | None:
    """Put an offered ticket back in the queue; returns the staff member's new state.

    A missed offer (no answer) counts towards autopause: after ``max_missed`` in a row the
    staff member is set away. A decline does not count.
    """
    now = utcnow()
    released = await _update(
        session,
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == "offered", Ticket.offered_to == staff_id)
        .values(status="waiting", offered_to=None, ring_deadline=None, version=Ticket.version + 1),
    )
    if not released:
        return None
    presence = await session.get(StaffPresence, staff_id)
    new_state = "available"
    if presence is not None and presence.state == "ringing" and presence.ticket_id == ticket_id:
        presence.missed_offers = presence.missed_offers + 1 if missed else presence.missed_offers
        if missed and presence.missed_offers >= max_missed:
            new_state = "away"
        presence.state, presence.since, presence.ticket_id = new_state, now, None
    elif presence is not None:
        new_state = presence.state
    await record(session, ticket_id, f"offer_{reason}", staff_id)
    if new_state == "away" and missed:
        await record(session, ticket_id, "staff_autopaused", staff_id)
    return new_state


async def connect(
    session: AsyncSession, ticket_id: int, staff_id: int, *, picked: bool
) -> Call | None:
    """Answer an offer (or pick a waiting ticket by hand): the ticket is connected, a call opens."""
    now = utcnow()
    if picked:
        ticket_ok = await _update(
            session,
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.status == "waiting")
            .values(
                status="connected",
                staff_id=staff_id,
                connected_at=now,
                offered_to=None,
                version=Ticket.version + 1,
            ),
        )
        staff_states: tuple[str, ...] = ("available", "away")
    else:
        ticket_ok = await _update(
            session,
            update(Ticket)
            .where(
                Ticket.id == ticket_id, Ticket.status == "offered", Ticket.offered_to == staff_id
            )
            .values(
                status="connected",
                staff_id=staff_id,
                connected_at=now,
                ring_deadline=None,
                version=Ticket.version + 1,
            ),
        )
        staff_states = ("ringing",)
    if not ticket_ok:
        return None
    staff_ok = await _update(
        session,
        update(StaffPresence)
        .where(StaffPresence.staff_id == staff_id, StaffPresence.state.in_(staff_states))
        .values(state="in_call", since=now, ticket_id=ticket_id, missed_offers=0),
    )
    if not staff_ok:
        raise Conflict
    ticket = must_exist(await session.get(Ticket, ticket_id), f"ticket {ticket_id}")
    call = Call(ticket_id=ticket_id, staff_id=staff_id, kiosk_id=ticket.kiosk_id, started_at=now)
    session.add(call)
    await session.flush()
    await record(session, ticket_id, "picked" if picked else "connected", staff_id, call=call.id)
    return call


async def open_call_id(session: AsyncSession, ticket_id: int) -> int | None:
    return await session.scalar(
        select(Call.id).where(Call.ticket_id == ticket_id, Call.ended_at.is_(None))
    )


async def end_call(
    session: AsyncSession,
    ticket_id: int,
    reason: str,
    *,
    transfer_to: int | None = None,
    log: dict[str, Any] | None = None,
) -> tuple[Ticket, Call] | None:
    """End the ticket's call: the ticket goes to wrap-up (or back to a queue on transfer)."""
    now = utcnow()
    ticket = await session.get(Ticket, ticket_id, with_for_update={"of": Ticket})
    if ticket is None or ticket.status != "connected" or ticket.staff_id is None:
        return None
    call = await session.scalar(
        select(Call).where(Call.ticket_id == ticket_id, Call.ended_at.is_(None))
    )
    if call is None:
        return None
    call.ended_at, call.end_reason = now, reason
    staff_id = ticket.staff_id
    wrapup_deadline = now + timedelta(seconds=ticket.department.wrapup_seconds)
    ticket.version += 1
    if transfer_to is None:
        ticket.status, ticket.ended_at, ticket.end_reason = "wrapup", now, reason
        await record(
            session, ticket_id, "ended", staff_id, reason=reason, call=call.id, **(log or {})
        )
    else:
        old = ticket.department_id
        # Back in a queue with its original enqueue time; the next answer sets connected_at.
        ticket.status, ticket.department_id = "waiting", transfer_to
        ticket.staff_id, ticket.connected_at, ticket.offered_to = None, None, None
        await record(
            session,
            ticket_id,
            "transferred",
            staff_id,
            call=call.id,
            **{"from": old, "to": transfer_to},
            **(log or {}),
        )
    presence = await session.get(StaffPresence, staff_id)
    if presence is not None:
        presence.state, presence.since = "wrapup", now
        presence.ticket_id = ticket_id if transfer_to is None else None
        presence.wrapup_deadline = wrapup_deadline
    return ticket, call


async def finish_wrapup(
    session: AsyncSession, staff_id: int, outcome: str | None, note: str, reason: str
) -> int | None:
    """Close wrap-up; the ticket (if any) is completed and the staff member is available.
    The presence row is locked first: of two closes at once (done and a time-out), one does
    it and the other finds the staff member out of wrap-up."""
    now = utcnow()
    presence = await session.get(StaffPresence, staff_id, with_for_update={"of": StaffPresence})
    if presence is None or presence.state != "wrapup":
        return None
    ticket_id = presence.ticket_id
    if ticket_id is not None:
        if outcome is None:  # timed out or console gone: what the session implies
            ticket = await session.get(Ticket, ticket_id)
            if ticket is not None:
                outcome = await outcomes.proposed_outcome(session, ticket, ticket.end_reason)
        await _update(
            session,
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.status == "wrapup")
            .values(
                status="completed",
                wrapup_done_at=now,
                closed_at=now,
                outcome=outcome,
                note=note,
                version=Ticket.version + 1,
            ),
        )
        await record(session, ticket_id, "wrapup_done", staff_id, reason=reason)
    presence.state, presence.since, presence.idle_since, presence.ticket_id = (
        "available", now, now, None
    )  # fmt: skip
    presence.wrapup_deadline = None
    return ticket_id or 0


async def close_queued(
    session: AsyncSession, ticket_id: int, status: str, reason: str
) -> Ticket | None:
    """Cancel or abandon a queued ticket; an offer ringing for it stops."""
    now = utcnow()
    ticket = await session.get(Ticket, ticket_id, with_for_update={"of": Ticket})
    if ticket is None or ticket.status not in QUEUED:
        return None
    offered_to = ticket.offered_to if ticket.status == "offered" else None
    ticket.status, ticket.closed_at, ticket.end_reason = status, now, reason
    ticket.ring_deadline = ticket.abandon_deadline = None
    ticket.version += 1
    ticket.offered_to = offered_to  # kept so the caller can tell the ringing staff member
    if offered_to is not None:
        await _update(
            session,
            update(StaffPresence)
            .where(
                StaffPresence.staff_id == offered_to,
                StaffPresence.state == "ringing",
                StaffPresence.ticket_id == ticket_id,
            )
            .values(state="available", since=now, ticket_id=None),
        )
    await record(session, ticket_id, status, None, reason=reason)
    return ticket


async def close_after_restart(session: AsyncSession, ticket: Ticket) -> None:
    """A call or wrap-up cut short by a server restart is closed with that reason."""
    now = utcnow()
    for call in (
        await session.scalars(
            select(Call).where(Call.ticket_id == ticket.id, Call.ended_at.is_(None))
        )
    ).all():
        call.ended_at, call.end_reason = now, "server_restart"
    ticket.ended_at = ticket.ended_at or now
    ticket.end_reason = ticket.end_reason or "server_restart"
    ticket.status, ticket.closed_at = "completed", now
    ticket.version += 1
    await record(session, ticket.id, "closed", None, reason="server_restart")


# ---------------------------------------------------------------------------- reads


async def skills_cover(session: AsyncSession, staff_id: int, ticket: Ticket) -> bool:
    """Whether the staff member handles the ticket's current queue (department) or its item."""
    found = await session.scalar(
        select(func.count())
        .select_from(StaffSkill)
        .where(
            StaffSkill.staff_id == staff_id,
            (StaffSkill.item_id == ticket.item_id)
            | (StaffSkill.department_id == ticket.department_id),
        )
    )
    return bool(found)


def skill_sets(
    staff_ids: list[int], skills: Sequence[StaffSkill]
) -> dict[int, tuple[set[int], set[int]]]:
    """For each staff member: the departments and the items they handle."""
    sets: dict[int, tuple[set[int], set[int]]] = {
        staff_id: (set(), set()) for staff_id in staff_ids
    }
    for skill in skills:
        departments, items = sets[skill.staff_id]
        if skill.department_id is not None:
            departments.add(skill.department_id)
        if skill.item_id is not None:
            items.add(skill.item_id)
    return sets


def service_order(tickets: Sequence[Ticket]) -> list[Ticket]:
    """Tickets (oldest first) in the order of service: a checked-in appointment's ticket goes
    ahead of the walk-ins of the same item. The item's tickets keep their places in the line;
    its appointment tickets (oldest first) take the first of those places, its walk-ins the
    rest, so no ticket of another item waits longer for it (docs/appointments.md)."""
    by_item: dict[int, list[Ticket]] = {}
    for ticket in tickets:
        by_item.setdefault(ticket.item_id, []).append(ticket)
    lines = {
        item: iter(sorted(line, key=lambda t: t.appointment_id is None))  # stable: oldest first
        for item, line in by_item.items()
    }
    return [next(lines[ticket.item_id]) for ticket in tickets]


async def queued_tickets(session: AsyncSession) -> list[Ticket]:
    """Every waiting or ringing ticket in the order of service (service_order)."""
    stmt = select(Ticket).where(IS_QUEUED).order_by(Ticket.enqueued_at, Ticket.id)
    return service_order(list((await session.scalars(stmt)).all()))


async def tickets_by_id(session: AsyncSession, ticket_ids: Sequence[int]) -> list[Ticket]:
    """The tickets of ``ticket_ids`` (those that exist), in no particular order."""
    return list((await session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))).all())


async def waiting_tickets(session: AsyncSession, limit: int = 500) -> list[Ticket]:
    """The tickets waiting for an offer (not ringing) in the order of service (service_order):
    the order of offers."""
    stmt = (
        select(Ticket)
        .where(Ticket.status == "waiting")
        .order_by(Ticket.enqueued_at, Ticket.id)
        .limit(limit)
    )
    return service_order(list((await session.scalars(stmt)).all()))


async def offer_counts(
    session: AsyncSession, ticket_ids: list[int]
) -> Counter[tuple[int, int | None]]:
    """How often each (ticket, staff member) pair was offered, for ``ticket_ids``."""
    events = await session.scalars(
        select(TicketEvent).where(
            TicketEvent.kind == "offered", TicketEvent.ticket_id.in_(ticket_ids)
        )
    )
    return Counter((e.ticket_id, e.staff_id) for e in events.all())


async def ticket_version(session: AsyncSession, ticket_id: int) -> int | None:
    """The ticket's version (it goes up with every change a client is told of)."""
    return await session.scalar(select(Ticket.version).where(Ticket.id == ticket_id))


async def recover_after_restart(
    session: AsyncSession, alive: Callable[[str], Awaitable[bool]], abandon_at: datetime
) -> dict[int, datetime]:
    """After a (re)start, with staff presence already reset: open tickets whose staff member's
    console is gone are put back (a ring) or closed (a call or wrap-up); a ticket whose kiosk
    session no server process holds (``alive`` asks them) loses it. Waiting tickets keep their
    place. The queued tickets that now have no kiosk session are abandoned at ``abandon_at``
    unless the kiosk comes back (a later deadline already set is kept); returns each with its
    abandon deadline."""
    open_tickets = select(Ticket).where(IS_OPEN)
    for ticket in (await session.scalars(open_tickets)).all():
        staff_session = await session.scalar(
            select(StaffPresence.session_id).where(
                StaffPresence.staff_id == (ticket.offered_to or ticket.staff_id or 0)
            )
        )
        if ticket.status == "offered" and staff_session is None:
            ticket.status, ticket.offered_to, ticket.ring_deadline = "waiting", None, None
            ticket.version += 1
            await record(session, ticket.id, "offer_reset", reason="server_restart")
        elif ticket.status in ("connected", "wrapup") and staff_session is None:
            await close_after_restart(session, ticket)
        if ticket.session_id is not None and not await alive(ticket.session_id):
            ticket.session_id = None
    unattended = select(Ticket).where(IS_QUEUED, Ticket.session_id.is_(None))
    deadlines: dict[int, datetime] = {}
    for ticket in (await session.scalars(unattended)).all():
        if ticket.abandon_deadline is None or ticket.abandon_deadline < abandon_at:
            ticket.abandon_deadline = abandon_at
        deadlines[ticket.id] = ticket.abandon_deadline
    return deadlines
