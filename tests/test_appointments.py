"""Appointments over HTTP and the WebSocket, on SQLite and PostgreSQL: booking (a resident, and
staff on their behalf), every refusal with its stable code and nothing changed, cancel and
rebook by code and the phone's last four digits, the slip, the kiosk's check, service hours,
the order of service and the roster's checks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.core.config import Settings
from cloudhelp.devtools import demo_campaign
from cloudhelp.domain import appointments, campaigns, capacity, catalog, queue, roster
from cloudhelp.store.models import Appointment, AuditEvent, Campaign, Ticket
from tests.appointmentkit import (
    as_csv,
    as_xlsx,
    at,
    roster_rows,
    set_clock,
    supervisor,
    weekday_hours,
    with_three_bad_rows,
)
from tests.callkit import CallServer, running_server

MONDAY = date(2026, 6, 15)  # a working day; 19 June (Friday) is the Dragon Boat Festival
HOLIDAY = date(2026, 6, 19)
# A Friday of a year the official calendar does not hold: it may turn out a holiday (1 January).
UNPUBLISHED = date(2031, 1, 3)
PERSON = {"name": "刘海生", "phone": "13812345678"}


async def appointment_count(server: CallServer) -> int:
    async with server.state.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Appointment)) or 0)


async def post(server: CallServer, path: str, body: dict[str, Any], status: int,
               cookies: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    async with server.http.post(path, json=body, cookies=cookies or {}) as r:
        assert r.status == status, (path, r.status, await r.text())
        result: dict[str, Any] = await r.json()
        return result


async def two_staff_hours(server: CallServer) -> dict[str, str]:
    """前关 serves fishing 09:00–10:00 on weekdays with 2 staff (six 10-minute slots of 2)."""
    boss = await supervisor(server)
    await weekday_hours(server, boss, "DLW-QG", "09:00", "10:00", staff=2)
    set_clock(server, at(MONDAY - timedelta(days=7), "10:00"))
    return boss


async def day_slots(server: CallServer, day: date) -> dict[str, Any]:
    query = {"item": "NYNC-002", "station": "DLW-QG", "date": day.isoformat()}
    async with server.http.get("/api/v1/appointments/slots", params=query) as r:
        assert r.status == 200, await r.text()
        result: dict[str, Any] = await r.json()
        return result


def booking(day: date, time: str, **extra: Any) -> dict[str, Any]:
    return {"item": "NYNC-002", "station": "DLW-QG", "date": day.isoformat(), "time": time,
            **PERSON, **extra}  # fmt: skip


async def test_a_station_attendant_books_on_a_residents_behalf(demo_url: str) -> None:
    """The slip handed over names where to move or cancel it: the /book page at the
    district's public_url (its QR and a link)."""
    public = "https://ybb.example.gov.cn/"
    async with running_server(demo_url, public_url=public) as server:
        await two_staff_hours(server)
        attendant = {"cloudhelp_session": await server.staff_token("zhouyan")}
        body = booking(MONDAY, "09:10", name="周海", phone="13840000003")
        made = await post(server, "/api/v1/appointments", body, 201, attendant)
        async with server.http.get(made["slip_url"], cookies=attendant) as r:
            assert r.status == 200
            assert b"/URI (https://ybb.example.gov.cn/book)" in await r.read()
        async with server.state.db.read() as session:
            booked = (await session.scalars(select(Appointment))).all()
            audited = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "appointment.booked_for")
            )
        assert [a.booked_by for a in booked] == ["zhouyan"] and audited == 1


async def test_a_residents_own_bookings_are_limited_and_staff_are_not(demo_url: str) -> None:
    """A resident's own booking: one appointment to come per item and phone (409
    already_booked, whatever the slot), and a few attempts per address per window (429
    booking_throttled with Retry-After; refused attempts count). Staff booking on a
    resident's behalf are limited by neither; a cancelled appointment frees the phone."""
    async with running_server(demo_url, bookings_per_address=3) as server:
        await two_staff_hours(server)
        first = await post(server, "/api/v1/appointments", booking(MONDAY, "09:00"), 201)
        again = await post(server, "/api/v1/appointments", booking(MONDAY, "09:30"), 409)
        assert again["error"]["code"] == "already_booked", again
        assert "last four digits" in again["error"]["message"]
        assert first["appointment"]["code"] not in json.dumps(again)  # nothing of the first
        # Another phone books the same item.
        other = booking(MONDAY, "09:10", phone="13840000005")
        second = await post(server, "/api/v1/appointments", other, 201)
        # A clerk books it for the same phone (a family member's call, say): not refused.
        clerk = {"cloudhelp_session": await server.staff_token("zhaogang")}
        await post(server, "/api/v1/appointments", booking(MONDAY, "09:20"), 201, clerk)
        assert await appointment_count(server) == 3

        # Three attempts from this address (one refused): the fourth is refused as too many.
        fourth = booking(MONDAY, "09:40", phone="13840000006")
        throttled = await post(server, "/api/v1/appointments", fourth, 429)
        assert throttled["error"]["code"] == "booking_throttled", throttled
        assert throttled["error"]["retry_after"] > 0 and throttled["error"]["minutes"] == 60
        assert await appointment_count(server) == 3
        # Staff are not throttled.
        await post(server, "/api/v1/appointments", fourth, 201, clerk)
        # A cancelled appointment no longer holds its phone.
        key = {"code": second["appointment"]["code"], "last4": "0005"}
        await post(server, "/api/v1/appointments/cancel", key, 200)
        async with server.state.db.read() as session:
            item = await catalog.get_item(session, "NYNC-002")
            assert item is not None
            now = server.state.callcenter.appointment_clock()
            assert not await appointments.has_one_to_come(session, item.id, "13840000005", now)
            assert await appointments.has_one_to_come(session, item.id, "13812345678", now)


async def test_refusals_are_clear_and_change_nothing(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        await two_staff_hours(server)
        slots = await day_slots(server, MONDAY)
        assert [s["time"] for s in slots["slots"]] == ["09:00", "09:10", "09:20", "09:30",
                                                       "09:40", "09:50"]  # fmt: skip
        assert {s["capacity"] for s in slots["slots"]} == {2}
        assert slots["working_day"] and slots["calendar_installed"]
        unpublished = await day_slots(server, UNPUBLISHED)  # no slot offered on such a day
        assert unpublished["slots"] == [] and not unpublished["working_day"]
        assert unpublished["calendar_installed"] is False
        # Two places in the 09:00 slot: a resident books one, a staff member books the other on
        # a resident's behalf (audited, recorded as the booker).
        first = await post(server, "/api/v1/appointments", booking(MONDAY, "09:00"), 201)
        clerk = {"cloudhelp_session": await server.staff_token("zhaogang")}
        other = booking(MONDAY, "09:00", name="王德福", phone="13840000002")
        second = await post(server, "/api/v1/appointments", other, 201, clerk)
        assert first["appointment"]["code"] != second["appointment"]["code"]
        async with server.state.db.read() as session:
            rows = (await session.scalars(select(Appointment).order_by(Appointment.id))).all()
            audited = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "appointment.booked_for")
            )
        assert [r.booked_by for r in rows] == ["resident", "zhaogang"] and audited == 1

        # Every refusal: its status and stable code, nothing written.
        cases = [
            (booking(MONDAY, "09:00", name="第三人"), 409, "slot_full"),
            (booking(HOLIDAY, "09:00"), 400, "slot_on_holiday"),
            (booking(UNPUBLISHED, "09:00"), 400, "calendar_not_installed"),
            (booking(MONDAY + timedelta(days=5), "09:00"), 400, "slot_on_holiday"),  # Saturday
            (booking(MONDAY, "09:05"), 400, "no_such_slot"),
            (booking(MONDAY, "10:00"), 400, "no_such_slot"),
            (booking(MONDAY - timedelta(days=14), "09:00"), 400, "slot_in_past"),
            (booking(MONDAY, "09:10", phone="1381234"), 400, "bad_phone"),
            (booking(MONDAY, "09:10", id_number="210211199003071230"), 400, "bad_id_number"),
            (booking(MONDAY, "09:10", item="SCJG-014"), 400, "not_cloud"),
            (booking(MONDAY, "09:10", station="NOPE"), 400, "unknown_station"),
            (booking(MONDAY, "09:10", station="DLW-TL"), 400, "no_such_slot"),  # no hours there
        ]
        for body, status, code in cases:
            refused = await post(server, "/api/v1/appointments", body, status)
            assert refused["error"]["code"] == code, (body, refused)
            assert refused["error"]["message"]
        assert await appointment_count(server) == 2

        # Found, moved and cancelled by code and the phone's last four digits.
        code = first["appointment"]["code"]
        key = {"code": code, "last4": "5678"}
        found = await post(server, "/api/v1/appointments/find", key, 200)
        assert found["appointment"]["status"] == "booked"
        assert found["appointment"]["phone"] == "138****5678"  # masked unless just booked
        for wrong in ({"code": code, "last4": "0000"}, {"code": "12345678", "last4": "5678"}):
            refused = await post(server, "/api/v1/appointments/find", wrong, 404)
            assert refused["error"]["code"] == "no_such_appointment"
        # 09:20 filled by two others: moving there is refused and the appointment stays.
        for n in (3, 4):
            other = booking(MONDAY, "09:20", name=f"渔民{n}", phone=f"1384000000{n}")
            await post(server, "/api/v1/appointments", other, 201)
        move = key | {"date": MONDAY.isoformat(), "time": "09:20"}
        refused = await post(server, "/api/v1/appointments/rebook", move, 409)
        assert refused["error"]["code"] == "slot_full"
        assert (await post(server, "/api/v1/appointments/find", key, 200))["appointment"][
            "status"
        ] == "booked"
        assert await appointment_count(server) == 4
        moved = await post(server, "/api/v1/appointments/rebook", move | {"time": "09:10"}, 200)
        new_key = {"code": moved["appointment"]["code"], "last4": "5678"}
        assert (await post(server, "/api/v1/appointments/find", key, 200))["appointment"][
            "status"
        ] == "rebooked"
        assert (await post(server, "/api/v1/appointments/cancel", key, 409))["error"][
            "code"
        ] == "appointment_not_cancellable"
        cancelled = await post(server, "/api/v1/appointments/cancel", new_key, 200)
        assert cancelled["appointment"]["status"] == "cancelled"
        # The freed places are bookable again.
        slots = await day_slots(server, MONDAY)
        assert {s["time"]: s["free"] for s in slots["slots"]}["09:00"] == 1
        assert {s["time"]: s["free"] for s in slots["slots"]}["09:10"] == 2

        # The slip: the resident's with the last four digits, staff's without; others refused.
        code2 = second["appointment"]["code"].replace("-", "")
        async with server.http.get(f"/api/v1/appointments/{code2}/slip.pdf?last4=0002") as r:
            slip = await r.read()
            assert r.status == 200 and slip.startswith(b"%PDF")
        # Where to move or cancel it: no public_url set, the /book page where it was asked.
        assert f"/URI ({server.base_url}/book)".encode() in slip
        async with server.http.get(f"/api/v1/appointments/{code2}/slip.pdf?last4=9999") as r:
            assert r.status == 404
        async with server.http.get(f"/api/v1/appointments/{code2}/slip.pdf") as r:
            assert r.status == 401
        async with server.http.get(f"/api/v1/appointments/{code2}/slip.pdf",
                                   cookies=clerk) as r:  # fmt: skip
            assert r.status == 200

        # A day's reminders (the CSV notifier): the one still booked that day, in full.
        async with server.http.get("/api/v1/appointments/reminders.csv",
                                   params={"date": MONDAY.isoformat()}) as r:  # fmt: skip
            assert r.status == 401
        async with server.http.get("/api/v1/appointments/reminders.csv", cookies=clerk,
                                   params={"date": MONDAY.isoformat()}) as r:  # fmt: skip
            assert r.status == 403  # every department's phones: for supervisors
        boss = await supervisor(server)
        async with server.http.get("/api/v1/appointments/reminders.csv", cookies=boss,
                                   params={"date": MONDAY.isoformat()}) as r:  # fmt: skip
            assert r.status == 200 and r.content_type == "text/csv"
            lines = (await r.read()).decode("utf-8-sig").splitlines()
        assert len(lines) == 4 and lines[0].startswith("预约码,姓名,手机号")  # 09:00 ×1, 09:20 ×2
        assert any("13840000002" in line and "王德福您好" in line for line in lines)

        # Guessing the digits: after 5 misses on a code (one above) it is refused for a while,
        # even with the right digits.
        guess = {"code": code2, "last4": "1111"}
        for _ in range(4):
            await post(server, "/api/v1/appointments/find", guess, 404)
        throttled = await post(server, "/api/v1/appointments/find", guess | {"last4": "0002"}, 429)
        assert throttled["error"]["code"] == "lookup_throttled"
        assert throttled["error"]["minutes"] == 15


async def test_check_in_refusals_at_the_kiosk_change_nothing(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        await two_staff_hours(server)
        booked = await post(server, "/api/v1/appointments", booking(MONDAY, "09:30"), 201)
        code = booked["appointment"]["code"]
        here = await server.kiosk_credential("QG-01", "DLW-QG")
        there = await server.kiosk_credential("TL-01", "DLW-TL")

        async def check(credential: str, typed: str, status: int) -> dict[str, Any]:
            headers = {"Authorization": f"Kiosk {credential}"}
            async with server.http.post("/api/v1/kiosk/appointments/check",
                                        json={"code": typed}, headers=headers) as r:  # fmt: skip
                assert r.status == status, await r.text()
                result: dict[str, Any] = await r.json()
                return result

        start = at(MONDAY, "09:30")
        for instant, credential, typed, code_expected in (
            (start - timedelta(minutes=31), here, code, "appointment_too_early"),
            (start + timedelta(minutes=16), here, code, "appointment_too_late"),
            (start, there, code, "appointment_wrong_station"),
        ):
            set_clock(server, instant)
            assert (await check(credential, typed, 400))["error"]["code"] == code_expected
        assert (await check(here, "9999-9999", 404))["error"]["code"] == "no_such_appointment"
        set_clock(server, start - timedelta(minutes=30))  # the window's first minute
        ok = await check(here, code, 200)
        assert ok["appointment"]["item"]["code"] == "NYNC-002"
        kiosk = await server.connect({"kind": "kiosk", "credential": here})
        await kiosk.send({"type": "ticket.take", "appointment": code})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        assert ticket["appointment"]["code"] == code.replace("-", "")
        await kiosk.send({"type": "ticket.cancel"})
        await kiosk.expect_where("ticket", lambda f: f["ticket"]["status"] == "cancelled")
        # Checked in once: the code again is refused, by HTTP and by the protocol.
        assert (await check(here, code, 400))["error"]["code"] == "appointment_used"
        # ... at another station too: said as used, not "check in at the other station" (a
        # walk was sent to a station for a cancelled booking).
        assert (await check(there, code, 400))["error"]["code"] == "appointment_used"
        await kiosk.send({"type": "ticket.take", "appointment": code})
        assert (await kiosk.expect("error"))["code"] == "appointment_used"
        async with server.state.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Ticket)) == 1
        # A missed appointment (window closed, never checked in) is a no-show and may be moved.
        late = await post(server, "/api/v1/appointments", booking(MONDAY, "09:40"), 201)
        set_clock(server, at(MONDAY, "09:56"))
        key = {"code": late["appointment"]["code"], "last4": "5678"}
        assert (await post(server, "/api/v1/appointments/find", key, 200))["appointment"][
            "status"
        ] == "no_show"
        tuesday = (MONDAY + timedelta(days=1)).isoformat()
        moved = await post(server, "/api/v1/appointments/rebook",
                           key | {"date": tuesday, "time": "09:40"}, 200)  # fmt: skip
        assert moved["appointment"]["status"] == "booked"


async def test_no_slot_is_offered_in_the_break(demo_url: str) -> None:
    """Hours with the hall's lunch break (午休): the morning's slots end by 12:00, the
    afternoon's begin at 13:30, booking 12:00 is refused; a break given by one end, or outside
    the hours, is refused with ``bad_break`` and changes nothing."""
    async with running_server(demo_url) as server:
        boss = await supervisor(server)
        week = [{"weekday": d, "opens": "09:00", "closes": "16:00", "break_starts": "12:00",
                 "break_ends": "13:30", "staff": 1} for d in range(5)]  # fmt: skip
        body = {"department": "NYNC", "station": "DLW-QG", "week": week}
        async with server.http.put("/api/v1/capacity", json=body, cookies=boss) as r:
            assert r.status == 200, await r.text()
            saved = (await r.json())["week"]
        assert saved == week
        set_clock(server, at(MONDAY - timedelta(days=3), "09:00"))
        starts = [at(MONDAY, s["time"]) for s in (await day_slots(server, MONDAY))["slots"]]
        length = starts[1] - starts[0]
        assert starts[0] == at(MONDAY, "09:00") and at(MONDAY, "13:30") in starts
        assert all(t + length <= at(MONDAY, "12:00") or t >= at(MONDAY, "13:30") for t in starts)
        refused = await post(server, "/api/v1/appointments", booking(MONDAY, "12:00"), 400)
        assert refused["error"]["code"] == "no_such_slot"

        wrong_breaks = [{"break_starts": "12:00"}, {"break_starts": "08:00", "break_ends": "09:30"},
                        {"break_starts": "13:30", "break_ends": "12:00"}]  # fmt: skip
        for wrong_break in wrong_breaks:
            one_day = {"weekday": 0, "opens": "09:00", "closes": "16:00", "staff": 1} | wrong_break
            async with server.http.put("/api/v1/capacity", json=body | {"week": [one_day]},
                                       cookies=boss) as r:  # fmt: skip
                assert r.status == 400 and (await r.json())["error"]["code"] == "bad_break"
        query = {"department": "NYNC", "station": "DLW-QG"}
        async with server.http.get("/api/v1/capacity", params=query, cookies=boss) as r:
            assert (await r.json())["week"] == saved


async def test_capacity_is_for_supervisors_and_checked(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        boss = await supervisor(server)
        clerk = {"cloudhelp_session": await server.staff_token("zhaogang")}
        week = [{"weekday": 0, "opens": "10:00", "closes": "09:00", "staff": 1}]
        body = {"department": "NYNC", "station": "DLW-QG", "week": week}
        async with server.http.put("/api/v1/capacity", json=body, cookies=clerk) as r:
            assert r.status == 403
        async with server.http.put("/api/v1/capacity", json=body, cookies=boss) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_hours"
        wrong_breaks = [{"break_starts": "12:00"}, {"break_starts": "08:00", "break_ends": "09:30"},
                        {"break_starts": "13:30", "break_ends": "12:00"}]  # fmt: skip
        for wrong_break in wrong_breaks:
            week = [{"weekday": 0, "opens": "09:00", "closes": "16:00", "staff": 1} | wrong_break]
            async with server.http.put("/api/v1/capacity", json=body | {"week": week},
                                       cookies=boss) as r:  # fmt: skip
                assert r.status == 400 and (await r.json())["error"]["code"] == "bad_break"
        hours = await weekday_hours(server, boss, "DLW-QG")
        assert len(hours["week"]) == 5 and hours["exceptions"] == []
        closed = {"department": "NYNC", "station": "DLW-QG", "date": MONDAY.isoformat(),
                  "staff": 0}  # fmt: skip
        async with server.http.put("/api/v1/capacity/exceptions", json=closed, cookies=boss) as r:
            assert r.status == 200
            assert (await r.json())["exceptions"][0]["staff"] == 0
        set_clock(server, at(MONDAY - timedelta(days=3), "09:00"))
        refused = await post(server, "/api/v1/appointments", booking(MONDAY, "09:00"), 400)
        assert refused["error"]["code"] == "no_such_slot"

        # The calendar the server holds: an adjusted working day (Sunday 20 September 2026,
        # worked for the Mid-Autumn and National Day holidays) takes Monday's hours; National
        # Day's Monday (5 October) has none; a plain Sunday none.
        async def slots_on(day: str) -> dict[str, Any]:
            query = {"item": "NYNC-002", "station": "DLW-QG", "date": day}
            async with server.http.get("/api/v1/appointments/slots", params=query) as r:
                assert r.status == 200
                result: dict[str, Any] = await r.json()
                return result

        adjusted = await slots_on("2026-09-20")
        holiday = await slots_on("2026-10-05")
        sunday = await slots_on("2026-09-13")
        assert adjusted["working_day"] is True and len(adjusted["slots"]) == 42
        assert holiday["working_day"] is False and holiday["slots"] == []
        assert sunday["working_day"] is False and sunday["slots"] == []


def test_service_order_puts_appointments_first_within_their_item_only() -> None:
    def t(id_: int, item: int, appointment: int | None = None) -> Ticket:
        return Ticket(id=id_, item_id=item, appointment_id=appointment)

    line = [t(1, 7), t(2, 9), t(3, 7), t(4, 7, appointment=40), t(5, 9, appointment=50), t(6, 7)]
    # Item 7 holds places 1, 3, 4, 6: its appointment takes the first; item 9's (places 2, 5)
    # likewise. Nobody of another item moves.
    assert [x.id for x in queue.service_order(line)] == [4, 5, 1, 3, 2, 6]


def test_slots_fit_in_the_hours() -> None:
    monday = capacity.Hours(*(capacity.parse_time(x, "t") for x in ("09:00", "12:00")), 2)
    slots = capacity.day_slots(monday, date(2026, 6, 15), 25)
    assert [s.local_start for s in slots] == ["09:00", "09:25", "09:50", "10:15", "10:40",
                                              "11:05", "11:30"]  # fmt: skip
    assert slots[0].starts_at.tzinfo is LOCAL_TZ and slots[-1].half == "am"
    assert capacity.day_slots(None, date(2026, 6, 15), 25) == []
    # With the hall's lunch break: the morning's last slot ends by 12:00, the afternoon's
    # begin at 13:30 (not on the morning's grid), none overlaps the break.
    lunch = capacity.Hours.parse("09:00", "16:00", 1, "12:00", "13:30")
    slots = capacity.day_slots(lunch, date(2026, 6, 15), 25)
    starts = [s.local_start for s in slots]
    assert starts[5:9] == ["11:05", "11:30", "13:30", "13:55"] and starts[-1] == "15:35"
    assert capacity.Hours.parse("09:00", "16:00", 1).periods() == [(time(9), time(16))]
    # One end only, beginning before the opening, empty, ending at the closing.
    for starts, ends in (
        ("12:00", None),
        ("08:30", "09:30"),
        ("12:00", "12:00"),
        ("12:00", "16:00"),
    ):
        with pytest.raises(capacity.CapacityError) as refused:
            capacity.Hours.parse("09:00", "16:00", 1, starts, ends)
        assert refused.value.code == "bad_break", (starts, ends)


def test_slot_length_follows_measured_handling_time() -> None:
    assert [capacity.slot_minutes_for(s) for s in (5, 300, 601, 1500, 7200)] == [10, 10, 15, 25, 60]


def test_roster_checks_name_every_row_and_field() -> None:
    rows = roster.read(as_csv(with_three_bad_rows(roster_rows())), "boats.csv")
    entries, problems = roster.validate(rows, {"NYNC-002": 5}, {"DLW-QG": 1, "DLW-TL": 2})
    assert [(p.row, p.field, p.code) for p in problems] == [
        (10, "id_number", "bad_id_number"), (25, "phone", "bad_phone"),
        (40, "boat_number", "duplicate"),
    ]  # fmt: skip
    assert len(entries) == 66
    good = roster.read(as_xlsx(roster_rows()), "boats.xlsx")
    entries, problems = roster.validate(good, {"NYNC-002": 5}, {"DLW-QG": 1, "DLW-TL": 2})
    assert problems == [] and len(entries) == 69
    assert entries[0]["preferences"] == {"half": "pm"}
    assert entries[6]["preferences"] == {"station": 2}
    # GB18030 from an older Excel, a duplicate ID, an empty phone, an unknown station.
    a = roster_rows()[0][2]
    text = f"姓名,手机号,身份证号,意向驿站\n甲,13800000001,{a},\n乙,,{a},南极\n"
    rows = roster.read(text.encode("gb18030"), "old.csv")
    _, problems = roster.validate(rows, {"NYNC-002": 5}, {"DLW-QG": 1})
    assert [(p.row, p.field, p.code) for p in problems] == [
        (3, "phone", "missing"), (3, "station", "not_in_campaign"),
        (3, "id_number", "duplicate"),
    ]  # fmt: skip
    for data, name in ((b"x,y\n1,2\n", "bad.csv"), (b"PK\x03\x04junk", "bad.xlsx"),
                       (b"", "empty.txt")):  # fmt: skip
        try:
            roster.read(data, name)
        except roster.RosterError as refused:
            assert refused.code == "bad_roster_file"
        else:
            raise AssertionError(f"{name} was read")


async def test_a_campaign_of_two_items_books_each_within_its_departments_hours(
    demo_url: str,
) -> None:
    async with running_server(demo_url) as server:
        boss = await supervisor(server)
        await weekday_hours(server, boss, "DLW-QG", "09:00", "10:00", staff=1)
        await weekday_hours(server, boss, "DLW-QG", "14:00", "15:00", staff=1, department="SCJG")
        set_clock(server, at(MONDAY - timedelta(days=7), "10:00"))
        body = {"name": "渔船与个体户", "street": "DLW", "items": ["NYNC-002", "SCJG-001"],
                "stations": ["DLW-QG"], "starts_on": MONDAY.isoformat(),
                "ends_on": MONDAY.isoformat()}  # fmt: skip
        later = body | {"starts_on": "2031-01-02", "ends_on": UNPUBLISHED.isoformat()}
        refused = await post(server, "/api/v1/campaigns", later, 400, boss)
        assert refused["error"]["code"] == "calendar_not_installed"
        assert "2031" in refused["error"]["message"]
        campaign = (await post(server, "/api/v1/campaigns", body, 201, boss))["campaign"]
        assert [i["department"] for i in campaign["items"]] == ["NYNC", "SCJG"]
        rows = [[*r[:3], ""] for r in roster_rows()[:10]]
        for n in (7, 8):
            rows[n][3] = "SCJG-001"  # by code
        rows[9][3] = "个体工商户设立登记"  # by name
        rows[0][3] = "渔业捕捞许可证换发（延续）"
        text = "姓名,手机号,身份证号,事项\n" + "\n".join(",".join(r) for r in rows) + "\n"
        upload = {"filename": "mixed.csv", "content": base64.b64encode(text.encode()).decode()}
        url = f"/api/v1/campaigns/{campaign['id']}"
        assert await post(server, f"{url}/roster", upload, 200, boss) == {"imported": 10}
        # Six 10-minute places a department that day: all three shop owners, six of the seven
        # boat owners; the seventh (row 8, the last without a preference) is reported.
        result = await post(server, f"{url}/schedule", {}, 200, boss)
        assert result["booked"] == 9
        assert result["unplaced"] == [{"row": 8, "name": "渔民07"}]
        async with server.state.db.read() as session:
            booked = (await session.scalars(select(Appointment))).all()
        times = {(a.item.code, f"{a.starts_at.astimezone(LOCAL_TZ):%H:%M}") for a in booked}
        assert {t for i, t in times if i == "SCJG-001"} == {"14:00", "14:10", "14:20"}
        assert {t for i, t in times if i == "NYNC-002"} == {"09:00", "09:10", "09:20", "09:30",
                                                            "09:40", "09:50"}  # fmt: skip


async def test_the_demo_campaign_ends_within_the_installed_calendar(sqlite_demo_url: str) -> None:
    """Late in the last year the calendar holds, the demo's fortnight of working days would run
    into the next year; campaigns cannot be planned there, so it ends on 31 December."""
    async with running_server(sqlite_demo_url) as server:
        late = datetime(2026, 12, 28, 2, 0, tzinfo=UTC)
        async with server.state.db.write() as session:
            assert await demo_campaign.seed_campaign(session, "210211", late) == 69
            (campaign,) = (await session.scalars(select(Campaign))).all()
        assert campaign.ends_on == date(2026, 12, 31)
        assert len(campaigns.working_days(campaign.starts_on, campaign.ends_on)) == 15


def test_public_url_is_an_address_alone() -> None:
    """public_url (what slips print) is the service's address: http(s), a host, no path."""
    assert str(Settings(public_url="https://ybb.example.gov.cn").public_url) == (
        "https://ybb.example.gov.cn/"
    )
    for wrong in ("https://ybb.example.gov.cn/book", "ftp://ybb.example.gov.cn/", "ybb"):
        with pytest.raises(ValueError, match="public_url"):
            Settings(public_url=wrong)
