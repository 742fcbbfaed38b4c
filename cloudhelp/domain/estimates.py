"""The wait a queued resident is shown: position in the department's queue and estimated wait.

W = ceil(max(0, P − A) / N) × H, where P is the position, A the idle staff who handle the
ticket, N those on duty and H the mean handling time of recent tickets (docs/queue.md).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.models import StaffPresence, StaffSkill, Ticket

DEFAULT_HANDLING_SECONDS = 300.0
HANDLING_SAMPLE = 20
MIN_SAMPLES = 3
ON_DUTY = ("available", "ringing", "in_call", "wrapup")


@dataclass(frozen=True)
class Estimate:
    """A queued ticket's place: position in its department's queue, estimated wait (None:
    nobody who handles it is on duty), staff on duty, and the handling time used."""

    position: int
    wait_seconds: int | None
    staff_on_duty: int
    handling_seconds: float


async def average_handling_seconds(session: AsyncSession, ticket: Ticket) -> float:
    """Mean of (ended − connected) + wrap-up over the last completed tickets of the item,
    else of the department, else a default."""
    return await handling_seconds(session, ticket.item_id, ticket.department_id)


async def handling_seconds(session: AsyncSession, item_id: int, department_id: int) -> float:
    """Mean handling time (call and wrap-up) of the item's last completed tickets, else of the
    department's, else DEFAULT_HANDLING_SECONDS (also what appointment slots are cut from)."""
    for column, value in (
        (Ticket.item_id, item_id),
        (Ticket.department_id, department_id),
    ):
        rows = (
            await session.execute(
                select(Ticket.connected_at, Ticket.ended_at, Ticket.wrapup_done_at)
                .where(
                    column == value, Ticket.status == "completed", Ticket.connected_at.is_not(None)
                )
                .order_by(Ticket.closed_at.desc())
                .limit(HANDLING_SAMPLE)
            )
        ).all()
        samples = [
            ((wrapped or ended) - connected).total_seconds()
            for connected, ended, wrapped in rows
            if connected and ended
        ]
        if len(samples) >= MIN_SAMPLES:
            return sum(samples) / len(samples)
    return DEFAULT_HANDLING_SECONDS


def estimate_wait(position: int, idle: int, on_duty: int, handling: float) -> int | None:
    """W = ceil(max(0, P - A) / N) * H, unknown when nobody who handles the ticket is on duty."""
    if on_duty == 0:
        return None
    return int(math.ceil(max(0, position - idle) / on_duty) * handling)


async def queue_estimates(session: AsyncSession, queued: list[Ticket]) -> dict[int, Estimate]:
    """Position and estimated wait of each queued ticket, with a few queries for all of them.

    ``queued`` must hold every queued ticket of the departments concerned, in the order of
    service (queue.queued_tickets: oldest first, appointments ahead within their item).
    """
    rows = (
        await session.execute(
            select(
                StaffPresence.staff_id,
                StaffPresence.state,
                StaffSkill.department_id,
                StaffSkill.item_id,
            ).join(StaffSkill, StaffSkill.staff_id == StaffPresence.staff_id)
        )
    ).all()
    states: dict[int, str] = {}
    departments: dict[int, set[int]] = {}
    items: dict[int, set[int]] = {}
    for staff_id, state, department_id, item_id in rows:
        states[staff_id] = state
        if department_id is not None:
            departments.setdefault(department_id, set()).add(staff_id)
        if item_id is not None:
            items.setdefault(item_id, set()).add(staff_id)
    # Per (item, department): staff on duty, staff idle, average handling seconds; counted
    # once per pair, not per ticket (a burst queues hundreds of tickets for one item).
    per_item: dict[tuple[int, int], tuple[int, int, float]] = {}
    seen_in_department: Counter[int] = Counter()
    result: dict[int, Estimate] = {}
    for ticket in queued:
        seen_in_department[ticket.department_id] += 1
        position = seen_in_department[ticket.department_id]
        key = (ticket.item_id, ticket.department_id)
        if key not in per_item:
            staff = departments.get(ticket.department_id, set()) | items.get(ticket.item_id, set())
            per_item[key] = (
                sum(1 for s in staff if states[s] in ON_DUTY),
                sum(1 for s in staff if states[s] == "available"),
                await average_handling_seconds(session, ticket),
            )
        on_duty, idle, handling = per_item[key]
        wait = estimate_wait(position, idle, on_duty, handling)
        result[ticket.id] = Estimate(position, wait, on_duty, handling)
    return result
