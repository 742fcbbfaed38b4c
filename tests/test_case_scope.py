"""Department scope of cases (issue 11 rows 1 and 2), over real HTTP: staff read and act on the
cases of the departments they serve and the cases they reviewed; supervisors see the district;
an out-of-scope case answers 404 like a missing one; checklist files must be the case's own;
an overwritten checklist mark stays in the audit trail."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update

from cloudhelp.store.models import Case, Staff
from tests.callkit import CallServer, running_server
from tests.test_cases import ID_NUMBER

PHONE = "13912345670"
APPLICANT = {"name": "周建国", "phone": PHONE, "id_number": ID_NUMBER}


async def _open_case(server: CallServer, cookies: dict[str, str], item: str) -> str:
    body = {"item": item, "applicant": APPLICANT}
    async with server.http.post("/api/v1/cases", json=body, cookies=cookies) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["case"]["number"]


async def _numbers(server: CallServer, cookies: dict[str, str], query: str) -> list[str]:
    async with server.http.get(f"/api/v1/cases?{query}", cookies=cookies) as r:
        assert r.status == 200, await r.text()
        return [c["number"] for c in (await r.json())["cases"]]


async def test_staff_of_another_department_cannot_see_or_touch_a_case(demo_url) -> None:
    async with running_server(demo_url) as server:
        liumei = {"cloudhelp_session": await server.staff_token("liumei")}  # serves 住建
        wangli = {"cloudhelp_session": await server.staff_token("wangli")}  # serves 市场监管
        sunhua = {"cloudhelp_session": await server.staff_token("sunhua")}  # supervisor
        number = await _open_case(server, liumei, "ZJJ-001")
        base = f"/api/v1/cases/{number}"
        http = server.http

        # Reads: the case, its reveal, its checklist, its page — not found, as if absent.
        for path in (
            base,
            f"{base}?reveal=1&reason=核对身份",
            f"{base}/checklist",
            f"/cases/{number}",
        ):
            async with http.get(path, cookies=wangli) as r:
                assert r.status == 404, (path, r.status)
        async with http.get("/api/v1/cases/ZZ-NO-SUCH-CASE", cookies=wangli) as r:
            missing = (await r.json())["error"]["code"]
        async with http.get(base, cookies=wangli) as r:
            assert (await r.json())["error"]["code"] == missing == "not_found"
        # Lists and searches (by number, by phone, by item) simply omit it.
        for query in (f"number={number}", f"phone={PHONE}", "item=ZJJ-001", ""):
            assert number not in await _numbers(server, wangli, query)
            assert number in await _numbers(server, liumei, query)
            assert number in await _numbers(server, sunhua, query)
        async with http.get(f"/cases?phone={PHONE}", cookies=wangli) as r:
            assert r.status == 200 and number not in await r.text()

        # Writes: 不予受理, a checklist mark, a verdict — refused as not found, nothing changed.
        move = {"to": "not_accepted", "reason": "材料不全"}
        async with http.post(f"{base}/transitions", json=move, cookies=wangli) as r:
            assert r.status == 404
        marks = {"materials": [{"position": 1, "status": "ok"}]}
        async with http.put(f"{base}/checklist", json=marks, cookies=wangli) as r:
            assert r.status == 404
        refuse = {"verdict": "not_accepted", "reason": "材料不全"}
        async with http.post(f"{base}/verdict", json=refuse, cookies=wangli) as r:
            assert r.status == 404
        # Nor may she open a case for an item of a department she does not serve.
        async with http.post("/api/v1/cases", json={"item": "ZJJ-001", "applicant": APPLICANT},
                             cookies=wangli) as r:  # fmt: skip
            assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"

        # The reviewer of the case reads it, with the full ID on reveal.
        async with http.get(f"{base}?reveal=1&reason=核对身份", cookies=liumei) as r:
            assert r.status == 200
            case = (await r.json())["case"]
        assert case["status"]["code"] == "pre_review"
        assert case["applicant"]["id_number"] == ID_NUMBER
        # The supervisor sees the district.
        async with http.get(base, cookies=sunhua) as r:
            assert r.status == 200

        # A notice of the case: by its signed link for anyone, by cookie only within scope.
        rows = (await (await http.get(f"{base}/checklist", cookies=liumei)).json())["materials"]
        marks = {"materials": [{"position": m["position"], "status": "missing"} for m in rows]}
        async with http.put(f"{base}/checklist", json=marks, cookies=liumei) as r:
            assert r.status == 200, await r.text()
        verdict = {"verdict": "correction_needed"}
        async with http.post(f"{base}/verdict", json=verdict, cookies=liumei) as r:
            assert r.status == 200, await r.text()
            url = (await r.json())["case"]["notice"]["url"]
        async with http.get(f"/notices/{number}/1", cookies=wangli) as r:
            assert r.status == 404
        async with http.get(url) as r:
            assert r.status == 200
        async with http.get(f"/notices/{number}/1", cookies=liumei) as r:
            assert r.status == 200

        # A case wangli reviewed (she is its case's staff member) is hers to read and act on.
        other = await _open_case(server, liumei, "ZJJ-002")
        async with server.state.db.write() as session:
            wangli_id = await session.scalar(select(Staff.id).where(Staff.username == "wangli"))
            await session.execute(update(Case).where(Case.number == other).values(
                staff_id=wangli_id))  # fmt: skip
        async with http.get(f"/api/v1/cases/{other}", cookies=wangli) as r:
            assert r.status == 200
        assert other in await _numbers(server, wangli, f"phone={PHONE}")
        assert number not in await _numbers(server, wangli, f"phone={PHONE}")
        marks = {"materials": [{"position": 1, "status": "ok"}]}
        async with http.put(f"/api/v1/cases/{other}/checklist", json=marks, cookies=wangli) as r:
            assert r.status == 200, await r.text()


async def test_checklist_files_must_be_the_cases_own(demo_url) -> None:
    async with running_server(demo_url) as server:
        liumei = {"cloudhelp_session": await server.staff_token("liumei")}
        number = await _open_case(server, liumei, "ZJJ-001")
        marks = {"materials": [{"position": 1, "status": "ok", "files": [999999]}]}
        async with server.http.put(
            f"/api/v1/cases/{number}/checklist", json=marks, cookies=liumei
        ) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "bad_file"
        async with server.http.get(f"/api/v1/cases/{number}/checklist", cookies=liumei) as r:
            assert (await r.json())["materials"][0]["status"] is None  # nothing was written


async def test_an_overwritten_mark_is_kept_in_the_audit_trail(demo_url) -> None:
    async with running_server(demo_url) as server:
        liumei = {"cloudhelp_session": await server.staff_token("liumei")}
        sunhua = {"cloudhelp_session": await server.staff_token("sunhua")}
        number = await _open_case(server, liumei, "ZJJ-001")
        path = f"/api/v1/cases/{number}/checklist"
        first = {"materials": [{"position": 1, "status": "ok"}]}
        async with server.http.put(path, json=first, cookies=liumei) as r:
            assert r.status == 200
        second = {
            "materials": [{"position": 1, "status": "needs_correction", "reason": "复印件不清"}]
        }
        async with server.http.put(path, json=second, cookies=sunhua) as r:
            assert r.status == 200
            assert (await r.json())["materials"][0]["status"] == "needs_correction"
        async with server.http.get(f"/api/v1/audit?case={number}", cookies=sunhua) as r:
            assert r.status == 200, await r.text()
            events = [e for e in (await r.json())["events"]
                      if e["action"] == "case.material_marked"]  # fmt: skip
        by_actor = {e["actor"]["name"]: e["detail"] for e in events}
        assert by_actor["liumei"]["status"] == "ok" and by_actor["liumei"]["replaced"] is None
        assert by_actor["sunhua"]["round"] == 1 and by_actor["sunhua"]["position"] == 1
        assert by_actor["sunhua"]["replaced"]["by"] == "liumei"
        assert by_actor["sunhua"]["replaced"]["status"] == "ok"


async def test_a_session_transferred_to_another_department_keeps_its_case_workable(
    demo_url: str,
) -> None:
    """Whoever answers a session may work on its case (a correction session transferred to
    another department's staff member stays workable); before answering, the case is not
    theirs."""
    async with running_server(demo_url) as server:
        reviewer = await server.staff("zhaogang")  # serves 农业农村
        other = await server.staff("wangli")  # serves 市场监管
        zhaogang = {"cloudhelp_session": await server.staff_token("zhaogang")}
        wangli = {"cloudhelp_session": await server.staff_token("wangli")}
        kiosk = await server.kiosk("TL-01", "DLW-TL")
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        await reviewer.expect("ring")
        await reviewer.send({"type": "ring.accept", "ticket": ticket["id"]})
        await reviewer.expect("joined")
        body = {"ticket": ticket["id"], "applicant": APPLICANT}
        async with server.http.post("/api/v1/cases", json=body, cookies=zhaogang) as r:
            assert r.status == 201, await r.text()
            number = (await r.json())["case"]["number"]
        base = f"/api/v1/cases/{number}"
        async with server.http.get(base, cookies=wangli) as r:
            assert r.status == 404
        await reviewer.send({"type": "ticket.transfer", "department": "SCJG"})
        await other.expect("ring")
        await other.send({"type": "ring.accept", "ticket": ticket["id"]})
        await other.expect("joined")
        async with server.http.get(f"/api/v1/cases?ticket={ticket['id']}", cookies=wangli) as r:
            assert [c["number"] for c in (await r.json())["cases"]] == [number]
        # A file sent in this session may be shown on a mark; a file of no session of it not.
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        headers = {"Content-Type": "application/pdf", "X-File-Name": "license.pdf",
                   "X-File-SHA256": hashlib.sha256(pdf).hexdigest()}  # fmt: skip
        async with server.http.post(f"/api/v1/tickets/{ticket['id']}/files", data=pdf,
                                    headers=headers, cookies=wangli) as r:  # fmt: skip
            assert r.status in (200, 201), await r.text()
            file_id = (await r.json())["file"]["id"]
        marks = {"materials": [{"position": 1, "status": "ok", "files": [file_id]}]}
        async with server.http.put(f"{base}/checklist", json=marks, cookies=wangli) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["materials"][0]["files"] == [file_id]
        marks = {"materials": [{"position": 1, "status": "ok", "files": [file_id, file_id + 1]}]}
        async with server.http.put(f"{base}/checklist", json=marks, cookies=wangli) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_file"
