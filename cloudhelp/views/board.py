"""The supervisor board (监控大屏): one snapshot of the whole hall, pushed live to watchers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import iso, local_date
from cloudhelp.domain import campaign_progress, campaigns, metrics, queue, timeouts
from cloudhelp.domain.logistics import figures as logistics_figures
from cloudhelp.store.db import Database
from cloudhelp.store.models import (
    SUPERVISOR_ROLES,
    Department,
    ServiceItem,
    Staff,
    StaffPresence,
    StaffSkill,
    Ticket,
)
from cloudhelp.views.warning_labels import warning_json

# A supervisor watching the board is not a seat; one who answers calls from the console is,
# while ringing, in a call or wrapping up.
SERVING_STATES = ("ringing", "in_call", "wrapup")

TODAY_MAX_AGE = timedelta(seconds=10)  # today's figures may lag this much behind
TODAY_FIGURES = (
    "tickets", "answered", "abandoned", "short_abandons", "wait_mean_s", "wait_p90_s",
    "service_level",
    "ratings", "good_rate", "trips_saved", "cases_opened", "cases_concluded",
)  # fmt: skip


@dataclass(frozen=True)
class _Hall:
    """What the board reads of the hall at one moment."""

    departments: Sequence[Department]
    open_tickets: Sequence[Ticket]
    staff: list[tuple[Staff, StaffPresence]]  # the seats: on duty, not watching supervisors
    covers: dict[int, set[int]]  # staff id → the departments whose queues they serve


async def snapshot(database: Database, now: datetime) -> dict[str, Any]:
    """Queues per department, staff states, calls in progress, today's figures, warnings.

    Reads only: today's figures come from the rollup rows as they are (the call centre's
    rollups loop rebuilds them every TODAY_MAX_AGE while a board is watched).
    """
    today = local_date(now)
    async with database.read() as s:
        hall = await _read_hall(s)
        figures = await metrics.total(s, today, today)
        warnings = await timeouts.active(s)
        pickup_days = (await timeouts.Thresholds.load(s)).value("pickup_overdue", None, None)
        logistics = await logistics_figures.summary(s, today, today, now, pickup_days)
        running = await campaign_figures(s, now)
    return {
        "type": "board",
        "at": now.isoformat(),
        "departments": [_department_json(hall, d) for d in hall.departments],
        "staff": _staff_json(hall),
        "calls": _calls_json(hall),
        "today": {name: figures[name] for name in TODAY_FIGURES},
        # Papers on the road and at stations; trips saved here count real pickups at stations.
        "logistics": logistics,
        "warnings": [warning_json(w) for w in timeouts.by_severity(warnings)],
        "campaigns": running,
    }


def _day(state: campaign_progress.EntryState) -> date | None:
    booked = state.checked or state.current
    return booked.day if booked is not None else None


async def campaign_figures(s: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    """The campaigns under way today: served of all, and today's booked and checked in."""
    today = local_date(now)
    found = []
    for campaign in await campaigns.running(s, today):
        states = await campaign_progress.entry_states(s, campaign, now)
        counts = campaign_progress.counts(states)
        todays = [st for st in states if _day(st) == today]
        found.append({
            "id": campaign.id, "name": campaign.name, "ends_on": campaign.ends_on.isoformat(),
            "entries": counts["entries"], "served": counts["served"],
            "no_show": counts["no_show"], "today_booked": len(todays),
            "today_checked_in": sum(1 for st in todays if st.checked is not None),
        })  # fmt: skip
    return found


async def _read_hall(s: AsyncSession) -> _Hall:
    departments = (await s.scalars(select(Department).order_by(Department.code))).all()
    open_tickets = (
        await s.scalars(
            select(Ticket)
            .where(Ticket.status.in_(queue.OPEN_STATES))
            .order_by(Ticket.enqueued_at, Ticket.id)
        )
    ).all()
    rows = (
        await s.execute(
            select(Staff, StaffPresence)
            .join(StaffPresence, StaffPresence.staff_id == Staff.id)
            .where(StaffPresence.state != "offline")
            .order_by(Staff.username)
        )
    ).all()
    staff_rows = [
        (staff, presence)
        for staff, presence in rows
        if staff.role not in SUPERVISOR_ROLES or presence.state in SERVING_STATES
    ]
    on_duty_ids = [staff.id for staff, _ in staff_rows]
    skills = (await s.scalars(select(StaffSkill).where(StaffSkill.staff_id.in_(on_duty_ids)))).all()
    item_department = dict(
        (await s.execute(select(ServiceItem.id, ServiceItem.department_id))).all()
    )
    covers = {
        staff_id: served | {item_department[i] for i in items}
        for staff_id, (served, items) in queue.skill_sets(on_duty_ids, skills).items()
    }
    return _Hall(departments, open_tickets, staff_rows, covers)


def _department_json(hall: _Hall, department: Department) -> dict[str, Any]:
    """A department's queue: how many wait, since when, and its seats by state."""
    queued = [
        t
        for t in hall.open_tickets
        if t.department_id == department.id and t.status in queue.QUEUED
    ]
    on_duty: dict[str, int] = {}
    shared = 0  # of them, seats that also serve another department (counted there too)
    for staff, presence in hall.staff:
        if department.id in hall.covers[staff.id]:
            on_duty[presence.state] = on_duty.get(presence.state, 0) + 1
            shared += len(hall.covers[staff.id]) > 1
    return {
        "code": department.code,
        "name": department.name,
        "waiting": len(queued),
        "oldest_enqueued_at": iso(queued[0].enqueued_at) if queued else None,
        "staff": on_duty,
        "shared": shared,
    }


def _staff_json(hall: _Hall) -> list[dict[str, Any]]:
    numbers = {t.id: t.number for t in hall.open_tickets}
    return [
        {
            "username": staff.username,
            "name": staff.display_name,
            "state": presence.state,
            "since": iso(presence.since),
            "ticket": numbers.get(presence.ticket_id) if presence.ticket_id else None,
        }
        for staff, presence in hall.staff
    ]


def _calls_json(hall: _Hall) -> list[dict[str, Any]]:
    names = {staff.id: staff.display_name for staff, _ in hall.staff}
    return [
        {
            "ticket": t.number,
            "item": t.item.name,
            "station": t.station.name,
            "staff": names.get(t.staff_id or 0, ""),
            "connected_at": iso(t.connected_at),
        }
        for t in hall.open_tickets
        if t.status == "connected"
    ]
