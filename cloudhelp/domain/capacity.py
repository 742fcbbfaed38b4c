"""Capacity for appointments: the hours a station serves a department's items, how many staff
serve them, and the slots an item is booked in (docs/appointments.md, "Capacity and slots").

A day has hours only when it is a working day of the district's calendar (never on a public
holiday); a per-date exception replaces the weekday's hours (``staff`` 0 closes the day); an
adjusted working day (调休上班) with no hours of its own weekday takes Monday's. An item's slot
length is its measured handling time (call and wrap-up) rounded up to 5 minutes, between 10 and
60. A slot holds as many appointments as staff serve at once: appointments of the department at
the station whose times overlap it count against it, whatever their item.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.core.errors import CodedError
from cloudhelp.domain import estimates
from cloudhelp.store.models import (
    Appointment,
    ServiceHours,
    ServiceHoursException,
    ServiceItem,
)

SLOT_STEP_MINUTES = 5
MIN_SLOT_MINUTES = 10
MAX_SLOT_MINUTES = 60
# Appointments that hold their place in a slot.
HOLDING = ("booked", "checked_in")


class CapacityError(CodedError):
    """Refused hours (a malformed time, closing before opening, no staff)."""


@dataclass(frozen=True)
class Hours:
    """A day's hours at a station for a department: local times, staff serving at once, and
    a break inside them (午休) when no slot is booked."""

    opens: time
    closes: time
    staff: int
    break_starts: time | None = None
    break_ends: time | None = None

    @classmethod
    def parse(
        cls, opens: str, closes: str, staff: int, break_starts: str | None = None,
        break_ends: str | None = None, *, closed_allowed: bool = False,
    ) -> Hours:  # fmt: skip
        """Hours from ``HH:MM`` texts; CapacityError for hours that close before they open, a
        break outside them or given by one end, or no staff (unless ``closed_allowed``)."""
        hours = cls(
            parse_time(opens, "opens"), parse_time(closes, "closes"), staff,
            None if break_starts is None else parse_time(break_starts, "break_starts"),
            None if break_ends is None else parse_time(break_ends, "break_ends"),
        )  # fmt: skip
        if hours.opens >= hours.closes:
            raise CapacityError(
                "bad_hours", f"The hours close ({closes}) before they open ({opens})."
            )
        if (hours.break_starts is None) != (hours.break_ends is None):
            raise CapacityError("bad_break", "A break needs both its start and its end.")
        if (
            hours.break_starts is not None
            and hours.break_ends is not None
            and not (hours.opens < hours.break_starts < hours.break_ends < hours.closes)
        ):
            raise CapacityError(
                "bad_break",
                f"The break ({break_starts}–{break_ends}) is not inside the hours"
                f" ({opens}–{closes}).",
            )
        if staff < (0 if closed_allowed else 1) or staff > 50:
            raise CapacityError("bad_hours", "Staff serving at once is a number from 1 to 50.")
        return hours

    def periods(self) -> list[tuple[time, time]]:
        """The times slots are booked in: the hours, less the break."""
        if self.break_starts is None or self.break_ends is None:
            return [(self.opens, self.closes)]
        return [(self.opens, self.break_starts), (self.break_ends, self.closes)]

    def fields(self) -> dict[str, str | int | None]:
        """The hours as the tables and the API keep them (times ``HH:MM``, local; None: no
        break; and the staff)."""
        return {
            "opens": _hhmm(self.opens), "closes": _hhmm(self.closes),
            "break_starts": _hhmm(self.break_starts), "break_ends": _hhmm(self.break_ends),
            "staff": self.staff,
        }  # fmt: skip


@dataclass
class Slot:
    """One bookable time of an item on a day at a station; ``booked`` counts overlapping
    appointments of the department there."""

    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int = 0

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.booked)

    @property
    def local_start(self) -> str:
        return self.starts_at.astimezone(LOCAL_TZ).strftime("%H:%M")

    @property
    def half(self) -> str:
        """What a roster's preference names: ``am`` (上午) before local noon, ``pm`` (下午) from
        13:00; a slot in the noon hour is ``noon``, given to a preference for neither (a
        resident who asked for the afternoon is not booked at 12:00)."""
        hour = self.starts_at.astimezone(LOCAL_TZ).hour
        return "am" if hour < 12 else "pm" if hour >= 13 else "noon"


def parse_time(raw: str, what: str) -> time:
    """``HH:MM`` as a time; CapacityError naming ``what`` otherwise."""
    try:
        hours, minutes = raw.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise CapacityError("bad_hours", f"{what}: {raw!r} is not a time like 09:00.") from None


def _hhmm(moment: time | None) -> str | None:
    return None if moment is None else f"{moment:%H:%M}"


def _row_hours(row: ServiceHours | ServiceHoursException) -> Hours:
    return Hours.parse(
        row.opens, row.closes, row.staff, row.break_starts, row.break_ends, closed_allowed=True
    )


def slot_minutes_for(handling_seconds: float) -> int:
    """The measured handling time rounded up to 5 minutes, kept between 10 and 60."""
    minutes = math.ceil(handling_seconds / 60 / SLOT_STEP_MINUTES) * SLOT_STEP_MINUTES
    return min(MAX_SLOT_MINUTES, max(MIN_SLOT_MINUTES, minutes))


async def slot_minutes(session: AsyncSession, item: ServiceItem) -> int:
    """The item's slot length from its measured handling times (estimates.handling_seconds)."""
    return slot_minutes_for(await estimates.handling_seconds(session, item.id, item.department_id))


@dataclass
class Schedule:
    """The hours of some departments at some stations: weekdays and per-date exceptions."""

    weekly: dict[tuple[int, int, int], Hours] = field(default_factory=dict)
    exceptions: dict[tuple[int, int, date], Hours] = field(default_factory=dict)

    def hours(self, department_id: int, station_id: int, day: date) -> Hours | None:
        """The day's hours, or None when nothing is served (a holiday, a closed day, a day of
        a year the official calendar does not hold yet)."""
        if not workdays.is_official_working_day(day):
            return None
        exception = self.exceptions.get((department_id, station_id, day))
        if exception is not None:
            return exception if exception.staff > 0 else None
        weekly = self.weekly.get((department_id, station_id, day.weekday()))
        if weekly is None and day.weekday() >= 5:  # 调休上班: an adjusted working day
            weekly = self.weekly.get((department_id, station_id, 0))
        return weekly


async def load_schedule(
    session: AsyncSession, department_ids: Iterable[int], station_ids: Iterable[int]
) -> Schedule:
    departments, stations = list(department_ids), list(station_ids)
    schedule = Schedule()
    for row in (
        await session.scalars(
            select(ServiceHours).where(
                ServiceHours.department_id.in_(departments), ServiceHours.station_id.in_(stations)
            )
        )
    ).all():
        schedule.weekly[(row.department_id, row.station_id, row.weekday)] = _row_hours(row)
    for exc in (
        await session.scalars(
            select(ServiceHoursException).where(
                ServiceHoursException.department_id.in_(departments),
                ServiceHoursException.station_id.in_(stations),
            )
        )
    ).all():
        schedule.exceptions[(exc.department_id, exc.station_id, exc.day)] = _row_hours(exc)
    return schedule


def day_slots(hours: Hours | None, day: date, minutes: int) -> list[Slot]:
    """The slots of one length that fit in a day's hours (empty when it has none): from the
    opening, one after another, the last ending by the break; again from the break's end."""
    if hours is None:
        return []
    length = timedelta(minutes=minutes)
    slots = []
    for begins, ends in hours.periods():
        start = datetime.combine(day, begins, LOCAL_TZ)
        closes = datetime.combine(day, ends, LOCAL_TZ)
        while start + length <= closes:
            slots.append(Slot(start, start + length, hours.staff))
            start += length
    return slots


def count_overlaps(slots: Sequence[Slot], taken: Iterable[tuple[datetime, datetime]]) -> None:
    """Set each slot's ``booked``: how many of the ``taken`` intervals overlap it."""
    intervals = list(taken)
    for slot in slots:
        slot.booked = sum(1 for a, b in intervals if a < slot.ends_at and slot.starts_at < b)


async def taken_intervals(
    session: AsyncSession, department_id: int, station_id: int, days: Sequence[date]
) -> dict[date, list[tuple[datetime, datetime]]]:
    """The times held by appointments of the department at the station, per day."""
    rows = (
        await session.execute(
            select(Appointment.day, Appointment.starts_at, Appointment.ends_at).where(
                Appointment.department_id == department_id,
                Appointment.station_id == station_id,
                Appointment.day.in_(list(days)),
                Appointment.status.in_(HOLDING),
            )
        )
    ).all()
    found: dict[date, list[tuple[datetime, datetime]]] = {day: [] for day in days}
    for day, starts_at, ends_at in rows:
        found[day].append((starts_at, ends_at))
    return found


async def slots_on(
    session: AsyncSession, item: ServiceItem, station_id: int, day: date
) -> list[Slot]:
    """The item's slots on ``day`` at the station, with how many are booked."""
    schedule = await load_schedule(session, [item.department_id], [station_id])
    slots = day_slots(
        schedule.hours(item.department_id, station_id, day), day, await slot_minutes(session, item)
    )
    taken = await taken_intervals(session, item.department_id, station_id, [day])
    count_overlaps(slots, taken[day])
    return slots


# ------------------------------------------------------------------ changing the hours


async def set_weekly_hours(
    session: AsyncSession, department_id: int, station_id: int, week: dict[int, Hours]
) -> None:
    """Replace the department's weekday hours at the station (weekday → hours, with staff)."""
    for weekday in week:
        if not 0 <= weekday <= 6:
            raise CapacityError("bad_hours", f"A weekday is 0 (Monday) to 6, not {weekday}.")
    old = await session.scalars(
        select(ServiceHours).where(
            ServiceHours.department_id == department_id, ServiceHours.station_id == station_id
        )
    )
    for row in old.all():
        await session.delete(row)
    for weekday, hours in sorted(week.items()):
        session.add(
            ServiceHours(
                department_id=department_id, station_id=station_id, weekday=weekday,
                **hours.fields(),
            )
        )  # fmt: skip


async def set_exception(
    session: AsyncSession, department_id: int, station_id: int, day: date, hours: Hours,
    note: str = "",
) -> None:  # fmt: skip
    """One date's hours in place of the weekday's (``staff`` 0: closed that day)."""
    old = await session.scalar(
        select(ServiceHoursException).where(
            ServiceHoursException.department_id == department_id,
            ServiceHoursException.station_id == station_id,
            ServiceHoursException.day == day,
        )
    )
    if old is not None:
        await session.delete(old)
        await session.flush()
    session.add(
        ServiceHoursException(
            department_id=department_id, station_id=station_id, day=day,
            note=note, **hours.fields(),
        )
    )  # fmt: skip
