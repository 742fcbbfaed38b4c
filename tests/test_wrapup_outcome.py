"""A wrap-up that times out records the outcome the session implies (domain/outcomes.py)."""

from __future__ import annotations

import json

import pytest

from cloudhelp.domain.outcomes import outcome_of
from cloudhelp.store.models import Case
from tests.callkit import CallServer, running_server
from tests.helpers import run_cli
from tests.test_call_core import answer, set_department, take_ticket, ticket_row
from tests.test_cases import ID_NUMBER

pytestmark = pytest.mark.usefixtures("loopback_ice")


def test_the_rule() -> None:
    assert outcome_of("transferred", "correction_needed") == "referred"
    assert outcome_of("kiosk_hangup", "correction_needed") == "needs_correction"
    for state in ("awaiting_acceptance", "accepted", "concluded", "delivered"):
        assert outcome_of("staff_hangup", state) == "resolved"
    assert outcome_of("kiosk_hangup", "not_accepted") == "other"
    assert outcome_of("kiosk_hangup", None) == "other"


async def session_with_verdict(
    server: CallServer, staff_cookie: dict[str, str], ticket_id: int, verdict: str | None
) -> None:
    """Open a case for the ticket in the call and give the pre-review verdict (or none)."""
    if verdict is None:
        return
    body = {"ticket": ticket_id, "applicant": {"name": "刘海生", "phone": "13812345678",
                                               "id_number": ID_NUMBER}}  # fmt: skip
    async with server.http.post("/api/v1/cases", json=body, cookies=staff_cookie) as r:
        assert r.status in (200, 201), await r.text()
        number = (await r.json())["case"]["number"]
    marks = [{"position": n, "status": "ok"} for n in range(1, 8)]
    if verdict == "correction_needed":
        marks[3] = {"position": 4, "status": "needs_correction", "reason": "船检证书未年检"}
    base = f"/api/v1/cases/{number}"
    checklist = {"materials": marks}
    async with server.http.put(f"{base}/checklist", json=checklist, cookies=staff_cookie):
        pass
    async with server.http.post(
        f"{base}/verdict", json={"verdict": verdict}, cookies=staff_cookie
    ) as r:
        assert r.status == 200, await r.text()


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [("correction_needed", "needs_correction"), ("passed", "resolved"), (None, "other")],
)
async def test_timed_out_wrapup_records_what_the_session_implies(
    sqlite_demo_url: str, verdict: str | None, expected: str
) -> None:
    async with running_server(sqlite_demo_url) as server:
        await set_department(server, "NYNC", wrapup_seconds=1)
        token = await server.staff_token("zhaogang")  # 区农业农村局
        staff = await server.connect({"kind": "staff", "token": token})
        await staff.expect("presence", state="away")
        await staff.send({"type": "staff.status", "status": "available"})
        await staff.expect("presence", state="available")
        kiosk = await server.kiosk("QG-01")
        ticket = await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await staff.expect("joined")
        await session_with_verdict(server, {"cloudhelp_session": token}, ticket["id"], verdict)

        await kiosk.send({"type": "call.hangup"})
        wrapup = await staff.expect("wrapup")
        # The console preselects the server's proposal, the same one the timeout records.
        assert wrapup["outcome"] == expected and wrapup["seconds"] == 1
        await staff.expect("presence", state="available")  # nobody pressed 完成: the timer
        row = await ticket_row(server, ticket["id"])
        assert row.status == "completed" and row.outcome == expected


async def test_wrapup_note_shows_on_the_case_page_and_in_case_show(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        token = await server.staff_token("zhaogang")
        staff = await server.connect({"kind": "staff", "token": token})
        await staff.expect("presence", state="away")
        await staff.send({"type": "staff.status", "status": "available"})
        # Taken now, or the "available" after the wrap-up below would match this one at once
        # and the case page could be read before the note is written (failed once in CI).
        await staff.expect("presence", state="available")
        kiosk = await server.kiosk("QG-01")
        ticket = await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await staff.expect("joined")
        cookie = {"cloudhelp_session": token}
        await session_with_verdict(server, cookie, ticket["id"], "correction_needed")
        await kiosk.send({"type": "call.hangup"})
        await staff.expect("wrapup")
        note = "船检证书需到渔政站年检后再来"
        await staff.send({"type": "wrapup.done", "outcome": "needs_correction", "note": note})
        await staff.expect("presence", state="available")
        row = await ticket_row(server, ticket["id"])
        async with server.state.db.read() as session:
            case = await session.get(Case, row.case_id)
            assert case is not None
            number = case.number
        async with server.http.get(f"/cases/{number}", cookies=cookie) as r:
            page = await r.text()
        assert r.status == 200 and f"办理备注</strong>：{note}" in page

    shown = run_cli("case", "show", number, "--db", sqlite_demo_url)
    assert shown.returncode == 0, shown.stderr
    assert f"wrap-up note: {note}" in shown.stdout, shown.stdout
    record = json.loads(run_cli("case", "show", number, "--json", "--db", sqlite_demo_url).stdout)
    assert record["sessions"][0]["note"] == note
