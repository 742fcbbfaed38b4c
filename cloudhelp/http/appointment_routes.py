"""HTTP routes for appointments (预约): free slots, booking (a resident, or staff on their
behalf), finding, cancelling and rebooking by code and the phone's last four digits, the slip
PDF, and the service hours supervisors set (docs/appointments.md, docs/api.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import sys
from collections import OrderedDict
from datetime import date
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import iso
from cloudhelp.core.config import Settings
from cloudhelp.core.throttle import Throttle, Throttles
from cloudhelp.domain import appointments, audit, capacity, catalog, notifier, slips_pdf
from cloudhelp.http.auth import current_kiosk, current_staff, staff_or_none
from cloudhelp.http.bodies import bounded_date, parse_body, query_date
from cloudhelp.http.errors import ApiError, bad_request
from cloudhelp.http.kiosk_routes import lookup_throttled
from cloudhelp.http.state import AppState
from cloudhelp.store.models import (
    ACCOUNT_ROLES,
    SUPERVISOR_ROLES,
    Appointment,
    Department,
    Staff,
    Station,
)

# Who may book on a resident's behalf (recorded as the booker): hall staff, supervisors and
# station attendants (驿站工作人员, at the station's counter).
BOOKING_ROLES: tuple[str, ...] = ACCOUNT_ROLES
# The HTTP status of a refused booking, by its code (others: 400).
REFUSAL_STATUS = {
    "no_such_appointment": 404,
    "slot_full": 409,
    "already_booked": 409,
    "appointment_not_cancellable": 409,
    "appointment_not_rebookable": 409,
}
DRAWN_KEPT = 8
DRAW_SECONDS = 120.0
CODE_THROTTLE_KEY = web.AppKey[Throttle]("appointment_code_throttle")
BOOKING_THROTTLE_KEY = web.AppKey[Throttle]("appointment_booking_throttle")

Code = Annotated[str, Field(min_length=1, max_length=32)]
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
HHMM = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$")]
Last4 = Annotated[str, Field(min_length=4, max_length=4, pattern=r"^\d{4}$")]


class NewAppointment(BaseModel):
    """A booking: the item, the station, the slot (local date and start) and the person."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    item: Code
    station: Code
    date: Day
    time: HHMM
    name: Annotated[str, Field(min_length=1, max_length=50)]
    phone: Annotated[str, Field(min_length=1, max_length=20)]
    id_number: Annotated[str, Field(max_length=18)] = ""


class AppointmentKey(BaseModel):
    """An appointment's booking code and the last four digits of the booker's phone."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: Annotated[str, Field(min_length=1, max_length=16)]
    last4: Last4


class KioskCheckIn(BaseModel):
    """A code typed at a kiosk, checked before the device check (nothing is written)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: Annotated[str, Field(min_length=1, max_length=16)]


class Rebook(AppointmentKey):
    """Move the appointment to another slot (``station`` optional: the same one)."""

    date: Day
    time: HHMM
    station: Code | None = None


class WeekHours(BaseModel):
    """A weekday's hours; a break (午休: both ends, inside the hours) is booked in no slot."""

    model_config = ConfigDict(extra="forbid")
    weekday: Annotated[int, Field(ge=0, le=6)]
    opens: HHMM
    closes: HHMM
    break_starts: HHMM | None = None
    break_ends: HHMM | None = None
    staff: Annotated[int, Field(ge=1, le=50)]


class CapacityBody(BaseModel):
    """A department's weekday hours at a station (replacing the ones it had)."""

    model_config = ConfigDict(extra="forbid")
    department: Code
    station: Code
    week: Annotated[list[WeekHours], Field(max_length=7)]


class HoursException(BaseModel):
    """One date's hours in place of the weekday's (``staff`` 0: closed that day)."""

    model_config = ConfigDict(extra="forbid")
    department: Code
    station: Code
    date: Day
    opens: HHMM = "09:00"
    closes: HHMM = "17:00"
    break_starts: HHMM | None = None
    break_ends: HHMM | None = None
    staff: Annotated[int, Field(ge=0, le=50)]
    note: Annotated[str, Field(max_length=100)] = ""


def refused(exc: appointments.AppointmentError | capacity.CapacityError) -> ApiError:
    details = exc.details if isinstance(exc, appointments.AppointmentError) else {}
    return ApiError(REFUSAL_STATUS.get(exc.code, 400), exc.code, exc.message, None, **details)


def _code_limits(request: web.Request, who: str, code: str) -> tuple[tuple[str, int], ...]:
    settings = AppState.of(request.app).settings
    return (
        (f"code:{appointments.normalise_code(code)}", settings.lookup_failures_per_case),
        (who, settings.lookup_failures_per_kiosk),
    )


async def guard(request: web.Request, who: str, code: str) -> None:
    """Refuse (429 ``lookup_throttled``) a code asked for too often in vain, or by an address
    (a kiosk) that asked for too many codes in vain: as the kiosk's case lookup, 5 failures a
    code and 20 an asker within 15 minutes (``lookup_*`` settings)."""
    wait = await request.app[CODE_THROTTLE_KEY].wait(_code_limits(request, who, code))
    if wait > 0:
        raise lookup_throttled(wait)


async def missed(request: web.Request, who: str, code: str) -> None:
    """Count a lookup that found no appointment (a wrong code, or wrong digits)."""
    await request.app[CODE_THROTTLE_KEY].add(_code_limits(request, who, code))


def booking_throttled(wait: float) -> ApiError:
    seconds, minutes = math.ceil(wait), math.ceil(wait / 60)
    return ApiError(
        429,
        "booking_throttled",
        f"Too many bookings from this address; try again in {minutes} min, or ask the staff "
        "at a community station to book for you.",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
        minutes=minutes,
    )


def asker(request: web.Request) -> str:
    return f"address:{request.remote}"


async def _station(session: AsyncSession, code: str) -> Station:
    station = await session.scalar(select(Station).where(Station.code == code))
    if station is None:
        raise ApiError(400, "unknown_station", f"There is no station {code!r}.")
    return station


async def free_slots(request: web.Request) -> web.Response:
    """The item's slots on a day at a station, each with its places left."""
    state = AppState.of(request.app)
    item_code, station_code = request.query.get("item", ""), request.query.get("station", "")
    day = query_date(request, "date")
    if not item_code or not station_code or day is None:
        raise bad_request("Give item, station and date.")
    now = state.callcenter.appointment_clock()
    async with state.db.read() as session:
        item = await catalog.get_item(session, item_code[:32])
        if item is None:
            raise ApiError(400, "unknown_item", f"There is no item {item_code[:32]!r}.")
        station = await _station(session, station_code[:32])
        slots = await capacity.slots_on(session, item, station.id, day)
        minutes = await capacity.slot_minutes(session, item)
    return web.json_response(
        {
            "date": day.isoformat(),
            "working_day": workdays.is_official_working_day(day),
            "calendar_installed": not workdays.is_working_day(day)[1],
            "slot_minutes": minutes,
            "slots": [appointments.slot_json(s) for s in slots if s.starts_at > now],
            # The day's slots already begun (a past day's are all): "gone", not "not served".
            "passed": sum(1 for s in slots if s.starts_at <= now),
        },
        dumps=state.dumps,
    )


def slip_url(appointment: Appointment) -> str:
    return f"/api/v1/appointments/{appointment.code}/slip.pdf?last4={appointment.phone[-4:]}"


async def book(request: web.Request) -> web.Response:
    """Book a slot; a signed-in staff member books on the resident's behalf (recorded)."""
    body = await parse_body(request, NewAppointment)
    staff = await staff_or_none(request, BOOKING_ROLES)
    state = AppState.of(request.app)
    if staff is None:  # a resident's own booking: a script must not fill a day's slots
        limit = state.settings.bookings_per_address
        wait = await request.app[BOOKING_THROTTLE_KEY].take([(asker(request), limit)])
        if wait > 0:
            raise booking_throttled(wait)
    now = state.callcenter.appointment_clock()
    day = bounded_date(body.date, "date")
    try:
        async with state.db.write() as session:
            item = await catalog.get_item(session, body.item)
            if item is None:
                raise ApiError(400, "unknown_item", f"There is no item {body.item!r}.")
            station = await _station(session, body.station)
            booked = await appointments.book(
                session, item=item, station_id=station.id,
                starts_at=appointments.parse_start(day, body.time),
                person=appointments.Person(body.name, body.phone, body.id_number),
                booked_by=staff.username if staff else "resident", now=now,
                one_per_phone=staff is None,
            )  # fmt: skip
            if staff is not None:
                await audit.append(session, audit.staff_actor(staff), "appointment.booked_for",
                                   subject_kind="appointment", subject=booked.code,
                                   item=item.code, station=station.code)  # fmt: skip
            result = appointments.as_json(booked, now, full=True)
            url = slip_url(booked)
    except (appointments.AppointmentError, capacity.CapacityError) as exc:
        raise refused(exc) from None
    return web.json_response(
        {"appointment": result, "slip_url": url}, status=201, dumps=state.dumps
    )


async def find(request: web.Request) -> web.Response:
    """A resident finds their appointment by code and the phone's last four digits."""
    body = await parse_body(request, AppointmentKey)
    await guard(request, asker(request), body.code)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.read() as session:
            found = await appointments.for_resident(session, body.code, body.last4)
            result = appointments.as_json(found, now)
    except appointments.AppointmentError as exc:
        await missed(request, asker(request), body.code)
        raise refused(exc) from None
    return web.json_response({"appointment": result}, dumps=state.dumps)


async def kiosk_check(request: web.Request) -> web.Response:
    """May this code be checked in at this kiosk now? What the resident booked if so; the
    check-in itself is ``ticket.take {appointment}`` (docs/protocol.md)."""
    kiosk = await current_kiosk(request)
    body = await parse_body(request, KioskCheckIn)
    await guard(request, f"kiosk:{kiosk.id}", body.code)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.read() as session:
            found = await appointments.may_check_in(session, body.code, kiosk.station_id, now)
            result = appointments.as_json(found, now)
    except appointments.AppointmentError as exc:
        if exc.code == "no_such_appointment":
            await missed(request, f"kiosk:{kiosk.id}", body.code)
        raise refused(exc) from None
    return web.json_response({"appointment": result}, dumps=state.dumps)


async def cancel(request: web.Request) -> web.Response:
    body = await parse_body(request, AppointmentKey)
    await guard(request, asker(request), body.code)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.write() as session:
            found = await appointments.for_resident(session, body.code, body.last4)
            await appointments.cancel(session, found, now)
            result = appointments.as_json(found, now)
    except appointments.AppointmentError as exc:
        if exc.code == "no_such_appointment":
            await missed(request, asker(request), body.code)
        raise refused(exc) from None
    return web.json_response({"appointment": result}, dumps=state.dumps)


async def rebook(request: web.Request) -> web.Response:
    body = await parse_body(request, Rebook)
    await guard(request, asker(request), body.code)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    day = bounded_date(body.date, "date")
    try:
        async with state.db.write() as session:
            found = await appointments.for_resident(session, body.code, body.last4)
            station_id = (await _station(session, body.station)).id if body.station else None
            moved = await appointments.rebook(
                session, found, starts_at=appointments.parse_start(day, body.time),
                station_id=station_id, actor="resident", now=now,
            )  # fmt: skip
            result = appointments.as_json(moved, now, full=True)
            url = slip_url(moved)
    except (appointments.AppointmentError, capacity.CapacityError) as exc:
        if exc.code == "no_such_appointment":
            await missed(request, asker(request), body.code)
        raise refused(exc) from None
    return web.json_response({"appointment": result, "slip_url": url}, dumps=state.dumps)


class SlipDrawer:
    """Draws slips in a child process (its font's memory goes with it), one drawing at a time
    (a CJK font is embedded: it costs CPU); the last few drawn are kept, so asking again costs
    nothing."""

    def __init__(self) -> None:
        self._one_at_a_time = asyncio.Lock()
        self._drawn: OrderedDict[str, bytes] = OrderedDict()

    async def draw(self, slips: list[slips_pdf.Slip]) -> bytes:
        payload = json.dumps([dataclasses.asdict(s) for s in slips], ensure_ascii=False).encode()
        key = hashlib.sha256(payload).hexdigest()
        async with self._one_at_a_time:
            if key in self._drawn:
                self._drawn.move_to_end(key)
                return self._drawn[key]
            data = await self._child(payload)
            self._drawn[key] = data
            while len(self._drawn) > DRAWN_KEPT:
                self._drawn.popitem(last=False)
            return data

    @staticmethod
    async def _child(payload: bytes) -> bytes:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cloudhelp.domain.slips_pdf",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            data, err = await asyncio.wait_for(child.communicate(payload), DRAW_SECONDS)
        except TimeoutError:
            child.kill()
            await child.wait()
            raise ApiError(503, "service_unavailable", "Drawing the slips took too long.") from None
        if child.returncode == slips_pdf.FONT_MISSING_STATUS:
            raise ApiError(503, "font_missing", err.decode(errors="replace").strip())
        if child.returncode != 0 or not data.startswith(b"%PDF"):
            raise RuntimeError(f"drawing slips failed: {err.decode(errors='replace')[-500:]}")
        return data


SLIPS_KEY = web.AppKey("slip_drawer", SlipDrawer)


async def draw_slips(request: web.Request, booked: list[Appointment]) -> bytes:
    """The PDF of the appointments' slips (SlipDrawer); they name the /book page at
    ``public_url``, or at the address this request was sent to."""
    public = AppState.of(request.app).settings.public_url
    site = str(public) if public is not None else str(request.url.origin()) + "/"
    book = f"{site}book"
    return await request.app[SLIPS_KEY].draw([slips_pdf.slip_of(a, book) for a in booked])


def pdf_response(data: bytes, name: str) -> web.Response:
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


async def slip(request: web.Request) -> web.Response:
    """An appointment's slip: with ``last4`` for the resident, without for signed-in staff."""
    state = AppState.of(request.app)
    code = request.match_info["booking"][:16]
    last4 = request.query.get("last4", "")[:4]
    staff: Staff | None = None if last4 else await current_staff(request, BOOKING_ROLES)
    if staff is None:
        await guard(request, asker(request), code)
    async with state.db.read() as session:
        try:
            if staff is None:
                found = await appointments.for_resident(session, code, last4)
            else:
                found = await appointments.find(session, code)  # type: ignore[assignment]
                if found is None:
                    raise appointments.AppointmentError(
                        "no_such_appointment", "There is no appointment with this code."
                    )
        except appointments.AppointmentError as exc:
            if staff is None:
                await missed(request, asker(request), code)
            raise refused(exc) from None
        for material in found.item.materials:  # loaded before the session closes
            _ = material.name
    return pdf_response(await draw_slips(request, [found]), f"appointment-{found.code}.pdf")


async def day_reminders(request: web.Request) -> web.Response:
    """Reminders of every appointment booked for a day (campaign or not), as CSV: the notifier
    seam (docs/appointments.md, "Reminders"); each one exported is marked reminded. For
    supervisors: the file holds every booker's full phone number, whatever the department."""
    staff = await current_staff(request, SUPERVISOR_ROLES)
    day = query_date(request, "date")
    if day is None:
        raise bad_request("Give the day (date).")
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    async with state.db.write() as session:
        booked = list(
            (
                await session.scalars(
                    select(Appointment)
                    .where(Appointment.day == day, Appointment.status == "booked")
                    .order_by(Appointment.starts_at, Appointment.id)
                )
            ).all()
        )
        data = notifier.remind(notifier.CsvNotifier(), booked, now)
        await audit.append(session, audit.staff_actor(staff), "appointment.reminders_exported",
                           subject_kind="day", subject=day.isoformat())  # fmt: skip
    return web.Response(
        body=data,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="reminders-{day}.csv"'},
    )


# ------------------------------------------------------------------ service hours


async def _capacity_json(
    session: AsyncSession, department: Department, station: Station
) -> dict[str, object]:
    schedule = await capacity.load_schedule(session, [department.id], [station.id])
    week = [{"weekday": k[2], **h.fields()} for k, h in sorted(schedule.weekly.items())]
    exceptions = [{"date": iso(k[2]), **h.fields()} for k, h in sorted(schedule.exceptions.items())]
    return {"department": department.code, "station": station.code, "week": week,
            "exceptions": exceptions}  # fmt: skip


async def _department(session: AsyncSession, code: str) -> Department:
    department = await catalog.get_department(session, code)
    if department is None:
        raise ApiError(400, "unknown_department", f"There is no department {code!r}.")
    return department


async def get_capacity(request: web.Request) -> web.Response:
    """A department's hours at a station: weekdays and exceptions."""
    await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        department = await _department(session, request.query.get("department", "")[:32])
        station = await _station(session, request.query.get("station", "")[:32])
        result = await _capacity_json(session, department, station)
    return web.json_response(result, dumps=state.dumps)


async def put_capacity(request: web.Request) -> web.Response:
    staff = await current_staff(request, SUPERVISOR_ROLES)
    body = await parse_body(request, CapacityBody)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            department = await _department(session, body.department)
            station = await _station(session, body.station)
            week = {
                w.weekday: capacity.Hours.parse(
                    w.opens, w.closes, w.staff, w.break_starts, w.break_ends
                )
                for w in body.week
            }
            await capacity.set_weekly_hours(session, department.id, station.id, week)
            await audit.append(session, audit.staff_actor(staff), "setting.capacity",
                               subject_kind="station", subject=station.code,
                               department=department.code, week=len(week))  # fmt: skip
            result = await _capacity_json(session, department, station)
    except capacity.CapacityError as exc:
        raise refused(exc) from None
    return web.json_response(result, dumps=state.dumps)


async def put_exception(request: web.Request) -> web.Response:
    staff = await current_staff(request, SUPERVISOR_ROLES)
    body = await parse_body(request, HoursException)
    day: date = bounded_date(body.date, "date")
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            department = await _department(session, body.department)
            station = await _station(session, body.station)
            hours = capacity.Hours.parse(body.opens, body.closes, body.staff, body.break_starts,
                                         body.break_ends, closed_allowed=True)  # fmt: skip
            await capacity.set_exception(session, department.id, station.id, day, hours,
                                         body.note)  # fmt: skip
            await audit.append(session, audit.staff_actor(staff), "setting.capacity",
                               subject_kind="station", subject=station.code,
                               department=department.code, day=day.isoformat(),
                               staff=body.staff)  # fmt: skip
            result = await _capacity_json(session, department, station)
    except capacity.CapacityError as exc:
        raise refused(exc) from None
    return web.json_response(result, dumps=state.dumps)


def setup(app: web.Application, settings: Settings, throttles: Throttles) -> None:
    app[SLIPS_KEY] = SlipDrawer()
    app[CODE_THROTTLE_KEY] = throttles(
        "appointment_code",
        max(settings.lookup_failures_per_case, settings.lookup_failures_per_kiosk),
        settings.lookup_window_seconds,
    )
    app[BOOKING_THROTTLE_KEY] = throttles(
        "appointment_booking", settings.bookings_per_address, settings.booking_window_seconds
    )
    app.router.add_get("/api/v1/appointments/slots", free_slots)
    app.router.add_post("/api/v1/appointments", book)
    app.router.add_post("/api/v1/appointments/find", find)
    app.router.add_post("/api/v1/appointments/cancel", cancel)
    app.router.add_post("/api/v1/kiosk/appointments/check", kiosk_check)
    app.router.add_post("/api/v1/appointments/rebook", rebook)
    app.router.add_get("/api/v1/appointments/reminders.csv", day_reminders)
    app.router.add_get(r"/api/v1/appointments/{booking:[0-9-]{1,16}}/slip.pdf", slip)
    app.router.add_get("/api/v1/capacity", get_capacity)
    app.router.add_put("/api/v1/capacity", put_capacity)
    app.router.add_put("/api/v1/capacity/exceptions", put_exception)
