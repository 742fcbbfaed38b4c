"""Runs (一趟): items bundled per hop, with a manifest, dispatched from one station and received
at the next against that manifest (missing and extra items flagged)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import iso
from cloudhelp.domain import audit
from cloudhelp.domain.logistics import codes, states
from cloudhelp.domain.logistics.items import LogisticsError, by_code, record, require_here
from cloudhelp.domain.logistics.routes import Network
from cloudhelp.store.models import (
    Case,
    LogisticsRun,
    LogisticsRunItem,
    Staff,
    TrackedItem,
    utcnow,
)


async def run_by_code(session: AsyncSession, text: str) -> LogisticsRun:
    code = codes.typed(text)
    if not codes.valid(code) or not codes.is_run(code):
        raise LogisticsError("bad_code", f"{text!r} is not a run's code (12 digits, starting 9).")
    run = await session.scalar(select(LogisticsRun).where(LogisticsRun.code == code))
    if run is None:
        raise LogisticsError("unknown_code", f"No run has the code {code}.")
    return run


async def open_run(session: AsyncSession, staff: Staff, to_code: str) -> LogisticsRun:
    """A new run from the acting person's station to the next tier up or down."""
    network = await Network.load(session)
    target = network.by_code.get(to_code)
    if target is None:
        raise LogisticsError("unknown_station", f"There is no station {to_code!r}.")
    if not network.adjacent(staff.station_id, target.id):
        raise LogisticsError(
            "not_adjacent", "A run goes one hop: to the station's parent or one of its children."
        )
    while True:
        code = codes.new_run_code()
        if await session.scalar(select(LogisticsRun.id).where(LogisticsRun.code == code)) is None:
            break
    run = LogisticsRun(
        code=code,
        from_id=staff.station_id,
        to_id=target.id,
        status="open",
        created_by=staff.username,
        missing=[],
        extra=[],
    )
    session.add(run)
    await session.flush()
    await session.refresh(run)
    await audit.append(
        session,
        audit.staff_actor(staff),
        "logistics.run_opened",
        subject_kind="run",
        subject=run.code,
        to=target.code,
    )
    return run


def _own_end(run: LogisticsRun, staff: Staff, end: str) -> None:
    station = run.from_id if end == "from" else run.to_id
    if station != staff.station_id:
        raise LogisticsError(
            "not_your_run",
            f"Run {run.code} {'leaves from' if end == 'from' else 'goes to'} another station; "
            "nothing was changed.",
        )


Manifest = list[tuple[LogisticsRunItem, TrackedItem]]


async def manifest(session: AsyncSession, run: LogisticsRun) -> Manifest:
    rows = await session.execute(
        select(LogisticsRunItem, TrackedItem)
        .join(TrackedItem, TrackedItem.id == LogisticsRunItem.item_id)
        .where(LogisticsRunItem.run_id == run.id)
        .order_by(LogisticsRunItem.position)
    )
    return [(entry, item) for entry, item in rows.all()]


async def add_item(
    session: AsyncSession, staff: Staff, run: LogisticsRun, item_code: str
) -> TrackedItem:
    """Put an item lying here on an open run whose next stop is the item's next hop."""
    _own_end(run, staff, "from")
    if run.status != "open":
        raise LogisticsError("run_closed", f"Run {run.code} has left already.")
    item = await by_code(session, item_code)
    require_here(item, staff)
    if item.status not in states.WAITING:
        raise LogisticsError(
            "illegal_move", f"Item {item.code} is {states.STATES[item.status]}; it cannot travel."
        )
    network = await Network.load(session)
    hop = network.next_hop(staff.station_id, item.destination_id)
    if hop != run.to_id:
        raise LogisticsError(
            "wrong_route",
            f"Item {item.code} goes to {item.destination.name}; its next stop is not this run's.",
        )
    bundled = await session.scalar(
        select(LogisticsRun.code)
        .join(LogisticsRunItem, LogisticsRunItem.run_id == LogisticsRun.id)
        .where(LogisticsRunItem.item_id == item.id, LogisticsRun.status == "open")
    )
    if bundled is not None:
        raise LogisticsError("already_bundled", f"Item {item.code} is on run {bundled} already.")
    count = await session.scalar(
        select(func.count()).select_from(LogisticsRunItem).where(LogisticsRunItem.run_id == run.id)
    )
    session.add(
        LogisticsRunItem(run_id=run.id, item_id=item.id, position=(count or 0) + 1, received=False)
    )
    await session.flush()
    case_number = await session.scalar(select(Case.number).where(Case.id == item.case_id))
    await audit.append(
        session,
        audit.staff_actor(staff),
        "logistics.bundled",
        subject_kind="item",
        subject=item.code,
        case_number=case_number,
        run=run.code,
    )
    return item


async def dispatch(session: AsyncSession, staff: Staff, run: LogisticsRun) -> LogisticsRun:
    """The run leaves: each item is dispatched (from its origin) or handed on to the next tier.
    An item packed but since reported lost (or otherwise no longer waiting here) leaves the
    manifest instead."""
    _own_end(run, staff, "from")
    if run.status != "open":
        raise LogisticsError("run_closed", f"Run {run.code} has left already.")
    entries = []
    for entry, item in await manifest(session, run):
        if item.status in states.WAITING and item.at_station_id == staff.station_id:
            entries.append((entry, item))
        else:
            await session.delete(entry)
    if not entries:
        raise LogisticsError("run_empty", f"Run {run.code} holds no item.")
    now = utcnow()
    for _entry, item in entries:
        # Leaving where it starts (or starts back from): dispatched; passing on: handed on.
        kind = "dispatched" if item.status in ("registered", "to_return") else "handed_on"
        await record(
            session,
            item,
            kind,
            "in_transit",
            staff,
            run=run,
            at=now,
            to_station=run.destination.code,
        )
        item.at_station_id, item.run_id = None, run.id
    run.status, run.dispatched_at, run.dispatched_by = "dispatched", now, staff.username
    await audit.append(
        session,
        audit.staff_actor(staff),
        "logistics.run_dispatched",
        subject_kind="run",
        subject=run.code,
        items=len(entries),
        at=now,
        to=run.destination.code,
    )
    return run


@dataclass
class Receipt:
    """What a receipt found: items received, manifest items not scanned, codes not on it."""

    received: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


async def receive(
    session: AsyncSession, staff: Staff, run: LogisticsRun, scanned: list[str]
) -> Receipt:
    """Receive a run at its destination against its manifest. Items scanned arrive here (at
    their destination: ready to shelve, or finished at the hall); manifest items not scanned
    stay in transit and are listed missing; scans not on the manifest are listed extra."""
    _own_end(run, staff, "to")
    if run.status != "dispatched":
        raise LogisticsError(
            "run_not_dispatched" if run.status == "open" else "run_received",
            f"Run {run.code} is {run.status}; only a dispatched run is received.",
        )
    wanted = list(dict.fromkeys(codes.typed(c) for c in scanned if codes.typed(c)))
    network = await Network.load(session)
    hall = network.hall().id
    receipt = Receipt()
    now = utcnow()
    on_manifest = {item.code: (entry, item) for entry, item in await manifest(session, run)}
    for code, (entry, item) in on_manifest.items():
        if code not in wanted or item.status != "in_transit" or item.run_id != run.id:
            receipt.missing.append(code)
            continue
        item.at_station_id = staff.station_id
        if staff.station_id == item.destination_id == hall:
            kind, to_state = ("returned", "returned") if item.exception else ("received", "at_hall")
            item.finished_at = now
        else:
            kind, to_state = "received", "received"
        await record(session, item, kind, to_state, staff, run=run, at=now)
        entry.received = True
        receipt.received.append(code)
    receipt.extra = [code for code in wanted if code not in on_manifest]
    run.status, run.received_at, run.received_by = "received", now, staff.username
    run.missing, run.extra = receipt.missing, receipt.extra
    await audit.append(
        session,
        audit.staff_actor(staff),
        "logistics.run_received",
        subject_kind="run",
        subject=run.code,
        at=now,
        received=receipt.received,
        missing=receipt.missing,
        extra=receipt.extra,
    )
    return receipt


def run_json(run: LogisticsRun, entries: Manifest | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": run.code,
        "from": {"code": run.origin.code, "name": run.origin.name},
        "to": {"code": run.destination.code, "name": run.destination.name},
        "status": run.status,
        "created_at": run.created_at.isoformat(),
        "created_by": run.created_by,
        "dispatched_at": iso(run.dispatched_at),
        "received_at": iso(run.received_at),
        "missing": list(run.missing or []),
        "extra": list(run.extra or []),
    }
    if entries is not None:
        body["items"] = [
            {
                "code": item.code,
                "kind": {"code": item.kind, "label": states.KINDS[item.kind]},
                "case": item.case.number,
                "description": item.description,
                "destination": {"code": item.destination.code, "name": item.destination.name},
                "status": {"code": item.status, "label": states.STATES[item.status]},
                "received": entry.received,
            }
            for entry, item in entries
        ]
    return body


async def runs_at(session: AsyncSession, station_id: int, limit: int = 50) -> list[LogisticsRun]:
    """Runs leaving or coming to a station, open and on the road first, newest first."""
    rows = await session.scalars(
        select(LogisticsRun)
        .where((LogisticsRun.from_id == station_id) | (LogisticsRun.to_id == station_id))
        .order_by((LogisticsRun.status == "received"), LogisticsRun.created_at.desc())
        .limit(limit)
    )
    return list(rows.all())


async def seen_as_extra(session: AsyncSession, station_id: int, code: str) -> bool:
    """Whether a run received at the station listed ``code`` as extra (scanned there, not on
    its manifest): the proof that an item on the road turned up at the wrong station."""
    extras = await session.scalars(
        select(LogisticsRun.extra)
        .where(LogisticsRun.to_id == station_id, LogisticsRun.status == "received")
        .order_by(LogisticsRun.received_at.desc())
        .limit(200)
    )
    return any(code in (extra or []) for extra in extras.all())
