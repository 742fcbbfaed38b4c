"""The seed's drive, end to end over HTTP and the WebSocket: 69 boats of 大连湾街道 renew their
fishing licences in a campaign at two stations over 15 working days around the Dragon Boat
Festival (2026-06-19, a Friday: no slot on it).

Roster with three bad rows refused and named → fixed (Excel) → scheduled, balanced → slips and
reminders → each campaign day walked with the appointment clock: residents check in by code at
the kiosk (ahead of a walk-in of the same item), are served in calls, their cases opened and
moved on; four miss their slot and are rebooked with one click the next morning; one rebooks
herself; three cases need corrections and come back for a correction session → every figure
checked by hand.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import func, select

from cloudhelp.core.clock import LOCAL_TZ, local_minute
from cloudhelp.domain import campaigns
from cloudhelp.media.peer import SignalingClient
from cloudhelp.store.models import Appointment, AuditEvent, CampaignEntry, Ticket
from tests.appointmentkit import (
    BOATS,
    as_csv,
    as_xlsx,
    at,
    roster_rows,
    set_clock,
    supervisor,
    upload,
    weekday_hours,
    with_three_bad_rows,
)
from tests.callkit import CallServer, running_server

# The 15 working days from 8 to 29 June 2026 (the official calendar: 19 June is the Dragon
# Boat Festival, 20–21 June its weekend).
CAMPAIGN_DAYS = [date(2026, 6, d) for d in (8, 9, 10, 11, 12, 15, 16, 17, 18, 22, 23, 24, 25,
                                              26, 29)]  # fmt: skip
HOLIDAY = date(2026, 6, 19)
TL_CLOSED = date(2026, 6, 24)  # 棠梨 closed that day (an exception to its weekday hours)
NO_SHOW_DAYS = (2, 4, 7, 10)  # indexes of CAMPAIGN_DAYS: the first booked then does not come
SELF_REBOOK_DAY = 3  # the first booked then (not a no-show) moves to the next campaign day
CORRECTION_ROWS = {15, 44, 61}
NOT_PICKED_UP_ROWS = {2, 3, 4, 5, 6, 7, 8, 9, 10}  # concluded, certificate not handed over yet
MATERIALS = 7  # NYNC-002's checklist


class Drive:
    """The server, the supervisor's and the staff member's cookies, the kiosks."""

    def __init__(self, server: CallServer) -> None:
        self.server = server
        self.http = server.http
        self.boss: dict[str, str] = {}
        self.clerk: dict[str, str] = {}
        self.kiosks: dict[str, SignalingClient] = {}
        self.credentials: dict[str, str] = {}
        self.campaign = 0
        self.cases: dict[int, str] = {}  # roster row → case number
        self.seen: set[int] = set()  # tickets served (their last frames may still arrive)

    async def json(self, method: str, path: str, cookie: dict[str, str] | None = None,
                   status: int = 200, **kwargs: Any) -> Any:  # fmt: skip
        async with self.http.request(method, path, cookies=cookie or self.boss, **kwargs) as r:
            assert r.status == status, (path, r.status, await r.text())
            return await r.json()

    async def appointments(self) -> list[Appointment]:
        async with self.server.state.db.read() as session:
            rows = await session.scalars(
                select(Appointment).where(Appointment.campaign_entry_id.is_not(None))
            )
            return list(rows.all())

    async def rows(self) -> dict[int, int]:
        """entry id → roster row."""
        async with self.server.state.db.read() as session:
            found = (await session.execute(select(CampaignEntry.id, CampaignEntry.row))).all()
        return {entry: row for entry, row in found}

    async def progress(self) -> dict[str, Any]:
        return (await self.json("GET", f"/api/v1/campaigns/{self.campaign}"))["campaign"][
            "progress"
        ]


async def serve(drive: Drive, staff: SignalingClient, kiosk: SignalingClient, take: dict[str, Any],
                row: int, *, needs_correction: bool = False) -> dict[str, Any]:  # fmt: skip
    """One resident: ticket, ring, call, case with its checklist and verdict, hang-up, wrap-up."""
    await kiosk.send(take)
    ticket = (await kiosk.expect_where("ticket", lambda f: f["ticket"]["id"] not in drive.seen))[
        "ticket"
    ]
    drive.seen.add(ticket["id"])
    ring = await staff.expect("ring")
    assert ring["ticket"]["id"] == ticket["id"], (ring, staff.drain("ring"), ticket)
    await staff.send({"type": "ring.accept", "ticket": ticket["id"]})
    await kiosk.expect("joined")
    await staff.expect("joined")
    number = drive.cases.get(row)
    if number is None:
        n = row - 1
        applicant = {"name": f"渔民{n:02d}", "phone": f"1384000{n:04d}",
                     "id_number": roster_rows()[n - 1][2]}  # fmt: skip
        body = {"ticket": ticket["id"], "applicant": applicant}
        number = (await drive.json("POST", "/api/v1/cases", drive.clerk, 201, json=body))["case"][
            "number"
        ]
        drive.cases[row] = number
    marks = [{"position": p, "status": "ok"} for p in range(1, MATERIALS + 1)]
    if needs_correction:
        marks[3] = {"position": 4, "status": "needs_correction", "reason": "船检证书未年检"}
    base = f"/api/v1/cases/{number}"
    await drive.json("PUT", f"{base}/checklist", drive.clerk, json={"materials": marks})
    verdict = "correction_needed" if needs_correction else "passed"
    await drive.json("POST", f"{base}/verdict", drive.clerk, json={"verdict": verdict})
    await kiosk.send({"type": "call.hangup"})
    await staff.expect("wrapup")
    await kiosk.expect("left")
    await staff.send({"type": "wrapup.done", "outcome": "resolved"})
    await staff.expect("presence", state="available")
    return ticket


async def conclude(drive: Drive, row: int) -> None:
    base = f"/api/v1/cases/{drive.cases[row]}/transitions"
    steps = ["accepted", "concluded"] + ([] if row in NOT_PICKED_UP_ROWS else ["delivered"])
    for to in steps:
        await drive.json("POST", base, drive.clerk, json={"to": to})


async def refused_frame(kiosk: SignalingClient, take: dict[str, Any]) -> str:
    await kiosk.send(take)
    return str((await kiosk.expect("error"))["code"])


async def test_sixty_nine_boats_in_half_a_month(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        drive = Drive(server)
        drive.boss = await supervisor(server)
        drive.clerk = {"cloudhelp_session": await server.staff_token("zhaogang")}
        set_clock(server, at(date(2026, 6, 1), "10:00"))

        # --- capacity: weekdays 09:00–16:00, one staff member, at both stations; 棠梨 closed
        # on 24 June.
        for station in ("DLW-QG", "DLW-TL"):
            hours = await weekday_hours(server, drive.boss, station)
            assert [w["weekday"] for w in hours["week"]] == [0, 1, 2, 3, 4]
        closed = {"department": "NYNC", "station": "DLW-TL", "date": TL_CLOSED.isoformat(),
                  "staff": 0, "note": "驿站装修"}  # fmt: skip
        await drive.json("PUT", "/api/v1/capacity/exceptions", json=closed)

        # --- the campaign
        body = {"name": "大连湾街道渔业捕捞许可证集中换发", "street": "DLW",
                "items": ["NYNC-002"], "stations": ["DLW-QG", "DLW-TL"],
                "starts_on": "2026-06-08", "ends_on": "2026-06-29"}  # fmt: skip
        campaign = (await drive.json("POST", "/api/v1/campaigns", status=201, json=body))[
            "campaign"
        ]
        drive.campaign = campaign["id"]
        assert campaign["working_days"] == 15
        # Staff of a department may not run campaigns.
        await drive.json("GET", "/api/v1/campaigns", drive.clerk, status=403)

        # --- the roster: three bad rows refused and named, nothing imported
        rows = roster_rows()
        roster_url = f"/api/v1/campaigns/{drive.campaign}/roster"
        refused = await drive.json(
            "POST", roster_url, status=422,
            json=upload("roster.csv", as_csv(with_three_bad_rows(rows))),
        )  # fmt: skip
        error = refused["error"]
        assert error["code"] == "roster_invalid"
        assert [(p["row"], p["field"], p["code"]) for p in error["problems"]] == [
            (10, "id_number", "bad_id_number"),
            (25, "phone", "bad_phone"),
            (40, "boat_number", "duplicate"),
        ]
        assert error["problems"][2]["same_as"] == 12
        async with server.state.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(CampaignEntry)) == 0
        # Fixed, and sent as Excel this time.
        imported = await drive.json("POST", roster_url, json=upload("roster.xlsx", as_xlsx(rows)))
        assert imported == {"imported": BOATS}

        # --- scheduled: balanced across the 15 days and two stations within capacity
        result = await drive.json("POST", f"/api/v1/campaigns/{drive.campaign}/schedule")
        assert result["booked"] == BOATS and result["unplaced"] == []
        assert result["days"] == [d.isoformat() for d in CAMPAIGN_DAYS]
        booked = await drive.appointments()
        row_of = await drive.rows()
        cells = Counter((a.day, a.station.code) for a in booked)
        assert HOLIDAY not in {day for day, _ in cells}
        assert (TL_CLOSED, "DLW-TL") not in cells
        # 29 (day, station) cells for 69 boats: each holds 2 or 3, all 29 used.
        assert len(cells) == 29 and set(cells.values()) == {2, 3}
        assert sum(cells.values()) == BOATS
        for a in booked:
            row = row_of[a.campaign_entry_id or 0]
            local = a.starts_at.astimezone(LOCAL_TZ)
            assert local.weekday() < 5 and a.day in CAMPAIGN_DAYS
            assert (
                "09:00" <= f"{local:%H:%M}" < f"{a.ends_at.astimezone(LOCAL_TZ):%H:%M}" <= "16:00"
            )
            if 2 <= row <= 6:
                assert local.hour >= 13, (row, local)  # 下午 as stated (not at 12:00)
            if 7 <= row <= 11:
                assert a.station.code == "DLW-TL", row  # 棠梨 as stated
        # One slot at a time per station: one staff member serves it.
        for station in ("DLW-QG", "DLW-TL"):
            times = sorted((a.starts_at, a.ends_at) for a in booked if a.station.code == station)
            assert all(b[0] >= a[1] for a, b in pairwise(times))

        # --- slips in one PDF, one page each; reminders as CSV
        async with server.http.get(f"/api/v1/campaigns/{drive.campaign}/slips.pdf",
                                   cookies=drive.boss) as r:  # fmt: skip
            assert r.status == 200 and r.content_type == "application/pdf"
            pdf = await r.read()
        assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") == BOATS
        async with server.http.get(f"/api/v1/campaigns/{drive.campaign}/reminders.csv",
                                   cookies=drive.boss) as r:  # fmt: skip
            assert r.status == 200 and r.content_type == "text/csv"
            reminders = (await r.read()).decode("utf-8-sig").splitlines()
        assert len(reminders) == 1 + BOATS and reminders[0].startswith("预约码,姓名,手机号")
        assert "13840000001" in "\n".join(reminders)  # the number to send to, in full

        # --- who misses their slot, who moves theirs: chosen from the schedule
        first_on = {
            day: sorted((a for a in booked if a.day == day and
                         row_of[a.campaign_entry_id or 0] not in CORRECTION_ROWS),
                        key=lambda a: a.starts_at)
            for day in CAMPAIGN_DAYS
        }  # fmt: skip
        no_shows = {row_of[first_on[CAMPAIGN_DAYS[i]][0].campaign_entry_id or 0]
                    for i in NO_SHOW_DAYS}  # fmt: skip
        mine = next(a for a in first_on[CAMPAIGN_DAYS[SELF_REBOOK_DAY]]
                    if row_of[a.campaign_entry_id or 0] not in no_shows)  # fmt: skip
        self_rebook = row_of[mine.campaign_entry_id or 0]
        original = {row_of[a.campaign_entry_id or 0]: a.day for a in booked}

        # She moves her appointment to the same time on the next campaign day, by code and the
        # last four digits of her phone.
        later = CAMPAIGN_DAYS[CAMPAIGN_DAYS.index(mine.day) + 1]
        local = mine.starts_at.astimezone(LOCAL_TZ)
        move = {"code": mine.code, "last4": mine.phone[-4:], "date": later.isoformat(),
                "time": f"{local:%H:%M}", "station": mine.station.code}  # fmt: skip
        wrong = move | {"last4": "0000" if mine.phone[-4:] != "0000" else "1111"}
        assert (await drive.json("POST", "/api/v1/appointments/rebook", {}, 404, json=wrong))[
            "error"
        ]["code"] == "no_such_appointment"
        # That time is taken on the next day (the schedule fills each day from 09:00): refused,
        # nothing changed; she takes a free one the page offers.
        full = await drive.json("POST", "/api/v1/appointments/rebook", {}, 409, json=move)
        assert full["error"]["code"] == "slot_full"
        assert [a.status for a in await drive.appointments()].count("booked") == BOATS
        query = {"item": "NYNC-002", "station": mine.station.code, "date": later.isoformat()}
        offered = await drive.json("GET", "/api/v1/appointments/slots", {}, params=query)
        assert offered["working_day"] is True and offered["slot_minutes"] == 10
        assert len(offered["slots"]) == 42  # 09:00–16:00 in 10-minute slots
        taken = {s["time"] for s in offered["slots"] if s["free"] == 0}
        assert move["time"] in taken
        move["time"] = next(s["time"] for s in offered["slots"] if s["free"] == 1)
        moved = await drive.json("POST", "/api/v1/appointments/rebook", {}, json=move)
        assert moved["appointment"]["day"] == later.isoformat()
        assert moved["appointment"]["code"] != f"{mine.code[:4]}-{mine.code[4:]}"

        # --- the campaign's days
        staff = await server.staff("zhaogang", available=False)
        for code, station in (("QG-01", "DLW-QG"), ("QG-02", "DLW-QG"), ("TL-01", "DLW-TL")):
            drive.credentials[code] = await server.kiosk_credential(code, station)
            drive.kiosks[code] = await server.connect(
                {"kind": "kiosk", "credential": drive.credentials[code]}
            )
        kiosk_of = {"DLW-QG": drive.kiosks["QG-01"], "DLW-TL": drive.kiosks["TL-01"]}
        # Entries whose slot passed unused, with its station: rebooked next morning there.
        missed: list[tuple[int, str]] = []
        mid: dict[str, Any] = {}
        for day_index, day in enumerate(CAMPAIGN_DAYS):
            set_clock(server, at(day, "08:00"))
            for entry, station in missed:
                await drive.json(
                    "POST", f"/api/v1/campaigns/{drive.campaign}/entries/{entry}/rebook"
                )
                again = [a for a in await drive.appointments()
                         if a.campaign_entry_id == entry and a.status == "booked"]  # fmt: skip
                assert [a.station.code for a in again] == [station]  # the station it missed
                # Not minutes away: time to tell the resident (campaigns.REBOOK_NOTICE).
                assert again[0].starts_at >= at(day, "08:00") + campaigns.REBOOK_NOTICE
                # The audit trail says which booking moved and to when (a README walk read
                # "集中办理变更 · 集中办理 1 · —").
                async with server.state.db.read() as s:
                    logged = await s.scalar(
                        select(AuditEvent.detail)
                        .where(AuditEvent.action == "campaign.changed")
                        .order_by(AuditEvent.seq.desc())
                        .limit(1)
                    )
                code, starts = again[0].code, local_minute(again[0].starts_at)
                expected = {"step": "entry_rebooked", "appointment": code, "starts": starts}
                assert json.loads(logged or "{}") == expected
            missed = []
            todays = sorted(
                (a for a in await drive.appointments()
                 if a.day == day and a.status == "booked"),
                key=lambda a: a.starts_at,
            )  # fmt: skip
            for index, a in enumerate(todays):
                row = row_of[a.campaign_entry_id or 0]
                take = {"type": "ticket.take", "appointment": a.code}
                kiosk = kiosk_of[a.station.code]
                if row in no_shows and a.rebooked_from_id is None:
                    missed.append((a.campaign_entry_id or 0, a.station.code))
                    continue
                if day_index == 0 and index == 0:
                    await refusals_and_priority(drive, staff, a, take)
                    continue
                set_clock(server, a.starts_at - timedelta(minutes=5))
                await serve(drive, staff, kiosk, take, row,
                            needs_correction=row in CORRECTION_ROWS)  # fmt: skip
            set_clock(server, at(day, "17:00"))
            if day_index == 2:  # mid-campaign, by hand: see below
                mid = await drive.progress()
        assert missed == []  # no one missed the last day

        # Mid-campaign, the evening of 10 June (the third day), by hand from the schedule: a
        # no-show is rebooked the next campaign morning and served that day, as is the moved one.
        def served_by(row: int) -> date:
            day = original[row]
            if row in no_shows or row == self_rebook:
                return CAMPAIGN_DAYS[CAMPAIGN_DAYS.index(day) + 1]
            return day

        third = CAMPAIGN_DAYS[2]
        served_mid = sum(1 for row in original if served_by(row) <= third)
        assert mid["counts"] == {
            "entries": BOATS, "booked": BOATS, "checked_in": served_mid, "served": served_mid,
            "corrected": sum(1 for row in CORRECTION_ROWS if served_by(row) <= third),
            "concluded": 0, "picked_up": 0,
            "no_show": sum(1 for row in no_shows if original[row] == third),
            "rescheduled": 1 + sum(1 for row in no_shows if original[row] < third),
        }  # fmt: skip
        assert len(mid["not_come"]) == BOATS - served_mid
        assert mid["burn_down"][2]["day"] == "2026-06-10"
        assert mid["burn_down"][2]["remaining"] == BOATS - served_mid
        assert mid["burn_down"][3]["remaining"] is None  # a day to come
        missing = [p for p in mid["not_come"] if p["appointment"]["status"] == "no_show"]
        assert all(p["phone"].startswith("138****") for p in mid["not_come"])
        assert len(missing) == mid["counts"]["no_show"]

        # --- the three cases that needed corrections come back to a kiosk for round 2
        tl_credential = drive.credentials["TL-01"]
        for row in sorted(CORRECTION_ROWS):
            number = drive.cases[row]
            n = row - 1
            body = {"number": number, "last4": f"{n:04d}"}
            headers = {"Authorization": f"Kiosk {tl_credential}"}
            found = await drive.json("POST", "/api/v1/kiosk/cases/lookup", {}, json=body,
                                     headers=headers)  # fmt: skip
            take = {"type": "ticket.take", "case": number, "grant": found["case"]["grant"]}
            await serve(drive, staff, drive.kiosks["TL-01"], take, row)
        for row in range(2, BOATS + 2):
            await conclude(drive, row)

        # --- the figures, by hand: 69 boats, all served; 4 no-shows rebooked and one resident's
        # own move (5 rescheduled, none missing now); 3 corrected; all concluded; the certificates
        # of rows 2–10 not yet handed over (60 picked up).
        final = await drive.progress()
        assert final["counts"] == {
            "entries": 69, "booked": 69, "checked_in": 69, "served": 69, "corrected": 3,
            "concluded": 69, "picked_up": 60, "no_show": 0, "rescheduled": 5,
        }  # fmt: skip
        assert final["not_come"] == []
        # Each entry's session and case, as served: every boat has its ticket and case.
        assert len(final["served"]) == BOATS
        assert {s["case"]["number"] for s in final["served"]} == set(drive.cases.values())
        assert sum(1 for s in final["served"] if s["picked_up"]) == 60
        burn = final["burn_down"]
        assert [b["day"] for b in burn] == [d.isoformat() for d in CAMPAIGN_DAYS]
        assert burn[-1] == {"day": "2026-06-29", "planned_remaining": 0, "remaining": 0}
        # Every day the line falls by the boats served that day (checked-in appointments).
        served_on = Counter(a.day for a in await drive.appointments() if a.status == "checked_in")
        left = BOATS
        for point in burn:
            left -= served_on[date.fromisoformat(point["day"])]
            assert point["remaining"] == left, point

        # Entries link to their tickets and cases.
        async with server.state.db.read() as session:
            linked = await session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.appointment_id.is_not(None))
            )
        assert linked == BOATS


async def refusals_and_priority(
    drive: Drive, staff: SignalingClient, first: Appointment, take: dict[str, Any]
) -> None:
    """The first appointment of the campaign: every refusal changes nothing; then a walk-in
    who came earlier for the same item waits behind the appointment."""
    server = drive.server
    here = drive.kiosks["QG-01"] if first.station.code == "DLW-QG" else drive.kiosks["TL-01"]
    elsewhere = drive.kiosks["TL-01"] if here is drive.kiosks["QG-01"] else drive.kiosks["QG-01"]
    set_clock(server, first.starts_at - timedelta(minutes=45))
    assert await refused_frame(here, take) == "appointment_too_early"
    set_clock(server, first.starts_at - timedelta(minutes=5))
    assert await refused_frame(elsewhere, take) == "appointment_wrong_station"
    assert await refused_frame(here, take | {"appointment": "1111-2222"}) == ("no_such_appointment")
    async with server.state.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Ticket)) == 0
        row = await session.get(Appointment, first.id)
        assert row is not None and row.status == "booked" and row.checked_in_at is None

    # A walk-in for the same item takes a ticket first (at another kiosk of the station)…
    walk_in = drive.kiosks["QG-02"]  # at 前关: the same item's queue whatever the station
    await walk_in.send({"type": "ticket.take", "item": "NYNC-002"})
    walk_ticket = (await walk_in.expect("ticket"))["ticket"]
    # …then the resident checks in with the code (hyphen and all).
    await here.send(take | {"appointment": f"{first.code[:4]}-{first.code[4:]}"})
    booked_ticket = (await here.expect("ticket"))["ticket"]
    drive.seen |= {booked_ticket["id"], walk_ticket["id"]}
    assert booked_ticket["appointment"]["code"] == first.code
    assert walk_ticket["appointment"] is None
    # The staff queue lists the appointment first, and it rings first.
    await staff.send({"type": "staff.status", "status": "available"})
    queue = await staff.expect_where("queue", lambda f: len(f["tickets"]) == 2)
    assert [t["id"] for t in queue["tickets"]] == [booked_ticket["id"], walk_ticket["id"]]
    ring = await staff.expect("ring")
    assert ring["ticket"]["id"] == booked_ticket["id"]
    await staff.send({"type": "ring.accept", "ticket": booked_ticket["id"]})
    await here.expect("joined")
    await staff.expect("joined")
    await here.send({"type": "call.hangup"})
    await staff.expect("wrapup")
    await here.expect("left")
    # The code twice: refused, nothing changed.
    assert await refused_frame(here, take) == "appointment_used"
    await staff.send({"type": "wrapup.done", "outcome": "resolved"})
    await staff.expect("presence", state="available")
    # The walk-in is served next (no case: another matter).
    ring = await staff.expect("ring")
    assert ring["ticket"]["id"] == walk_ticket["id"]
    await walk_in.send({"type": "ticket.cancel"})
    await staff.expect("ring.cancelled")
    # The appointment's case, opened afterwards from the session (as a clerk may).
    row_of = await drive.rows()
    row = row_of[first.campaign_entry_id or 0]
    n = row - 1
    applicant = {"name": f"渔民{n:02d}", "phone": f"1384000{n:04d}",
                 "id_number": roster_rows()[n - 1][2]}  # fmt: skip
    body = {"ticket": booked_ticket["id"], "applicant": applicant}
    number = (await drive.json("POST", "/api/v1/cases", drive.clerk, 201, json=body))["case"][
        "number"
    ]
    drive.cases[row] = number
    marks = [{"position": p, "status": "ok"} for p in range(1, MATERIALS + 1)]
    await drive.json("PUT", f"/api/v1/cases/{number}/checklist", drive.clerk,
                     json={"materials": marks})  # fmt: skip
    await drive.json("POST", f"/api/v1/cases/{number}/verdict", drive.clerk,
                     json={"verdict": "passed"})  # fmt: skip
