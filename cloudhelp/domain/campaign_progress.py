"""A campaign's progress: what happened to each roster entry, the counts, the burn-down over
the campaign's days and who has not come yet (docs/appointments.md, "Progress").

An entry is *booked* when it holds an appointment (or checked one in), *checked in* when one of
its appointments was, *served* when the ticket of that check-in was answered in a call,
*corrected* when the case opened in that call was issued a correction notice, *concluded* when
the case is 已办结 or 已送达, *picked up* per ``certificates_picked_up``, a *no-show* when its
current appointment's check-in window closed unused, *rescheduled* when it was ever rebooked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import LOCAL_TZ, iso, local_date
from cloudhelp.domain import appointments, campaigns, cases
from cloudhelp.store.models import (
    Appointment,
    Campaign,
    CampaignEntry,
    Case,
    CorrectionNotice,
    Ticket,
)

COUNTS = ("entries", "booked", "checked_in", "served", "corrected", "concluded", "picked_up",
          "no_show", "rescheduled")  # fmt: skip


async def certificates_picked_up(session: AsyncSession, case_ids: Sequence[int]) -> set[int]:
    """The cases whose certificate reached the resident: 已送达 (``delivered``). A certificate
    picked up at a station (domain/logistics/handover.py) moves its case there in the same
    transaction; one handed over at the hall is recorded there by staff."""
    if not case_ids:
        return set()
    rows = await session.scalars(
        select(Case.id).where(Case.id.in_(list(case_ids)), Case.status == "delivered")
    )
    return set(rows.all())


@dataclass
class EntryState:
    entry: CampaignEntry
    current: Appointment | None = None
    checked: Appointment | None = None
    ticket: Ticket | None = None
    case: Case | None = None
    rebooked: bool = False
    notice: bool = False
    picked_up: bool = False
    flags: dict[str, bool] = field(default_factory=dict)


async def entry_states(
    session: AsyncSession, campaign: Campaign, now: datetime
) -> list[EntryState]:
    entries = await campaigns.entries_of(session, campaign.id)
    states = {e.id: EntryState(e) for e in entries}
    rows = (
        await session.scalars(
            select(Appointment)
            .where(Appointment.campaign_entry_id.in_(list(states)))
            .order_by(Appointment.id)
        )
    ).all()
    for appointment in rows:
        state = states[appointment.campaign_entry_id or 0]
        if appointment.status == "rebooked":
            state.rebooked = True
        if appointment.status == "checked_in":
            state.checked = appointment
        if appointment.status not in ("cancelled", "rebooked"):
            state.current = appointment
    checked_ids = [s.checked.id for s in states.values() if s.checked is not None]
    tickets = {
        t.appointment_id: t
        for t in (
            await session.scalars(select(Ticket).where(Ticket.appointment_id.in_(checked_ids)))
        ).all()
    }
    case_ids = [t.case_id for t in tickets.values() if t.case_id is not None]
    found_cases = {
        c.id: c for c in (await session.scalars(select(Case).where(Case.id.in_(case_ids)))).all()
    }
    with_notice = set(
        (
            await session.scalars(
                select(CorrectionNotice.case_id).where(CorrectionNotice.case_id.in_(case_ids))
            )
        ).all()
    )
    picked = await certificates_picked_up(session, case_ids)
    for state in states.values():
        if state.checked is not None:
            state.ticket = tickets.get(state.checked.id)
        if state.ticket is not None and state.ticket.case_id is not None:
            state.case = found_cases.get(state.ticket.case_id)
        case = state.case
        state.flags = {
            "booked": state.current is not None,
            "checked_in": state.checked is not None,
            "served": state.ticket is not None and state.ticket.connected_at is not None,
            "corrected": case is not None and case.id in with_notice,
            "concluded": case is not None and case.status in ("concluded", "delivered"),
            "picked_up": case is not None and case.id in picked,
            "no_show": state.current is not None
            and appointments.status_at(state.current, now) == "no_show",
            "rescheduled": state.rebooked,
        }
    return list(states.values())


def counts(states: Sequence[EntryState]) -> dict[str, int]:
    result = {name: 0 for name in COUNTS}
    result["entries"] = len(states)
    for state in states:
        for name, value in state.flags.items():
            result[name] += int(value)
    return result


def burn_down(
    campaign: Campaign, states: Sequence[EntryState], now: datetime
) -> list[dict[str, Any]]:
    """Per working day of the campaign: entries still to serve as planned (by their current
    appointment's day) and as it went (served by the day's end; null for days to come). An
    entry served after the campaign's last day adds that day to the list."""
    total, today = len(states), local_date(now)
    # Served on the day of the appointment checked in (check-in is only open around its slot).
    served_on: list[date] = [
        s.checked.day for s in states if s.checked is not None and s.flags["served"]
    ]
    held = [s.checked or s.current for s in states]
    planned_on = [a.day for a in held if a is not None]
    days = campaigns.working_days(campaign.starts_on, max(campaign.ends_on, today))
    days = [d for d in days if d <= campaign.ends_on or any(p == d for p in served_on)]
    return [
        {
            "day": day.isoformat(),
            "planned_remaining": total - sum(1 for d in planned_on if d <= day),
            "remaining": total - sum(1 for d in served_on if d <= day) if day <= today else None,
        }
        for day in days
    ]


def not_come(states: Sequence[EntryState], now: datetime) -> list[dict[str, Any]]:
    """Who has not checked in yet, phone masked, with their current appointment: no-shows
    first (they are to rebook), then by appointment time."""
    found = []

    def order(state: EntryState) -> tuple[bool, datetime, int]:
        current = state.current
        missed = current is not None and appointments.status_at(current, now) == "no_show"
        return (not missed, current.starts_at if current else now, state.entry.row)

    for state in sorted(states, key=order):
        if state.checked is not None:
            continue
        entry, current = state.entry, state.current
        found.append({
            "entry": entry.id, "row": entry.row, "name": entry.name,
            "phone": cases.mask_phone(entry.phone), "boat_number": entry.boat_number,
            "licence_number": entry.licence_number, "rescheduled": state.rebooked,
            "appointment": None if current is None else {
                "code": appointments.show_code(current.code), "day": iso(current.day),
                "time": f"{current.starts_at.astimezone(LOCAL_TZ):%H:%M}",
                "station": current.station.name,
                "status": appointments.status_at(current, now),
            },
        })  # fmt: skip
    return found


def served(states: Sequence[EntryState]) -> list[dict[str, Any]]:
    """Who has checked in: the day, the ticket of the session and its case (latest first)."""
    found = []
    for state in states:
        if state.checked is None:
            continue
        ticket, case = state.ticket, state.case
        found.append({
            "entry": state.entry.id, "row": state.entry.row, "name": state.entry.name,
            "boat_number": state.entry.boat_number, "day": iso(state.checked.day),
            "ticket": ticket.number if ticket else None,
            "case": None if case is None else {
                "number": case.number, "status": case.status,
                "label": cases.STATES[case.status],
            },
            "picked_up": state.flags["picked_up"],
        })  # fmt: skip
    found.sort(key=lambda f: (f["day"] or "", f["row"]), reverse=True)
    return found


async def progress(session: AsyncSession, campaign: Campaign, now: datetime) -> dict[str, Any]:
    states = await entry_states(session, campaign, now)
    return {
        "counts": counts(states),
        "burn_down": burn_down(campaign, states, now),
        "not_come": not_come(states, now),
        "served": served(states),
    }
