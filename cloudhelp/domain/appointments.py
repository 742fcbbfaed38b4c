"""Appointments (预约): booking a slot, the booking code, checking in at a kiosk, cancelling and
rebooking by code and the phone's last four digits (docs/appointments.md, "Rules").

Check-in window: from CHECK_IN_EARLY_MINUTES before the slot starts to CHECK_IN_LATE_MINUTES
after it; earlier is refused with the time to come back, later is refused and the appointment
counts as a no-show (``status_at``), which may be rebooked. Every refusal raises
AppointmentError before anything is written.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ, iso, local_date
from cloudhelp.core.errors import CodedError
from cloudhelp.domain import capacity, cases
from cloudhelp.store.models import Appointment, ServiceItem, Station

CHECK_IN_EARLY_MINUTES = 30
CHECK_IN_LATE_MINUTES = 15
CODE_DIGITS = 8
STATUSES = ("booked", "checked_in", "no_show", "cancelled", "rebooked")


class AppointmentError(CodedError):
    """A refused booking, check-in, cancellation or rebooking; ``details`` fill the page's
    text (``opens``: when check-in opens, local HH:MM)."""

    def __init__(self, code: str, message: str, **details: str) -> None:
        super().__init__(code, message)
        self.details = details


@dataclass(frozen=True)
class Person:
    """Who the appointment is for: name, mobile phone, ID number (may be empty)."""

    name: str
    phone: str
    id_number: str = ""

    def checked(self) -> Person:
        name, phone = self.name.strip(), self.phone.strip()
        id_number = self.id_number.strip().upper()
        if not 1 <= len(name) <= 50:
            raise AppointmentError("bad_applicant", "The name is required (at most 50 characters).")
        if not cases.valid_phone(phone):
            raise AppointmentError("bad_phone", "A mobile number has 11 digits and starts with 1.")
        if id_number and not cases.valid_id_number(id_number):
            raise AppointmentError(
                "bad_id_number", "The ID card number is not valid (check its last character)."
            )
        return Person(name, phone, id_number)


def normalise_code(raw: str) -> str:
    """A typed code without spaces or hyphens (1234-5678 and 12345678 are one code)."""
    return "".join(ch for ch in raw if ch.isdigit())


def show_code(code: str) -> str:
    """The code as printed and shown: 1234-5678."""
    return f"{code[:4]}-{code[4:]}"


def window(appointment: Appointment) -> tuple[datetime, datetime]:
    """When the appointment may be checked in at a kiosk of its station."""
    return (
        appointment.starts_at - timedelta(minutes=CHECK_IN_EARLY_MINUTES),
        appointment.starts_at + timedelta(minutes=CHECK_IN_LATE_MINUTES),
    )


def status_at(appointment: Appointment, now: datetime) -> str:
    """The status as of ``now``: a booked appointment whose window has closed is a no-show."""
    if appointment.status == "booked" and now > window(appointment)[1]:
        return "no_show"
    return appointment.status


async def has_one_to_come(session: AsyncSession, item_id: int, phone: str, now: datetime) -> bool:
    """Whether this phone number holds a booked appointment of this item whose check-in window
    has not closed yet (one a resident booking for themselves may hold per item)."""
    found = await session.scalar(
        select(Appointment.id)
        .where(
            Appointment.item_id == item_id,
            Appointment.phone == phone,
            Appointment.status == "booked",
            Appointment.starts_at > now - timedelta(minutes=CHECK_IN_LATE_MINUTES),
        )
        .limit(1)
    )
    return found is not None


async def _new_code(session: AsyncSession) -> str:
    while True:
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        if code[0] != "0" and await find(session, code) is None:
            return code


async def find(session: AsyncSession, code: str) -> Appointment | None:
    return await session.scalar(select(Appointment).where(Appointment.code == normalise_code(code)))


async def check_slot(
    session: AsyncSession, item: ServiceItem, station_id: int, starts_at: datetime, now: datetime
) -> capacity.Slot:
    """The slot starting at ``starts_at`` if it can take one more appointment; refused with
    ``calendar_not_installed``, ``slot_on_holiday``, ``slot_in_past``, ``no_such_slot`` or
    ``slot_full`` otherwise."""
    day = local_date(starts_at)
    if workdays.is_working_day(day)[1]:
        raise AppointmentError(
            "calendar_not_installed",
            f"The official holiday calendar for {day.year} is not installed yet, so no day of "
            f"{day.year} can be booked; choose an earlier day.",
        )
    if not workdays.is_working_day(day)[0]:
        raise AppointmentError(
            "slot_on_holiday", f"{day} is not a working day: nothing is served on it."
        )
    if starts_at <= now:
        raise AppointmentError("slot_in_past", "That time has passed; choose a later slot.")
    slot = next(
        (s for s in await capacity.slots_on(session, item, station_id, day)
         if s.starts_at == starts_at),
        None,
    )  # fmt: skip
    if slot is None:
        raise AppointmentError(
            "no_such_slot", "The station serves no slot of this item at that time."
        )
    if slot.free == 0:
        raise AppointmentError("slot_full", "That slot is fully booked; choose another.")
    return slot


async def book(
    session: AsyncSession,
    *,
    item: ServiceItem,
    station_id: int,
    starts_at: datetime,
    person: Person,
    booked_by: str,
    now: datetime,
    entry_id: int | None = None,
    rebooked_from: int | None = None,
    one_per_phone: bool = False,
) -> Appointment:
    """Book a slot. The station's row is locked first (PostgreSQL), so two bookings of the last
    place in a slot are taken one after the other and the second is refused. ``one_per_phone``
    (a resident booking for themselves): refused with ``already_booked`` while the phone number
    holds an appointment of this item to come."""
    if not item.cloud:
        raise AppointmentError("not_cloud", "This item cannot be handled by video; go to the hall.")
    person = person.checked()
    await session.scalar(select(Station.id).where(Station.id == station_id).with_for_update())
    slot = await check_slot(session, item, station_id, starts_at, now)
    if one_per_phone and await has_one_to_come(session, item.id, person.phone, now):
        raise AppointmentError(
            "already_booked",
            "This phone number already has an appointment for this item; find it with its code "
            "and the phone's last four digits to rebook or cancel it.",
        )
    appointment = Appointment(
        code=await _new_code(session),
        item_id=item.id,
        department_id=item.department_id,
        station_id=station_id,
        day=local_date(starts_at),
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        name=person.name,
        phone=person.phone,
        id_number=person.id_number,
        status="booked",
        booked_by=booked_by,
        booked_at=now,
        campaign_entry_id=entry_id,
        rebooked_from_id=rebooked_from,
    )
    session.add(appointment)
    await session.flush()
    await session.refresh(appointment, ["item", "station"])
    return appointment


async def for_resident(session: AsyncSession, code: str, last4: str) -> Appointment:
    """The appointment with this code whose phone ends in ``last4``; one answer for both a
    wrong code and wrong digits."""
    appointment = await find(session, code)
    if appointment is None or len(last4) != 4 or not appointment.phone.endswith(last4):
        raise AppointmentError(
            "no_such_appointment", "No appointment has this code and these digits."
        )
    return appointment


async def check_in(session: AsyncSession, code: str, station_id: int, now: datetime) -> Appointment:
    """Check the appointment in at a kiosk of ``station_id``: refused (nothing written) for an
    unknown code, another station, one used, cancelled or rebooked, too early or too late."""
    appointment = await may_check_in(session, code, station_id, now)
    appointment.status, appointment.checked_in_at = "checked_in", now
    return appointment


async def may_check_in(
    session: AsyncSession, code: str, station_id: int, now: datetime
) -> Appointment:
    """The appointment if it can be checked in here and now (check_in's refusals, no write)."""
    appointment = await find(session, code)
    if appointment is None:
        raise AppointmentError("no_such_appointment", "There is no appointment with this code.")
    # Used, cancelled or moved first: sending the resident to the station of a booking that
    # no longer stands would send them there for nothing (a walk was, with a cancelled code).
    state = status_at(appointment, now)
    if state == "checked_in":
        raise AppointmentError("appointment_used", "This appointment is already checked in.")
    if state in ("cancelled", "rebooked"):
        raise AppointmentError(
            "appointment_cancelled", "This appointment was cancelled or moved to another time."
        )
    if appointment.station_id != station_id:
        raise AppointmentError(
            "appointment_wrong_station",
            f"This appointment is at {appointment.station.name}; check in there.",
        )
    opens, closes = window(appointment)
    if now < opens:
        local = opens.astimezone(LOCAL_TZ)
        raise AppointmentError(
            "appointment_too_early",
            f"Check-in opens at {local:%Y-%m-%d %H:%M}.",
            opens=f"{local:%H:%M}",
            day=f"{local:%Y-%m-%d}",
        )
    if now > closes:
        raise AppointmentError(
            "appointment_too_late",
            "The check-in time has passed: rebook, or take a ticket without an appointment.",
        )
    return appointment


async def cancel(session: AsyncSession, appointment: Appointment, now: datetime) -> None:
    """Cancel a booked appointment before its slot starts."""
    if appointment.status != "booked" or appointment.starts_at <= now:
        raise AppointmentError(
            "appointment_not_cancellable", "Only a booked appointment not yet begun is cancelled."
        )
    appointment.status, appointment.cancelled_at = "cancelled", now


async def rebook(
    session: AsyncSession,
    appointment: Appointment,
    *,
    starts_at: datetime,
    station_id: int | None,
    actor: str,
    now: datetime,
) -> Appointment:
    """Move a booked (or missed) appointment to another slot: a new appointment with a new
    code; the old one is ``rebooked`` and no longer holds its slot."""
    if appointment.status != "booked":
        raise AppointmentError(
            "appointment_not_rebookable", "Only a booked or missed appointment can be rebooked."
        )
    appointment.status, appointment.cancelled_at = "rebooked", now
    await session.flush()  # its slot is free for the check below
    try:
        return await book(
            session,
            item=appointment.item,
            station_id=station_id or appointment.station_id,
            starts_at=starts_at,
            person=Person(appointment.name, appointment.phone, appointment.id_number),
            booked_by=actor,
            now=now,
            entry_id=appointment.campaign_entry_id,
            rebooked_from=appointment.id,
        )
    except AppointmentError:
        appointment.status, appointment.cancelled_at = "booked", None
        raise


def as_json(appointment: Appointment, now: datetime, *, full: bool = False) -> dict[str, Any]:
    """What a page shows of an appointment; the phone masked unless ``full``."""
    opens, closes = window(appointment)
    return {
        "code": show_code(appointment.code),
        "status": status_at(appointment, now),
        "item": {"code": appointment.item.code, "name": appointment.item.name},
        "station": {"code": appointment.station.code, "name": appointment.station.name,
                    "address": appointment.station.address},
        "day": iso(appointment.day),
        "starts_at": iso(appointment.starts_at),
        "ends_at": iso(appointment.ends_at),
        "time": f"{appointment.starts_at.astimezone(LOCAL_TZ):%H:%M}–"
                f"{appointment.ends_at.astimezone(LOCAL_TZ):%H:%M}",
        "check_in": {"opens": iso(opens), "closes": iso(closes)},
        "name": appointment.name,
        "phone": appointment.phone if full else cases.mask_phone(appointment.phone),
        "materials": [
            {"name": m.name, "requirement": m.requirement, "copies": m.copies}
            for m in appointment.item.materials
        ],
    }  # fmt: skip


def slot_json(slot: capacity.Slot) -> dict[str, Any]:
    return {"starts_at": iso(slot.starts_at), "time": slot.local_start,
            "capacity": slot.capacity, "free": slot.free}  # fmt: skip


def parse_start(day: date, hhmm: str) -> datetime:
    """A slot's start from a local day and ``HH:MM``."""
    return datetime.combine(day, capacity.parse_time(hhmm, "time"), LOCAL_TZ)
