"""The supervisor board (监控大屏): one snapshot of the whole hall, pushed live to watchers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from cloudhelp.core.clock import iso, local_date
from cloudhelp.domain import metrics, queue, timeouts
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
    "tickets", "answered", "abandoned", "wait_mean_s", "wait_p90_s", "service_level",
    "ratings", "good_rate", "trips_saved", "cases_opened", "cases_concluded",
)  # fmt: skip


async def snapshot(database: Database, now: datetime) -> dict[str, Any]:
    """Queues per department, staff states, calls in progress, today's figures, warnings.

    Reads only: today's figures come from the rollup rows as they are (the call centre's
    rollups loop rebuilds them every TODAY_MAX_AGE while a board is watched).
    """
    today = local_date(now)
    async with database.read() as s:
        departments = (await s.scalars(select(Department).order_by(Department.code))).all()
        open_tickets = (
            await s.scalars(
                select(Ticket)
                .where(Ticket.status.in_(queue.OPEN_STATES))
                .order_by(Ticket.enqueued_at, Ticket.id)
            )
        ).all()
        staff_rows = (
            await s.execute(
                select(Staff, StaffPresence)
                .join(StaffPresence, StaffPresence.staff_id == Staff.id)
                .where(StaffPresence.state != "offline")
                .order_by(Staff.username)
            )
        ).all()
        staff_rows = [
            (staff, presence)
            for staff, presence in staff_rows
            if staff.role not in SUPERVISOR_ROLES or presence.state in SERVING_STATES
        ]
        on_duty_ids = [staff.id for staff, _ in staff_rows]
        skills = (
            await s.scalars(select(StaffSkill).where(StaffSkill.staff_id.in_(on_duty_ids)))
        ).all()
        item_department = dict(
            (await s.execute(select(ServiceItem.id, ServiceItem.department_id))).all()
        )
        figures = await metrics.total(s, today, today)
        warnings = await timeouts.active(s)
    handles = queue.skill_sets(on_duty_ids, skills)
    covers = {
        staff_id: departments | {item_department[i] for i in items}
        for staff_id, (departments, items) in handles.items()
    }
    numbers = {t.id: t.number for t in open_tickets}
    board_departments = []
    for department in departments:
        queued = [
            t for t in open_tickets if t.department_id == department.id and t.status in queue.QUEUED
        ]
        on_duty: dict[str, int] = {}
        for staff, presence in staff_rows:
            if department.id in covers[staff.id]:
                on_duty[presence.state] = on_duty.get(presence.state, 0) + 1
        board_departments.append(
            {
                "code": department.code,
                "name": department.name,
                "waiting": len(queued),
                "oldest_enqueued_at": iso(queued[0].enqueued_at) if queued else None,
                "staff": on_duty,
            }
        )
    names = {staff.id: staff.display_name for staff, _ in staff_rows}
    return {
        "type": "board",
        "at": now.isoformat(),
        "departments": board_departments,
        "staff": [
            {
                "username": staff.username,
                "name": staff.display_name,
                "state": presence.state,
                "since": iso(presence.since),
                "ticket": numbers.get(presence.ticket_id) if presence.ticket_id else None,
            }
            for staff, presence in staff_rows
        ],
        "calls": [
            {
                "ticket": t.number,
                "item": t.item.name,
                "station": t.station.name,
                "staff": names.get(t.staff_id or 0, ""),
                "connected_at": iso(t.connected_at),
            }
            for t in open_tickets
            if t.status == "connected"
        ],
        "today": {name: figures[name] for name in TODAY_FIGURES},
        "warnings": [
            warning_json(w) for w in sorted(warnings, key=lambda w: timeouts.SEVERITY.index(w.kind))
        ],
    }
