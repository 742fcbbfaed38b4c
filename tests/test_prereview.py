"""Pre-review: the material checklist, the verdict and the one-time correction notice."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sqlalchemy import select

from cloudhelp.store.filestore import storage_path
from cloudhelp.store.models import Case, CorrectionNotice
from tests.callkit import running_server
from tests.test_cases import ID_NUMBER


async def test_two_materials_need_correction_then_the_next_round_passes(sqlite_demo_url) -> None:
    async with running_server(sqlite_demo_url) as server:
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        post = server.http.post
        body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                                  "id_number": ID_NUMBER}}  # fmt: skip
        async with post("/api/v1/cases", json=body, cookies=cookies) as r:
            number = (await r.json())["case"]["number"]
        base = f"/api/v1/cases/{number}"

        async with server.http.get(f"{base}/checklist", cookies=cookies) as r:
            checklist = await r.json()
        materials = checklist["materials"]
        assert checklist["round"] == 1 and len(materials) == 7
        assert all(m["status"] is None for m in materials)

        # A verdict before every required material is checked is refused.
        async with post(f"{base}/verdict", json={"verdict": "passed"}, cookies=cookies) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "checklist_incomplete"

        marks = [{"position": m["position"], "status": "ok"} for m in materials]
        marks[2] = {"position": 3, "status": "needs_correction", "reason": "原证未交回"}
        marks[3] = {"position": 4, "status": "needs_correction", "reason": "船检证书未年检"}
        marks[6] = {"position": 7, "status": "not_applicable"}
        async with server.http.put(
            f"{base}/checklist", json={"materials": marks[:2]}, cookies=cookies
        ) as r:
            assert r.status == 200
        no_reason = [{"position": 3, "status": "needs_correction"}]
        async with server.http.put(
            f"{base}/checklist", json={"materials": no_reason}, cookies=cookies
        ) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "reason_required"
        async with server.http.put(
            f"{base}/checklist", json={"materials": marks}, cookies=cookies
        ) as r:
            rows = (await r.json())["materials"]
        assert [row["status"] for row in rows][2:4] == ["needs_correction", "needs_correction"]

        async with post(f"{base}/verdict", json={"verdict": "passed"}, cookies=cookies) as r:
            assert (await r.json())["error"]["code"] == "materials_need_correction"
        verdict = {"verdict": "correction_needed"}
        async with post(f"{base}/verdict", json=verdict, cookies=cookies) as r:
            assert r.status == 200, await r.text()
            case = (await r.json())["case"]
        assert case["status"] == {"code": "correction_needed", "label": "待补正"}
        notice = case["notice"]
        assert [i["reason"] for i in notice["items"]] == ["原证未交回", "船检证书未年检"]

        # The kiosk opens the printable notice by its signed link, without signing in.
        async with server.http.get(notice["url"]) as r:
            html = await r.text()
            assert r.status == 200
        assert "材料补正一次性告知书" in html and number in html and "<svg" in html
        assert "船检证书未年检" in html and "1 个工作日" in html and "20 个工作日" in html
        assert ID_NUMBER not in html
        pdf_url = notice["url"].replace("/1?t=", "/1.pdf?t=")
        async with server.http.get(pdf_url) as r:
            pdf = await r.read()
            assert r.status == 200 and r.content_type == "application/pdf"
        assert pdf.startswith(b"%PDF-") and len(pdf) > 2000
        forged = re.sub(r"t=\w+", "t=forged", notice["url"])
        async with server.http.get(forged) as r:
            assert r.status == 401

        # The correction session: a second round re-reviews what was wrong, and passes.
        move = {"to": "pre_review", "reason": "补正材料已提交"}
        async with post(f"{base}/transitions", json=move, cookies=cookies) as r:
            assert (await r.json())["case"]["rounds"] == 2
        async with server.http.get(f"{base}/checklist", cookies=cookies) as r:
            assert all(m["status"] is None for m in (await r.json())["materials"])
        fixed = [{"position": m["position"], "status": "ok"} for m in materials[:6]]
        async with server.http.put(
            f"{base}/checklist", json={"materials": fixed}, cookies=cookies
        ) as r:
            assert r.status == 200
        async with post(f"{base}/verdict", json={"verdict": "passed"}, cookies=cookies) as r:
            case = (await r.json())["case"]
        assert case["status"]["code"] == "awaiting_acceptance" and "notice" not in case
        async with server.http.put(
            f"{base}/checklist", json={"materials": fixed}, cookies=cookies
        ) as r:
            assert (await r.json())["error"]["code"] == "not_in_pre_review"


async def _case_with_notice(server) -> tuple[str, str]:
    """A case whose first round needs one correction: its number and its notice link."""
    cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
    body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                              "id_number": ID_NUMBER}}  # fmt: skip
    async with server.http.post("/api/v1/cases", json=body, cookies=cookies) as r:
        number = (await r.json())["case"]["number"]
    base = f"/api/v1/cases/{number}"
    async with server.http.get(f"{base}/checklist", cookies=cookies) as r:
        materials = (await r.json())["materials"]
    marks = [{"position": m["position"], "status": "ok"} for m in materials]
    marks[2] = {"position": 3, "status": "needs_correction", "reason": "原证未交回"}
    async with server.http.put(f"{base}/checklist", json={"materials": marks}, cookies=cookies):
        pass
    verdict = {"verdict": "correction_needed"}
    async with server.http.post(f"{base}/verdict", json=verdict, cookies=cookies) as r:
        assert r.status == 200, await r.text()
        return number, (await r.json())["case"]["notice"]["url"]


async def test_the_notice_pdf_is_drawn_once_and_served_from_the_file_store(
    sqlite_demo_url, tmp_path
) -> None:
    async with running_server(sqlite_demo_url, data_dir=tmp_path) as server:
        number, url = await _case_with_notice(server)
        pdf_url = url.replace("/1?t=", "/1.pdf?t=")
        pdfs = server.state.notice_pdfs

        async def fetch() -> bytes:
            async with server.http.get(pdf_url) as r:
                assert r.status == 200 and r.content_type == "application/pdf"
                return await r.read()

        # Five kiosks ask at once: one drawing, the same bytes for all.
        bodies = await asyncio.gather(*(fetch() for _ in range(5)))
        assert len(set(bodies)) == 1 and bodies[0].startswith(b"%PDF-")
        assert pdfs.renders == 1
        assert await fetch() == bodies[0] and pdfs.renders == 1  # later: from the store

        async def stored() -> Path:
            async with server.state.db.read() as session:
                sha256 = await session.scalar(
                    select(CorrectionNotice.pdf_sha256)
                    .join(Case, Case.id == CorrectionNotice.case_id)
                    .where(Case.number == number)
                )
            return storage_path(tmp_path, sha256)

        assert (await stored()).read_bytes() == bodies[0]
        # Bytes gone from the store: drawn again, and kept again.
        (await stored()).unlink()
        again = await fetch()
        assert again.startswith(b"%PDF-") and pdfs.renders == 2
        assert (await stored()).read_bytes() == again
    # Another process (a restart) serves the stored copy without drawing.
    async with running_server(sqlite_demo_url, data_dir=tmp_path) as server:
        async with server.http.get(pdf_url) as r:
            assert r.status == 200 and (await r.read()).startswith(b"%PDF-")
        assert server.state.notice_pdfs.renders == 0
