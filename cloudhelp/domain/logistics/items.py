"""Tracked items: registering one for a case, finding one by its code at a station, and
recording every change as an event and an audit row (nothing changes state without both)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import iso
from cloudhelp.core.errors import CodedError
from cloudhelp.domain import audit
from cloudhelp.domain.logistics import codes, states
from cloudhelp.domain.logistics.pickup import pickup_station
from cloudhelp.domain.logistics.routes import Network
from cloudhelp.store.models import (
    ATTENDANT_ROLE,
    Case,
    LogisticsRun,
    Staff,
    Station,
    TrackedItem,
    TrackedItemEvent,
    utcnow,
)

# Cases no item is registered for any more.
CLOSED_CASES = ("not_accepted",)


class LogisticsError(CodedError):
    """A refused logistics operation (unknown code, wrong station, a move not allowed …)."""


def clean_code(text: str) -> str:
    """A typed or scanned code as stored; ``bad_code`` when it is no tracking code."""
    code = codes.typed(text)
    if not codes.valid(code):
        raise LogisticsError(
            "bad_code", f"{text!r} is not a tracking code (12 digits, the last a check digit)."
        )
    return code


async def by_code(session: AsyncSession, text: str) -> TrackedItem:
    code = clean_code(text)
    item = await session.scalar(select(TrackedItem).where(TrackedItem.code == code))
    if item is None:
        raise LogisticsError("unknown_code", f"No item has the tracking code {code}.")
    return item


def require_here(item: TrackedItem, staff: Staff) -> None:
    """The item must lie at the acting person's station (their own, never another's)."""
    if item.at_station_id != staff.station_id:
        where = item.at_station.name if item.at_station is not None else "在途"
        raise LogisticsError(
            "not_at_your_station",
            f"Item {item.code} is not at your station (it is at: {where}); nothing was changed.",
        )


async def record(
    session: AsyncSession,
    item: TrackedItem,
    kind: str,
    to_state: str,
    staff: Staff,
    *,
    run: LogisticsRun | None = None,
    reason: str = "",
    at: datetime | None = None,
    **detail: Any,
) -> TrackedItemEvent:
    """Move ``item`` to ``to_state`` (if allowed) with its event and audit row."""
    from_state = None if kind == "registered" else item.status
    if from_state is not None and not states.allowed(from_state, to_state):
        raise LogisticsError(
            "illegal_move",
            f"Item {item.code} is {states.STATES[from_state]} ({from_state}) and cannot become "
            f"{states.STATES[to_state]} ({to_state}); nothing was changed.",
        )
    now = at or utcnow()
    item.status = to_state
    event = TrackedItemEvent(
        item_id=item.id,
        at=now,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        station_id=staff.station_id,
        run_id=run.id if run else None,
        actor=staff.username,
        reason=reason,
        detail=detail,
    )
    session.add(event)
    await session.flush()
    case_number = await session.scalar(select(Case.number).where(Case.id == item.case_id))
    # One action for every item event (its kind in the detail), so that the audit page can
    # label it; runs, packing and refused pickups have actions of their own.
    await audit.append(
        session,
        audit.staff_actor(staff),
        "logistics.item",
        subject_kind="item",
        subject=item.code,
        case_number=case_number,
        at=now,
        event=kind,
        reason=reason,
        run=run.code if run else None,
        **{"from": from_state, "to": to_state},
        **detail,
    )
    return event


async def register(
    session: AsyncSession,
    staff: Staff,
    case: Case,
    kind: str,
    description: str,
    destination: Station | None = None,
) -> TrackedItem:
    """A new item at the acting person's station: originals a station collects go to the hall;
    originals returned and certificates leave the hall for a station (the case's by default)."""
    if kind not in states.KINDS:
        raise LogisticsError("bad_item_kind", f"A kind is one of {', '.join(states.KINDS)}.")
    if case.status in CLOSED_CASES:
        raise LogisticsError("case_closed", f"Case {case.number} is closed ({case.status}).")
    network = await Network.load(session)
    hall = network.hall()
    here = network.by_id[staff.station_id]
    if kind == "originals_in":
        if here.id == hall.id:
            raise LogisticsError(
                "wrong_tier", "Originals are collected at a station, not at the hall."
            )
        if staff.role == ATTENDANT_ROLE and case.station_id != here.id:
            raise LogisticsError(
                "not_your_case", f"Case {case.number} was not opened at your station."
            )
        target = hall
    else:
        if here.id != hall.id:
            raise LogisticsError(
                "wrong_tier", "Certificates and returned originals leave from the hall."
            )
        if kind == "certificate" and case.status not in ("concluded", "delivered"):
            raise LogisticsError(
                "case_not_concluded", f"Case {case.number} is not concluded (已办结) yet."
            )
        target = destination or await pickup_station(session, case)
        if target.id == hall.id:
            raise LogisticsError(
                "bad_destination",
                "The case was handled at the hall alone: choose the station to send it to.",
            )
    item = TrackedItem(
        code=await _unused_code(session),
        case_id=case.id,
        kind=kind,
        description=description.strip() or states.KINDS[kind],
        status="registered",
        origin_id=here.id,
        destination_id=target.id,
        at_station_id=here.id,
        pickup_code=codes.new_pickup_code(),
        created_by=staff.username,
        exception_reason="",
        picked_up_by="",
    )
    session.add(item)
    await session.flush()
    await session.refresh(item)
    await record(
        session, item, "registered", "registered", staff, item_kind=kind, destination=target.code
    )
    return item


async def _unused_code(session: AsyncSession) -> str:
    while True:
        code = codes.new_item_code()
        if await session.scalar(select(TrackedItem.id).where(TrackedItem.code == code)) is None:
            return code


async def events_of(session: AsyncSession, item: TrackedItem) -> list[TrackedItemEvent]:
    rows = await session.scalars(
        select(TrackedItemEvent)
        .where(TrackedItemEvent.item_id == item.id)
        .order_by(TrackedItemEvent.id)  # as recorded
    )
    return list(rows.all())


async def of_case(session: AsyncSession, case: Case) -> list[dict[str, Any]]:
    """A case's items with their histories (the case page shows them)."""
    network = await Network.load(session)
    rows = await session.scalars(
        select(TrackedItem).where(TrackedItem.case_id == case.id).order_by(TrackedItem.id)
    )
    return [
        item_json(item, await events_of(session, item), stations=network.by_id)
        for item in rows.all()
    ]


def _station(station: Station | None) -> dict[str, str] | None:
    return {"code": station.code, "name": station.name} if station is not None else None


def item_json(
    item: TrackedItem,
    events: list[TrackedItemEvent] | None = None,
    *,
    stations: dict[int, Station] | None = None,
    runs: dict[int, str] | None = None,
) -> dict[str, Any]:
    """An item as the API shows it (never its pickup code); with ``events``, its history."""
    body: dict[str, Any] = {
        "code": item.code,
        "kind": {"code": item.kind, "label": states.KINDS[item.kind]},
        "description": item.description,
        "case": item.case.number,
        "item_name": item.case.item.name,
        "applicant": item.case.applicant_name,
        "status": {"code": item.status, "label": states.STATES[item.status]},
        "origin": _station(item.origin),
        "destination": _station(item.destination),
        "at_station": _station(item.at_station),
        "created_at": item.created_at.isoformat(),
        "ready_at": iso(item.ready_at),
        "finished_at": iso(item.finished_at),
        "exception": {
            "code": item.exception,
            "label": states.EXCEPTIONS[item.exception],
            "reason": item.exception_reason,
            "responsible": item.responsible,
            "at": iso(item.exception_at),
        }
        if item.exception
        else None,
        "signed": item.signature_sha256 is not None,
    }
    if events is not None:
        named = stations or {}
        body["events"] = [
            {
                "at": e.at.isoformat(),
                "kind": e.kind,
                "from": e.from_state,
                "to": {"code": e.to_state, "label": states.STATES[e.to_state]},
                "station": _station(named.get(e.station_id or 0)),
                "run": (runs or {}).get(e.run_id or 0),
                "actor": e.actor,
                "reason": e.reason,
            }
            for e in events
        ]
    return body
