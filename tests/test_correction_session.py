"""A correction session (补正) from another kiosk routes back to the pre-reviewer."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cloudhelp.store.models import Department, Staff, StaffSkill
from tests.callkit import CallServer, running_server
from tests.test_call_core import ticket_row
from tests.test_cases import ID_NUMBER

pytestmark = pytest.mark.usefixtures("loopback_ice")


PHONE = "13812345678"
LAST4 = PHONE[-4:]  # what the resident types with the case number at a kiosk


async def case_needing_correction(
    server: CallServer,
    reviewer_cookie: dict[str, str],
    phone: str = PHONE,
    id_number: str = ID_NUMBER,
    *,
    ticket: int | None = None,
    missing: bool = False,
    proxy_missing: bool = False,
) -> tuple[str, dict[str, Any]]:
    """A fishing-licence case of 刘海生 (opened in the call of ``ticket``, if given) with
    round 1's notice: material 4 to correct, or with ``missing`` material 2 missing; with
    ``proxy_missing`` also material 7 (授权委托书, a conditional one) missing. (Its number, its
    notice as the verdict answered it, with the signed ``url``.)"""
    applicant = {"name": "刘海生", "phone": phone, "id_number": id_number}
    body: dict[str, Any] = {"item": "NYNC-002", "applicant": applicant}
    if ticket is not None:
        body["ticket"] = ticket
    async with server.http.post("/api/v1/cases", json=body, cookies=reviewer_cookie) as r:
        assert r.status == 201, await r.text()
        number = (await r.json())["case"]["number"]
    marks: list[dict[str, Any]] = [{"position": n, "status": "ok"} for n in range(1, 8)]
    if missing:
        marks[1] = {"position": 2, "status": "missing"}
    else:
        marks[3] = {"position": 4, "status": "needs_correction", "reason": "船检证书未年检"}
    if proxy_missing:
        marks[6] = {"position": 7, "status": "missing"}
    base = f"/api/v1/cases/{number}"
    checklist = {"materials": marks}
    async with server.http.put(f"{base}/checklist", json=checklist, cookies=reviewer_cookie) as r:
        assert r.status == 200, await r.text()
    verdict = {"verdict": "correction_needed"}
    async with server.http.post(f"{base}/verdict", json=verdict, cookies=reviewer_cookie) as r:
        assert r.status == 200, await r.text()
        return number, (await r.json())["case"]["notice"]


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
        number, _ = await case_needing_correction(server, {"cloudhelp_session": reviewer_token})

        # The resident comes back to another kiosk and finds the case by its number and the
        # ID number's last four.
        credential = await server.kiosk_credential("TL-01", "DLW-TL")
        found = await server.look_up_case(credential, number, ID_NUMBER[-4:])
        assert found["number"] == number and found["status"]["label"] == "待补正"
        assert found["notice_url"].startswith(f"/notices/{number}/1?t=")
        lookup = {"number": number, "last4": ID_NUMBER[-4:]}
        async with server.http.post("/api/v1/kiosk/cases/lookup", json=lookup) as r:
            assert r.status == 401

        kiosk = await server.connect({"kind": "kiosk", "credential": credential})
        await kiosk.send({"type": "ticket.take", "case": number, "grant": found["grant"]})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        assert ticket["case"] == {"number": number, "round": 1, "correction": True}
        ring = await reviewer.expect("ring")
        assert ring["ticket"]["case"]["number"] == number
        assert other.drain("ring") == []
        row = await ticket_row(server, ticket["id"])
        assert row.case_id is not None and row.preferred_staff_id is not None

        await kiosk.send({"type": "ticket.take", "case": "210211-20000101-0001"})
        assert (await kiosk.expect("error"))["code"] == "case_grant_invalid"


async def test_after_the_preference_window_anyone_may_answer(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url, prefer_reviewer_seconds=1) as server:
        await also_handles_fishing(server, "wangli")
        reviewer_token = await server.staff_token("zhaogang")  # the reviewer stays away
        number, _ = await case_needing_correction(server, {"cloudhelp_session": reviewer_token})
        other = await server.staff("wangli")
        kiosk, take = await server.correction_kiosk(number, LAST4, "TL-01", "DLW-TL")
        await kiosk.send(take)
        ticket = (await kiosk.expect("ticket"))["ticket"]
        ring = await other.expect("ring")
        assert ring["ticket"]["id"] == ticket["id"]


async def test_answered_correction_session_is_round_two_then_passes_and_is_accepted(
    sqlite_demo_url: str,
) -> None:
    """The whole loop on the server: round 1's notice → a correction session answered → round 2
    in pre-review with round 1's marks for reference → passed → accepted. A material the notice
    asked for must be checked again, even a conditional one (授权委托书: a walk passed round 2
    with it never looked at)."""
    async with running_server(sqlite_demo_url, prefer_reviewer_seconds=30) as server:
        reviewer = await server.staff("zhaogang")
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, _ = await case_needing_correction(server, cookies, proxy_missing=True)
        base = f"/api/v1/cases/{number}"

        kiosk, take = await server.correction_kiosk(number, LAST4, "TL-01", "DLW-TL")
        await kiosk.send(take)
        ticket = (await kiosk.expect("ticket"))["ticket"]
        ring = await reviewer.expect("ring")
        assert ring["ticket"]["case"] == {"number": number, "round": 1, "correction": True}
        await reviewer.send({"type": "ring.accept", "ticket": ticket["id"]})
        await reviewer.expect("joined")

        # Answering started round 2: the case is back in pre-review, recorded on the case and
        # on the session.
        async with server.http.get(base, cookies=cookies) as r:
            case = (await r.json())["case"]
        assert case["status"]["code"] == "pre_review" and case["rounds"] == 2
        assert [e["to"]["code"] for e in case["events"]][-2:] == ["correction_needed", "pre_review"]
        assert "round_started" in [e["kind"] for e in case["sessions"][-1]["events"]]
        async with server.http.get(f"{base}/checklist", cookies=cookies) as r:
            checklist = await r.json()
        assert checklist["round"] == 2
        assert all(m["status"] is None for m in checklist["materials"])  # fresh marks
        previous = {m["position"]: m for m in checklist["previous"]["materials"]}
        assert checklist["previous"]["round"] == 1
        assert previous[4]["status"] == "needs_correction"
        assert previous[4]["reason"] == "船检证书未年检"
        assert previous[7]["status"] == "missing"

        async def ok_up_to(last: int) -> None:
            marks = [{"position": n, "status": "ok"} for n in range(1, last + 1)]
            async with server.http.put(
                f"{base}/checklist", json={"materials": marks}, cookies=cookies
            ) as r:
                assert r.status == 200

        async def passed() -> tuple[int, dict[str, Any]]:
            async with server.http.post(
                f"{base}/verdict", json={"verdict": "passed"}, cookies=cookies
            ) as r:
                return r.status, await r.json()

        # Passing without checking is refused, and with only the required materials checked
        # (the conditional one the notice asked for is named); with it checked too it passes.
        status, answer = await passed()
        assert status == 400 and answer["error"]["code"] == "checklist_incomplete"
        await ok_up_to(6)
        status, answer = await passed()
        assert status == 400 and answer["error"]["code"] == "checklist_incomplete"
        assert answer["error"]["message"].endswith("first: 授权委托书及受托人身份证件"), answer
        await ok_up_to(7)
        status, answer = await passed()
        assert status == 200 and answer["case"]["status"]["code"] == "awaiting_acceptance"
        async with server.http.post(
            f"{base}/transitions", json={"to": "accepted"}, cookies=cookies
        ) as r:
            accepted = (await r.json())["case"]
        assert accepted["status"]["code"] == "accepted" and accepted["rounds"] == 2
        assert accepted["time_limits"]["promised_due"] is not None

        # Round 1's marks are kept as they were.
        async with server.http.get(base, cookies=cookies) as r:
            record = (await r.json())["case"]
        round_one = {m["position"]: m["status"] for m in record["checklists"][0]["materials"]}
        assert round_one[4] == "needs_correction"
        assert {m["status"] for m in record["checklists"][1]["materials"]} == {"ok"}


async def test_a_dropped_correction_session_can_be_called_again(sqlite_demo_url: str) -> None:
    """A call that ends before the verdict leaves round 2 open: the resident may call again by
    the case number, and answering does not start yet another round."""
    async with running_server(sqlite_demo_url, prefer_reviewer_seconds=30) as server:
        reviewer = await server.staff("zhaogang")
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, _ = await case_needing_correction(server, cookies)
        kiosk, take = await server.correction_kiosk(number, LAST4, "TL-01", "DLW-TL")
        await kiosk.send(take)
        ticket = (await kiosk.expect("ticket"))["ticket"]
        await reviewer.expect("ring")
        await reviewer.send({"type": "ring.accept", "ticket": ticket["id"]})
        await reviewer.expect("joined")
        await kiosk.send({"type": "call.hangup"})
        await reviewer.expect("wrapup")
        await reviewer.send({"type": "wrapup.done", "outcome": "other"})
        await reviewer.expect("presence", state="available")

        await kiosk.send(take)  # the lookup's grant still holds
        again = await kiosk.expect_where("ticket", lambda f: f["ticket"]["id"] != ticket["id"])
        assert again["ticket"]["case"] == {"number": number, "round": 2, "correction": True}
        ring = await reviewer.expect("ring")
        await reviewer.send({"type": "ring.accept", "ticket": ring["ticket"]["id"]})
        await reviewer.expect("joined")
        async with server.http.get(f"/api/v1/cases/{number}", cookies=cookies) as r:
            case = (await r.json())["case"]
        assert case["status"]["code"] == "pre_review" and case["rounds"] == 2


async def test_notice_names_the_reviewer_and_says_what_to_bring(sqlite_demo_url: str) -> None:
    """告知人 is the display name (赵刚), not the login; a missing material says what to bring
    instead of repeating 缺少; the page and the PDF come from one text."""
    async with running_server(sqlite_demo_url) as server:
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, notice = await case_needing_correction(server, cookies, missing=True)
        assert notice["items"][0]["reason"].startswith("请补充提交该材料")
        async with server.http.get(notice["url"]) as r:
            page = await r.text()
        assert "告知人：赵刚" in page and "zhaogang" not in page
        assert "<p>缺少</p>" not in page and "请补充提交该材料（" in page
        async with server.http.get(f"/notices/{number}/1.pdf", cookies=cookies) as r:
            assert r.status in (200, 503)  # 503 font_missing only without fonts-noto-cjk
            if r.status == 200:
                assert (await r.read()).startswith(b"%PDF")


async def test_a_first_session_transferred_after_its_notice_starts_no_round(
    sqlite_demo_url: str,
) -> None:
    """Only a correction session brings corrected materials: a first session whose case got its
    notice and was then transferred stays 待补正 in round 1 when the next department answers."""
    async with running_server(sqlite_demo_url) as server:
        reviewer = await server.staff("zhaogang")
        other = await server.staff("wangli")
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        kiosk = await server.kiosk("TL-01", "DLW-TL")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        await reviewer.expect("ring")
        await reviewer.send({"type": "ring.accept", "ticket": ticket["id"]})
        await reviewer.expect("joined")
        body = {"item": "NYNC-002", "ticket": ticket["id"], "applicant": {
            "name": "刘海生", "phone": "13812345678", "id_number": ID_NUMBER}}  # fmt: skip
        async with server.http.post("/api/v1/cases", json=body, cookies=cookies) as r:
            number = (await r.json())["case"]["number"]
        base = f"/api/v1/cases/{number}"
        marks = [{"position": n, "status": "ok"} for n in range(1, 8)]
        marks[1] = {"position": 2, "status": "missing"}
        async with server.http.put(f"{base}/checklist", json={"materials": marks}, cookies=cookies):
            pass
        async with server.http.post(
            f"{base}/verdict", json={"verdict": "correction_needed"}, cookies=cookies
        ) as r:
            assert r.status == 200
        await reviewer.send({"type": "ticket.transfer", "department": "SCJG"})
        ring = await other.expect("ring")
        assert ring["ticket"]["case"] == {"number": number, "round": 1, "correction": False}
        await other.send({"type": "ring.accept", "ticket": ticket["id"]})
        await other.expect("joined")
        async with server.http.get(base, cookies=cookies) as r:
            case = (await r.json())["case"]
        assert case["status"]["code"] == "correction_needed" and case["rounds"] == 1
