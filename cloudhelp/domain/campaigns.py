"""Campaigns (集中办理): created by a supervisor, their roster imported, scheduled into slots,
and each entry's appointment rebooked (docs/appointments.md, "Campaigns").

Scheduling is greedy and balanced: entries with stated preferences first (they have fewer
choices), each put on the (day, station) with the lowest share of its capacity booked so far
among those its preferences allow, in the earliest free slot there. It books within capacity
only; an entry with no free slot left is reported, never squeezed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import local_date
from cloudhelp.core.errors import CodedError
from cloudhelp.domain import appointments, capacity, roster
from cloudhelp.store.models import (
    Appointment,
    Campaign,
    CampaignEntry,
    ServiceItem,
    Station,
)

MAX_DAYS = 92
REBOOK_SEARCH_DAYS = 30  # a one-click rebook looks this many days past the campaign at most
# A one-click rebook's slot starts at least this long after the click: time to tell the resident
# (the page asks the supervisor to) and for them to come; a slot minutes away is no slot.
REBOOK_NOTICE = timedelta(hours=2)


class CampaignError(CodedError):
    """A refused campaign operation."""


def working_days(first: date, last: date) -> list[date]:
    """The days from ``first`` to ``last`` that the official calendar says are working days
    (none of a year it does not hold)."""
    days, day = [], first
    while day <= last:
        if workdays.is_official_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


async def create(
    session: AsyncSession,
    *,
    name: str,
    street_code: str,
    item_codes: Sequence[str],
    station_codes: Sequence[str],
    starts_on: date,
    ends_on: date,
    actor: str,
) -> Campaign:
    """A new campaign: its items (cloud items), a street, stations under that street."""
    if ends_on < starts_on or (ends_on - starts_on).days >= MAX_DAYS:
        raise CampaignError(
            "bad_range", f"The last day follows the first, at most {MAX_DAYS} days in all."
        )
    missing = sorted({year for year in range(starts_on.year, ends_on.year + 1)
                      if workdays.is_working_day(date(year, 1, 1))[1]})  # fmt: skip
    if missing:
        raise CampaignError(
            "calendar_not_installed",
            f"The official holiday calendar for {missing[0]} is not installed yet, so the "
            f"campaign cannot be planned on its days; install it first (cloudhelp calendar "
            f"import) or end the campaign earlier.",
        )
    street = await session.scalar(select(Station).where(Station.code == street_code))
    if street is None or street.tier != "street":
        raise CampaignError("unknown_street", f"There is no street {street_code!r}.")
    items = []
    for code in item_codes:
        item = await session.scalar(select(ServiceItem).where(ServiceItem.code == code))
        if item is None or not item.cloud:
            raise CampaignError("unknown_item", f"There is no cloud item {code!r}.")
        items.append(item)
    stations = []
    for code in station_codes:
        station = await session.scalar(select(Station).where(Station.code == code))
        if station is None or (station.id != street.id and station.parent_id != street.id):
            raise CampaignError(
                "unknown_station", f"{code!r} is not a station of the street {street.name}."
            )
        stations.append(station)
    if not items or not stations:
        raise CampaignError("bad_campaign", "A campaign has at least one item and one station.")
    campaign = Campaign(
        name=name, street_id=street.id, item_ids=[i.id for i in items],
        station_ids=[s.id for s in stations], starts_on=starts_on, ends_on=ends_on,
        created_by=actor,
    )  # fmt: skip
    session.add(campaign)
    await session.flush()
    return campaign


async def get(session: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError("no_such_campaign", "There is no such campaign.")
    return campaign


async def entries_of(session: AsyncSession, campaign_id: int) -> list[CampaignEntry]:
    return list(
        (
            await session.scalars(
                select(CampaignEntry)
                .where(CampaignEntry.campaign_id == campaign_id)
                .order_by(CampaignEntry.row)
            )
        ).all()
    )


async def _lookups(
    session: AsyncSession, campaign: Campaign
) -> tuple[dict[str, int], dict[str, int]]:
    """Codes and names of the campaign's items and stations → their ids."""
    items: dict[str, int] = {}
    for item_id in campaign.item_ids:
        item = await session.get(ServiceItem, item_id)
        if item is not None:
            items[item.code] = items[item.name] = item.id
    stations: dict[str, int] = {}
    for station_id in campaign.station_ids:
        station = await session.get(Station, station_id)
        if station is not None:
            stations[station.code] = stations[station.name] = station.id
    return items, stations


async def import_roster(
    session: AsyncSession, campaign: Campaign, data: bytes, filename: str, now: datetime
) -> tuple[int, list[roster.Problem]]:
    """Replace the roster of a campaign not yet scheduled; with any problem nothing is written
    and the problems are returned (every row and field at once)."""
    if campaign.scheduled_at is not None:
        raise CampaignError(
            "campaign_scheduled", "The campaign is scheduled; its roster can no longer change."
        )
    try:
        rows = roster.read(data, filename)
    except roster.RosterError as exc:
        raise CampaignError(exc.code, exc.message) from None
    items, stations = await _lookups(session, campaign)
    entries, problems = roster.validate(rows, items, stations)
    if problems:
        return 0, problems
    await session.execute(delete(CampaignEntry).where(CampaignEntry.campaign_id == campaign.id))
    for entry in entries:
        session.add(CampaignEntry(campaign_id=campaign.id, **entry))
    campaign.imported_at = now
    return len(entries), []


# ------------------------------------------------------------------ scheduling


@dataclass
class _Cell:
    """A (day, station)'s slots for one item while a schedule is planned."""

    day: date
    station_id: int
    slots: list[capacity.Slot]
    planned: int = 0

    @property
    def load(self) -> float:
        total = sum(s.capacity for s in self.slots)
        return self.planned / total if total else 1.0


async def current_appointments(
    session: AsyncSession, entry_ids: Sequence[int]
) -> dict[int, Appointment]:
    """Each entry's latest appointment that was not cancelled or moved."""
    rows = (
        await session.scalars(
            select(Appointment)
            .where(
                Appointment.campaign_entry_id.in_(list(entry_ids)),
                Appointment.status.notin_(("cancelled", "rebooked")),
            )
            .order_by(Appointment.id)
        )
    ).all()
    return {a.campaign_entry_id: a for a in rows if a.campaign_entry_id is not None}


async def _cells(
    session: AsyncSession, item: ServiceItem, station_ids: Sequence[int], days: Sequence[date],
    now: datetime,
) -> list[_Cell]:  # fmt: skip
    schedule = await capacity.load_schedule(session, [item.department_id], station_ids)
    minutes = await capacity.slot_minutes(session, item)
    cells = []
    for station_id in station_ids:
        taken = await capacity.taken_intervals(session, item.department_id, station_id, days)
        for day in days:
            hours = schedule.hours(item.department_id, station_id, day)
            slots = [s for s in capacity.day_slots(hours, day, minutes) if s.starts_at > now]
            capacity.count_overlaps(slots, taken[day])
            if slots:
                cells.append(_Cell(day, station_id, slots))
    return cells


def _place(cells: list[_Cell], preferences: dict[str, Any]) -> tuple[_Cell, capacity.Slot] | None:
    """The least loaded cell the preferences allow that has a free slot, and that slot."""
    station, half = preferences.get("station"), preferences.get("half")
    best: tuple[_Cell, capacity.Slot] | None = None
    for cell in cells:
        if station is not None and cell.station_id != station:
            continue
        slot = next((s for s in cell.slots if s.free and (not half or s.half == half)), None)
        if slot is None:
            continue
        if best is None or (cell.load, cell.day, cell.station_id) < (
            best[0].load,
            best[0].day,
            best[0].station_id,
        ):
            best = (cell, slot)
    return best


async def schedule(
    session: AsyncSession, campaign: Campaign, actor: str, now: datetime
) -> dict[str, Any]:
    """Book a slot for every entry that has no appointment yet, balanced across the campaign's
    working days and stations within capacity; entries left without a slot are listed."""
    entries = await entries_of(session, campaign.id)
    if not entries:
        raise CampaignError("roster_empty", "Import the roster before scheduling.")
    have = await current_appointments(session, [e.id for e in entries])
    first = max(campaign.starts_on, local_date(now))
    days = working_days(first, campaign.ends_on)
    waiting = [e for e in entries if e.id not in have]
    waiting.sort(key=lambda e: (-len(e.preferences), e.row))
    booked, unplaced = 0, []
    cells_by_item: dict[int, list[_Cell]] = {}
    for entry in waiting:
        item = await session.get(ServiceItem, entry.item_id)
        if item is None:
            continue
        if item.id not in cells_by_item:
            cells_by_item[item.id] = await _cells(session, item, campaign.station_ids, days, now)
        placed = _place(cells_by_item[item.id], entry.preferences)
        if placed is None:
            unplaced.append({"row": entry.row, "name": entry.name})
            continue
        cell, slot = placed
        await appointments.book(
            session, item=item, station_id=cell.station_id, starts_at=slot.starts_at,
            person=appointments.Person(entry.name, entry.phone, entry.id_number),
            booked_by=actor, now=now, entry_id=entry.id,
        )  # fmt: skip
        slot.booked += 1
        cell.planned += 1
        booked += 1
    campaign.scheduled_at = campaign.scheduled_at or now
    return {"booked": booked, "unplaced": unplaced, "days": [d.isoformat() for d in days]}


async def rebook_entry(
    session: AsyncSession, campaign: Campaign, entry_id: int, actor: str, now: datetime
) -> Appointment:
    """One click: the entry's appointment moved to the first free slot starting at least
    REBOOK_NOTICE from now (its stated preferences kept; without a stated station, at the
    station of the slot it missed if any is free there), in the campaign's days and, if full,
    up to 30 days after."""
    entry = await session.get(CampaignEntry, entry_id)
    if entry is None or entry.campaign_id != campaign.id:
        raise CampaignError("no_such_entry", "There is no such roster entry.")
    current = (await current_appointments(session, [entry.id])).get(entry.id)
    if current is not None and current.status != "booked":
        raise CampaignError("entry_checked_in", "This entry has checked in already.")
    item = await session.get(ServiceItem, entry.item_id)
    if item is None:
        raise CampaignError("no_such_entry", "There is no such roster entry.")
    last = max(campaign.ends_on, local_date(now)) + timedelta(days=REBOOK_SEARCH_DAYS)
    days = working_days(max(campaign.starts_on, local_date(now)), last)
    if current is not None:
        current.status, current.cancelled_at = "rebooked", now
        await session.flush()
    cells = await _cells(session, item, campaign.station_ids, days, now + REBOOK_NOTICE)
    cells.sort(key=lambda c: (c.day, c.station_id))
    # A stated station only; else the station of the slot missed first, then the others.
    stated = entry.preferences.get("station")
    wanted = stated if stated is not None else (current.station_id if current else None)
    cells = [c for c in cells if c.station_id == wanted] + (
        [] if stated is not None else [c for c in cells if c.station_id != wanted]
    )
    for cell in cells:
        slot = next((s for s in cell.slots if s.free), None)
        if slot is not None:
            return await appointments.book(
                session, item=item, station_id=cell.station_id, starts_at=slot.starts_at,
                person=appointments.Person(entry.name, entry.phone, entry.id_number),
                booked_by=actor, now=now, entry_id=entry.id,
                rebooked_from=current.id if current else None,
            )  # fmt: skip
    raise CampaignError("no_free_slot", "No free slot is left in the next 30 days.")


async def listed(session: AsyncSession) -> list[Campaign]:
    return list((await session.scalars(select(Campaign).order_by(Campaign.starts_on.desc()))).all())


async def running(session: AsyncSession, day: date) -> list[Campaign]:
    """The campaigns whose dates hold ``day``."""
    return list(
        (
            await session.scalars(
                select(Campaign)
                .where(Campaign.starts_on <= day, Campaign.ends_on >= day)
                .order_by(Campaign.starts_on)
            )
        ).all()
    )


async def entry_count(session: AsyncSession, campaign_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(CampaignEntry)
            .where(CampaignEntry.campaign_id == campaign_id)
        )
        or 0
    )
