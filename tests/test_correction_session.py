"""A correction session (补正) from another kiosk routes back to the pre-reviewer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloudhelp.models import Department, Staff, StaffSkill
from tests.callkit import CallServer, running_server
from tests.test_call_core import ticket_row
from tests.test_cases import ID_NUMBER

pytestmark = pytest.mark.usefixtures("loopback_ice")


async def case_needing_correction(server: CallServer, reviewer_cookie: dict[str, str]) -> str:
    body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                              "id_number": ID_NUMBER}}  # fmt: skip
    async with server.http.post("/api/v1/cases", json=body, cookies=reviewer_cookie) as r:
        number = (await r.json())["case"]["number"]
    marks = [{"position": n, "status": "ok"} for n in range(1, 8)]
    marks[3] = {"position": 4, "status": "needs_correction", "reason": "船检证书未年检"}
    base = f"/api/v1/cases/{number}"
    async with server.http.put(
        f"{base}/checklist", json={"materials": marks}, cookies=reviewer_cookie
    ):
        pass
    verdict = {"verdict": "correction_needed"}
    async with server.http.post(f"{base}/verdict", json=verdict, cookies=reviewer_cookie) as r:
        assert r.status == 200
    return number


async def also_handles_fishing(server: CallServer, username: str) -> None:
    async with server.state.db.write() as session:
        staff = await session.scalar(select(Staff).where(Staff.username == username))
        nync = await session.scalar(select(Department).where(Department.code == "NYNC"))
        session.add(StaffSkill(staff_id=staff.id, department_id=nync.id))  # type: ignore[union-attr]


async def test_correction_session_rings_the_reviewer_first(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, prefer_reviewer_seconds=30) as server:
        await also_handles_fishing(server, "wangli")
        other = await server.staff("wangli")  # available first: longest idle
        reviewer_token = await server.staff_token("zhaogang")
        reviewer = await server.connect({"kind": "staff", "token": reviewer_token})
        await reviewer.expect("presence", state="away")
        await reviewer.send({"type": "staff.status", "status": "available"})
        number = await case_needing_correction(server, {"cloudhelp_session": reviewer_token})

        # The resident comes back to another kiosk and finds the case by phone and ID digits.
        credential = await server.kiosk_credential("TL-01", "DLW-TL")
        lookup = {"phone": "13812345678", "id_last4": ID_NUMBER[-4:]}
        headers = {"Authorization": f"Kiosk {credential}"}
        async with server.http.post(
            "/api/v1/kiosk/cases/lookup", json=lookup, headers=headers
        ) as r:
            found = (await r.json())["case"]
        assert found["number"] == number and found["status"]["label"] == "待补正"
        assert found["notice_url"].startswith(f"/notices/{number}/1?t=")
        async with server.http.post("/api/v1/kiosk/cases/lookup", json=lookup) as r:
            assert r.status == 401

        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        await kiosk.send({"type": "ticket.take", "case": number})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        assert ticket["case"] == {"number": number, "round": 1}
        ring = await reviewer.expect("ring")
        assert ring["ticket"]["case"]["number"] == number
        assert other.drain("ring") == []
        row = await ticket_row(server, ticket["id"])
        assert row.case_id is not None and row.preferred_staff_id is not None

        await kiosk.send({"type": "ticket.take", "case": "210211-20000101-0001"})
        assert (await kiosk.expect("error"))["code"] in ("ticket_open", "no_such_case")


async def test_after_the_preference_window_anyone_may_answer(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, prefer_reviewer_seconds=1) as server:
        await also_handles_fishing(server, "wangli")
        reviewer_token = await server.staff_token("zhaogang")  # the reviewer stays away
        number = await case_needing_correction(server, {"cloudhelp_session": reviewer_token})
        other = await server.staff("wangli")
        kiosk = await server.kiosk("TL-01", "DLW-TL")
        await kiosk.send({"type": "ticket.take", "case": number})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        ring = await other.expect("ring", timeout=5)
        assert ring["ticket"]["id"] == ticket["id"]
