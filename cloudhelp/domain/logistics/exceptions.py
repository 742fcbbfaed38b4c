"""Exceptions (异常): lost, damaged, wrong station, not collected within the days set. Each has a
reason and a responsible person; all but lost send the item back to the hall (to_return, then
a run up), and a time-out warning stays until it is back (cloudhelp.domain.timeouts)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain.logistics import states
from cloudhelp.domain.logistics.items import LogisticsError, record
from cloudhelp.domain.logistics.routes import Network
from cloudhelp.store.models import ROLES, Staff, TrackedItem

# From which states each exception may be reported.
FROM_STATES = {
    "lost": frozenset({"registered", "in_transit", "received", "ready", "to_return"}),
    "damaged": frozenset({"received", "ready"}),
    "wrong_station": frozenset({"in_transit", "received"}),
    "not_collected": frozenset({"ready"}),
}


def _may_report(staff: Staff, item: TrackedItem, hall_id: int) -> bool:
    """At the item's station; an item on the road by either end of its run (or the hall's
    desk, which follows every run)."""
    if item.at_station_id == staff.station_id:
        return True
    if item.status != "in_transit":
        return False
    if staff.role in ROLES and staff.station_id == hall_id:
        return True
    return False


async def report(
    session: AsyncSession,
    staff: Staff,
    item: TrackedItem,
    kind: str,
    *,
    reason: str,
    responsible: str,
    now: datetime,
    pickup_days: float,
    run_ends: tuple[int, int] | None = None,
    found_here: bool = False,
) -> None:
    """Record an exception on ``item``; ``run_ends`` are the stations of the run carrying it
    (their people may report it), ``found_here`` says the item was scanned as extra in a run
    received at the reporter's station (``runs.seen_as_extra``: only then may an item on the
    road be reported there as wrong station), ``pickup_days`` the days after which an item not
    collected
    may be sent back."""
    if kind not in states.EXCEPTIONS:
        raise LogisticsError("bad_item_kind", f"An exception is {', '.join(states.EXCEPTIONS)}.")
    reason, responsible = reason.strip(), responsible.strip()
    if not reason or not responsible:
        raise LogisticsError(
            "reason_required", "Say what happened (reason) and who is responsible (responsible)."
        )
    network = await Network.load(session)
    hall = network.hall().id
    here = staff.station_id
    found_here = found_here and kind == "wrong_station" and item.status == "in_transit"
    by_run = run_ends is not None and here in run_ends
    if not (found_here or by_run or _may_report(staff, item, hall)):
        raise LogisticsError(
            "not_at_your_station", f"Item {item.code} is not at your station; nothing was changed."
        )
    if item.status not in FROM_STATES[kind]:
        raise LogisticsError(
            "illegal_move",
            f"Item {item.code} is {states.STATES[item.status]}: no {kind} can be reported now.",
        )
    if kind == "not_collected":
        waited = now - (item.ready_at or now)
        if waited < timedelta(days=pickup_days):
            raise LogisticsError(
                "not_overdue",
                f"Item {item.code} has waited {waited.days} days; it goes back after "
                f"{pickup_days:g} days.",
            )
    if kind == "lost":
        to_state = "lost"
        item.finished_at = now
    elif here == hall:
        to_state = "returned"  # it is back at the hall already
        item.at_station_id, item.finished_at = hall, now
    else:
        to_state = "to_return"
        item.at_station_id = here
    await record(
        session,
        item,
        "exception",
        to_state,
        staff,
        reason=reason,
        at=now,
        exception=kind,
        responsible=responsible,
    )
    item.exception, item.exception_reason, item.responsible = kind, reason, responsible
    item.exception_at = now
    if kind != "lost":
        item.destination_id = hall
