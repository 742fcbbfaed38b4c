"""Cases (办件): ID checksum, lifecycle, working days on China's calendar, the API and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from cloudhelp.core import workdays
from cloudhelp.domain import cases, workcalendar
from cloudhelp.http.state import AppState
from cloudhelp.store.models import Case, CaseEvent, ServiceItem
from tests.callkit import running_server
from tests.helpers import run_cli

# A well-formed test number (Ganjingzi District, born 1990-03-07), check character computed.
ID_NUMBER = "21021119900307123" + cases.id_check_character("21021119900307123")


def test_id_number_checksum() -> None:
    assert cases.valid_id_number("11010519491231002X")  # the standard's own example
    assert cases.valid_id_number("11010519491231002x")
    assert not cases.valid_id_number("110105194912310021")  # wrong check character
    assert not cases.valid_id_number("110105194913310020")  # no 13th month
    assert not cases.valid_id_number("11010519491231002")  # too short
    assert cases.valid_id_number(ID_NUMBER)
    assert cases.mask_id_number("11010519491231002X") == "110105********002X"
    assert cases.mask_phone("13812345678") == "138****5678"


@pytest.fixture
def seeded_calendar() -> None:
    """The calendar as the migration seeds it (from chinesecalendar), without a database."""
    entries = workcalendar.package_entries()
    workdays.install(
        workdays.Calendar(
            frozenset(e.day.year for e in entries), {e.day: e.kind == "workday" for e in entries}
        )
    )


@pytest.mark.usefixtures("seeded_calendar")
def test_working_days_across_the_spring_festival_2026() -> None:
    # Accepted Friday 13 Feb 2026: Sat 14 Feb is an adjusted working day, 15–23 Feb are the
    # Spring Festival holiday, work resumes Tue 24 Feb.
    assert workdays.add_working_days(date(2026, 2, 13), 1).day == date(2026, 2, 14)
    assert workdays.add_working_days(date(2026, 2, 13), 2).day == date(2026, 2, 24)
    assert workdays.add_working_days(date(2026, 2, 13), 5).day == date(2026, 2, 27)
    assert workdays.add_working_days(date(2026, 2, 13), 0.5).day == date(2026, 2, 14)
    assert not workdays.add_working_days(date(2026, 2, 13), 5).estimated


@pytest.mark.usefixtures("seeded_calendar")
def test_working_days_across_national_day_2026() -> None:
    # 1–7 Oct 2026 are holidays; Sat 10 Oct is an adjusted working day.
    assert workdays.add_working_days(date(2026, 9, 30), 1).day == date(2026, 10, 8)
    assert workdays.add_working_days(date(2026, 9, 30), 3).day == date(2026, 10, 10)
    assert workdays.add_working_days(date(2026, 9, 30), 4).day == date(2026, 10, 12)
    assert workdays.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3


@pytest.mark.usefixtures("seeded_calendar")
def test_unpublished_years_fall_back_to_weekdays_and_say_so() -> None:
    due = workdays.add_working_days(date(2030, 1, 4), 1)  # a Friday, in a year not yet published
    assert due.day == date(2030, 1, 7) and due.estimated


async def new_case(session, item_code: str = "NYNC-002") -> Case:
    item = await session.scalar(select(ServiceItem).where(ServiceItem.code == item_code))
    case = await cases.open_case(
        session, district="210211", item=item, station_id=1, staff_id=None, name="刘海生",
        phone="13812345678", id_number=ID_NUMBER, actor="zhaogang",
    )  # fmt: skip
    await session.refresh(case, ["item", "station"])
    return case


async def test_lifecycle_legal_and_illegal(demo_engine) -> None:
    from cloudhelp.store.db import Database

    database = Database(demo_engine)
    async with database.write() as session:
        case = await new_case(session)
        assert case.number.startswith("210211-") and case.number.endswith("-0001")
        with pytest.raises(cases.CaseError) as refused:
            await cases.transition(session, case, "concluded", "zhaogang")
        assert refused.value.code == "illegal_transition"
        assert "预审中" in refused.value.message and "已办结" in refused.value.message
        await cases.transition(session, case, "correction_needed", "zhaogang", "船检证书过期")
        with pytest.raises(cases.CaseError, match="back to pre-review"):
            await cases.transition(session, case, "accepted", "zhaogang")
        await cases.transition(session, case, "pre_review", "zhaogang", "补正材料已提交")
        assert case.rounds == 2
        await cases.transition(session, case, "awaiting_acceptance", "zhaogang")
        await cases.transition(session, case, "accepted", "wangli")
        await cases.transition(session, case, "concluded", "wangli")
        await cases.transition(session, case, "delivered", "wangli")
        with pytest.raises(cases.CaseError):
            await cases.transition(session, case, "not_accepted", "wangli", "x")
        other = await new_case(session)
        assert other.number.endswith("-0002")
        with pytest.raises(cases.CaseError, match="Say why"):
            await cases.transition(session, other, "not_accepted", "zhaogang")
        events = await cases.events_of(session, case)
    assert [e.to_state for e in events] == [
        "pre_review", "correction_needed", "pre_review", "awaiting_acceptance", "accepted",
        "concluded", "delivered",
    ]  # fmt: skip
    assert events[1].actor == "zhaogang" and events[1].reason == "船检证书过期"


async def test_the_clock_stops_while_waiting_for_corrections(demo_engine) -> None:
    from cloudhelp.store.db import Database

    database = Database(demo_engine)
    async with database.write() as session:
        case = await new_case(session, "SCJG-008")  # food production: promised 5, statutory 20
        case.status, case.accepted_at = "accepted", datetime(2026, 9, 28, 2, tzinfo=UTC)
        session.add_all(
            [
                CaseEvent(case_id=case.id, to_state="accepted", actor="a", at=case.accepted_at),
                # Waits for corrections from Tue 29 Sep to Fri 9 Oct: 3 working days stand still.
                CaseEvent(case_id=case.id, to_state="correction_needed", actor="a",
                          at=datetime(2026, 9, 29, 2, tzinfo=UTC)),
                CaseEvent(case_id=case.id, to_state="accepted", actor="a",
                          at=datetime(2026, 10, 9, 2, tzinfo=UTC)),
            ]
        )  # fmt: skip
        await session.flush()
        limits = cases.time_limits(case, await cases.events_of(session, case))
    assert limits.paused_working_days == 3  # 30 Sep, 8 Oct, 9 Oct
    # 5 + 3 working days after Mon 28 Sep: 29, 30 Sep, 8, 9, 10 (Sat, adjusted), 12, 13, 14 Oct.
    assert limits.promised_due == date(2026, 10, 14)
    assert limits.statutory_due is not None and limits.statutory_due > limits.promised_due


async def test_cases_over_http_and_the_cli(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                                  "id_number": ID_NUMBER}}  # fmt: skip
        async with server.http.post("/api/v1/cases", json=body) as r:
            assert r.status == 401
        async with server.http.post("/api/v1/cases", json=body, cookies=cookies) as r:
            assert r.status == 201, await r.text()
            case = (await r.json())["case"]
        assert case["status"] == {"code": "pre_review", "label": "预审中"}
        assert case["applicant"]["id_number"] == ID_NUMBER  # the staff member entering it sees it
        number = case["number"]

        bad = {**body, "applicant": {**body["applicant"], "id_number": ID_NUMBER[:-1] + "0"}}
        if ID_NUMBER.endswith("0"):
            bad["applicant"]["id_number"] = ID_NUMBER[:-1] + "1"
        async with server.http.post("/api/v1/cases", json=bad, cookies=cookies) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_id_number"

        move = f"/api/v1/cases/{number}/transitions"
        async with server.http.post(move, json={"to": "delivered"}, cookies=cookies) as r:
            assert r.status == 409
            assert (await r.json())["error"]["code"] == "illegal_transition"
        for step in ("awaiting_acceptance", "accepted"):
            async with server.http.post(move, json={"to": step}, cookies=cookies) as r:
                assert r.status == 200, await r.text()
                case = (await r.json())["case"]
        assert case["status"]["label"] == "已受理"
        assert case["time_limits"]["promised_due"] is not None
        assert case["applicant"]["id_number"] == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]

        async with server.http.get(
            "/api/v1/cases?status=accepted&phone=13812345678", cookies=cookies
        ) as r:
            assert [c["number"] for c in (await r.json())["cases"]] == [number]
        async with server.http.get("/api/v1/cases?status=bogus", cookies=cookies) as r:
            assert r.status == 400
        async with server.http.get(f"/api/v1/cases/{number}?reveal=1", cookies=cookies) as r:
            assert r.status == 400  # a reason is required (and audited)
            assert (await r.json())["error"]["code"] == "reveal_reason_required"
        async with server.http.get(
            f"/api/v1/cases/{number}?reveal=1&reason=核对申请人身份", cookies=cookies
        ) as r:
            assert (await r.json())["case"]["applicant"]["id_number"] == ID_NUMBER
        database_url = str(AppState.of(server.server.app).settings.effective_database_url)

    listed = run_cli("case", "list", "--status", "accepted", "--json", "--db", database_url)
    assert listed.returncode == 0, listed.stderr
    (only,) = json.loads(listed.stdout)["cases"]
    assert only["number"] == number and only["status"] == {"code": "accepted", "label": "已受理"}
    assert ID_NUMBER not in listed.stdout
    shown = run_cli("case", "show", number, "--json", "--db", database_url)
    body = json.loads(shown.stdout)
    assert [e["to"]["code"] for e in body["events"]] == [
        "pre_review", "awaiting_acceptance", "accepted",
    ]  # fmt: skip
    missing = run_cli("case", "show", "nope", "--db", database_url)
    assert missing.returncode == 1 and "There is no case 'nope'" in missing.stderr
