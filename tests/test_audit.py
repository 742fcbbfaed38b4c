"""The audit trail (全程留痕): the hash chain, `audit verify`, the events recorded, the API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cloudhelp.core.clock import local_date
from cloudhelp.devtools import demo
from cloudhelp.domain import audit
from cloudhelp.http import audit_routes
from cloudhelp.store import db
from cloudhelp.store.models import (
    AuditEvent,
    Case,
    Kiosk,
    ServiceItem,
    Station,
    Ticket,
    TicketFile,
    utcnow,
)
from tests.callkit import DEMO_PASSWORD, running_server
from tests.helpers import run_cli
from tests.test_cases import ID_NUMBER


async def _append_rows(database: db.Database, count: int, prefix: str = "C") -> None:
    for i in range(count):
        async with database.write() as session:
            await audit.append(
                session, audit.Actor("staff", f"user{i}", i, "10.0.0.7"), "case.transition",
                subject_kind="case", subject=f"{prefix}{i}", case_number=f"{prefix}{i}",
                reason="测试", **{"from": "pre_review", "to": "accepted"},
            )  # fmt: skip


async def _verify(engine: AsyncEngine) -> audit.Verdict:
    async with db.Database(engine).read() as session:
        return await audit.verify(session)


def _cli_verify(url: str) -> tuple[int, dict[str, Any]]:
    done = run_cli("audit", "verify", "--json", "--db", url)
    return done.returncode, json.loads(done.stdout)


async def _row(engine: AsyncEngine, seq: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT * FROM audit_events WHERE seq = :s"), {"s": seq})
        return dict(found.mappings().one())


async def _insert(engine: AsyncEngine, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    values = ", ".join(f":{k}" for k in row)
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO audit_events ({names}) VALUES ({values})"), row)


def _hash_of(row: dict[str, Any]) -> str:
    event = AuditEvent(**{k: v for k, v in row.items() if k not in ("row_hash", "at")})
    at = row["at"]  # naive UTC; SQLite hands it back as text
    event.at = (datetime.fromisoformat(at) if isinstance(at, str) else at).replace(tzinfo=UTC)
    return hashlib.sha256(audit.canonical(event)).hexdigest()


async def _shift(engine: AsyncEngine, from_seq: int, by: int) -> None:
    """Renumber rows from ``from_seq`` on (two steps: the key is checked row by row)."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_events SET seq = seq + 100000 WHERE seq >= :s"), {"s": from_seq}
        )
        await conn.execute(
            text("UPDATE audit_events SET seq = seq - 100000 + :by WHERE seq >= 100000"),
            {"by": by},
        )


async def test_verify_names_the_row_altered_removed_or_inserted(
    engine: AsyncEngine, database_url: str
) -> None:
    database = db.Database(engine)
    await _append_rows(database, 6)
    verdict = await _verify(engine)
    assert verdict.problem is None and verdict.rows == 6 and verdict.head_seq == 6
    code, body = _cli_verify(database_url)
    assert code == 0 and body["ok"] and body["head"]["seq"] == 6

    # Altered: row 3 names someone else.
    original = await _row(engine, 3)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET actor_name = 'mallory' WHERE seq = 3"))
    code, body = _cli_verify(database_url)
    assert code == 1 and body["problem"]["seq"] == 3 and body["problem"]["kind"] == "altered"
    # … even when the attacker also rewrites its hash: row 4 no longer links to it.
    forged = {**original, "actor_name": "mallory"}
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_events SET row_hash = :h WHERE seq = 3"), {"h": _hash_of(forged)}
        )
    problem = (await _verify(engine)).problem
    assert problem is not None and (problem.seq, problem.kind) == (3, "altered")
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    await _insert(engine, original)
    assert (await _verify(engine)).problem is None

    # Removed: row 4 is deleted.
    removed = await _row(engine, 4)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    code, body = _cli_verify(database_url)
    assert code == 1 and body["problem"]["seq"] == 4 and body["problem"]["kind"] == "removed"
    assert "row 4 removed" in body["problem"]["message"]
    await _insert(engine, removed)
    assert (await _verify(engine)).problem is None

    # Inserted: a well-formed row slipped in as row 4, the later rows renumbered.
    row3 = await _row(engine, 3)
    await _shift(engine, 4, 1)
    slipped = {**row3, "seq": 4, "actor_name": "mallory", "prev_hash": row3["row_hash"]}
    slipped["row_hash"] = _hash_of(slipped)
    await _insert(engine, slipped)
    code, body = _cli_verify(database_url)
    assert code == 1 and body["problem"]["seq"] == 4 and body["problem"]["kind"] == "inserted"
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    await _shift(engine, 5, -1)
    assert (await _verify(engine)).problem is None

    # Inserted at the end, linked and hashed like a real row, but beyond the chain's head.
    row6 = await _row(engine, 6)
    tail = {**row6, "seq": 7, "actor_name": "mallory", "prev_hash": row6["row_hash"]}
    tail["row_hash"] = _hash_of(tail)
    await _insert(engine, tail)
    problem = (await _verify(engine)).problem
    assert problem is not None and (problem.seq, problem.kind) == (7, "inserted")
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE seq = 7"))

    # Removed from the end: the head still names row 6.
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE seq = 6"))
    problem = (await _verify(engine)).problem
    assert problem is not None and (problem.seq, problem.kind) == (6, "removed")
    await _insert(engine, row6)
    assert (await _verify(engine)).problem is None

    # A deleted head row is rebuilt from the last row: appends go on, the chain holds.
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_head"))
    await _append_rows(database, 1, "D")
    verdict = await _verify(engine)
    assert verdict.problem is None and verdict.rows == 7 and verdict.head_seq == 7


async def test_two_processes_append_to_one_chain(engine: AsyncEngine, database_url: str) -> None:
    """Two servers on one database (two engines, two pools): appends never fork the chain."""
    second = db.create_engine(database_url)
    try:
        await asyncio.gather(
            _append_rows(db.Database(engine), 15, "A"), _append_rows(db.Database(second), 15, "B")
        )
    finally:
        await second.dispose()
    verdict = await _verify(engine)
    assert verdict.problem is None and verdict.rows == 30 and verdict.head_seq == 30


def _actions(events: list[dict[str, Any]]) -> list[str]:
    return [e["action"] for e in events]


async def test_the_events_are_recorded_and_supervisors_read_them(
    demo_url: str, tmp_path: Path
) -> None:
    async with running_server(demo_url, data_dir=tmp_path) as server:
        http = server.http
        staff = {"cloudhelp_session": await server.staff_token("zhaogang")}
        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}
        admin = {"cloudhelp_session": await server.staff_token("admin")}
        bad = {"username": "zhaogang", "password": "wrong-password"}
        async with http.post("/api/v1/auth/login", json=bad) as r:
            assert r.status == 401

        body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                                  "id_number": ID_NUMBER}}  # fmt: skip
        async with http.post("/api/v1/cases", json=body, cookies=staff) as r:
            number = (await r.json())["case"]["number"]
        base = f"/api/v1/cases/{number}"
        async with http.get(f"{base}?reveal=1", cookies=staff) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "reveal_reason_required"
        async with http.get(f"{base}?reveal=1&reason=核对身份证", cookies=staff) as r:
            assert (await r.json())["case"]["applicant"]["id_number"] == ID_NUMBER
        async with http.get(f"{base}/checklist", cookies=staff) as r:
            materials = (await r.json())["materials"]
        marks = [{"position": m["position"], "status": "ok"} for m in materials]
        marks[0] = {"position": marks[0]["position"], "status": "needs_correction",
                    "reason": "照片不清晰"}  # fmt: skip
        async with http.put(f"{base}/checklist", json={"materials": marks}, cookies=staff) as r:
            assert r.status == 200, await r.text()
        verdict = {"verdict": "correction_needed"}
        async with http.post(f"{base}/verdict", json=verdict, cookies=staff) as r:
            assert r.status == 200, await r.text()

        # A file a resident sent, opened by the supervisor.
        state = server.state
        content = b"\xff\xd8\xff\xe0" + b"photo" * 20
        sha = hashlib.sha256(content).hexdigest()
        path = tmp_path / "files" / sha[:2] / sha
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        async with state.db.write() as session:
            case = await session.scalar(select(Case).where(Case.number == number))
            ticket = await _ticket_for(session, case)
            row = TicketFile(ticket_id=ticket.id, sha256=sha, name="身份证.jpg",
                             content_type="image/jpeg", size=len(content), sender="kiosk",
                             uploaded_by="kiosk")  # fmt: skip
            session.add(row)
            await session.flush()
            file_url = f"/api/v1/tickets/{ticket.id}/files/{row.id}"
        async with http.get(file_url, cookies=supervisor) as r:
            assert r.status == 200 and await r.read() == content

        # Kiosk enrolment and revocation by an administrator; a threshold by a supervisor.
        new_kiosk = {"station": "DLW-QG", "code": "QG-AUDIT"}
        async with http.post("/api/v1/admin/kiosks", json=new_kiosk, cookies=admin) as r:
            assert r.status == 201, await r.text()
            enrol_code = (await r.json())["enrol_code"]
        async with http.post("/api/v1/kiosk/enrol", json={"code": enrol_code}) as r:
            assert r.status == 200, await r.text()
        async with http.post("/api/v1/admin/kiosks/QG-AUDIT/revoke", cookies=admin) as r:
            assert r.status == 200
        threshold = {"kind": "ticket_wait", "value": 240, "department": "NYNC"}
        async with http.put("/api/v1/warning-thresholds", json=threshold, cookies=supervisor) as r:
            assert r.status == 200, await r.text()

        # Staff may not read the trail; supervisors may, filtered.
        async with http.get("/api/v1/audit", cookies=staff) as r:
            assert r.status == 403
        async with http.get("/api/v1/audit") as r:
            assert r.status == 401
        async with http.get(f"/api/v1/audit?case={number}", cookies=supervisor) as r:
            events = (await r.json())["events"]
        assert _actions(events)[::-1] == [
            "case.opened", "case.pii_revealed", *["case.material_marked"] * len(marks),
            "case.transition", "case.verdict", "notice.issued", "file.downloaded",
        ]  # fmt: skip
        by_action = {e["action"]: e for e in events}
        assert by_action["case.pii_revealed"]["detail"]["reason"] == "核对身份证"
        assert by_action["case.pii_revealed"]["actor"]["name"] == "zhaogang"
        assert by_action["case.pii_revealed"]["address"] == "127.0.0.1"
        assert by_action["case.transition"]["detail"] == {
            "from": "pre_review", "to": "correction_needed",
            "reason": "一次性告知：1 项材料需补正",
        }  # fmt: skip
        assert by_action["file.downloaded"]["detail"]["sha256"] == sha
        assert by_action["file.downloaded"]["actor"]["name"] == "sunhua"
        async with http.get("/api/v1/audit?person=zhaogang", cookies=supervisor) as r:
            mine = _actions((await r.json())["events"])
        assert "auth.sign_in" in mine and "auth.sign_in_failed" in mine
        assert "file.downloaded" not in mine
        async with http.get("/api/v1/audit?action=kiosk.enrolled", cookies=supervisor) as r:
            (enrolled,) = (await r.json())["events"]
        assert enrolled["actor"] == {"kind": "kiosk", "id": enrolled["actor"]["id"],
                                     "name": "QG-AUDIT"}  # fmt: skip
        async with http.get("/api/v1/audit", cookies=supervisor) as r:
            everything = _actions((await r.json())["events"])
        for action in ("kiosk.enrol_code_issued", "kiosk.revoked", "setting.warning_threshold"):
            assert action in everything
        today = local_date(utcnow()).isoformat()  # the district's day, not the machine's
        async with http.get(f"/api/v1/audit?from={today}&to={today}", cookies=supervisor) as r:
            assert len((await r.json())["events"]) == len(everything)
        async with http.get("/api/v1/audit?from=2020-01-01&to=2020-01-02", cookies=supervisor) as r:
            assert (await r.json())["events"] == []
        for query in ("from=someday", "from=0001-01-01", "to=9999-12-31", "before=²",
                      "before=99999999999", "limit=0", "limit=501"):  # fmt: skip
            async with http.get(f"/api/v1/audit?{query}", cookies=supervisor) as r:
                assert r.status == 400, query
                assert (await r.json())["error"]["code"] == "bad_request"

    # Settings changed at the command line are recorded too, and the chain holds.
    # With no terminal and no USER (cron, systemd), the operator is the account's name.
    done = run_cli("department", "set", "NYNC", "--ring-seconds", "25", "--db", demo_url,
                   env={"USER": ""})  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = run_cli("calendar", "set", "2026-10-10", "workday", "--actor", "ops", "--db", demo_url)
    assert done.returncode == 0, done.stderr
    done = run_cli("staff", "password", "wangli", "--password-stdin", "--db", demo_url,
                   input_text="a-new-password\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    code, body = _cli_verify(demo_url)
    assert code == 0, body
    engine = db.create_engine(demo_url)
    try:
        async with db.Database(engine).read() as session:
            rows = await audit.search(session, limit=3)
    finally:
        await engine.dispose()
    assert rows[0].action == "account.password_set" and rows[0].subject == "wangli"
    rows = rows[1:]
    assert [r.action for r in rows] == ["setting.calendar", "setting.department"]
    assert rows[0].actor_name == "ops" and rows[0].actor_kind == "cli"
    assert json.loads(rows[1].detail) == {"changes": {"ring_seconds": 25}}
    assert rows[1].actor_name == pwd.getpwuid(os.getuid()).pw_name  # "root", never "0"


async def _ticket_for(session: Any, case: Case) -> Ticket:
    """A finished session (ticket) of the case, as a call would leave it."""
    kiosk = await session.scalar(select(Kiosk).limit(1))
    item = await session.get(ServiceItem, case.item_id)
    now = utcnow()
    taken = await session.scalar(select(func.count()).select_from(Ticket))
    ticket = Ticket(day=now.date().isoformat(), number=f"A9{taken:02d}", item_id=item.id,
                    department_id=item.department_id, station_id=kiosk.station_id,
                    kiosk_id=kiosk.id, case_id=case.id, status="closed", enqueued_at=now,
                    ended_at=now, closed_at=now)  # fmt: skip
    session.add(ticket)
    await session.flush()
    return ticket


# ------------------------------------------------------------------------------ retention


async def _kept_file(session: Any, ticket: Ticket, content: bytes, data_dir: Path) -> TicketFile:
    sha = hashlib.sha256(content).hexdigest()
    path = data_dir / "files" / sha[:2] / sha
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    row = TicketFile(ticket_id=ticket.id, sha256=sha, name=f"{sha[:6]}.jpg",
                     content_type="image/jpeg", size=len(content), sender="kiosk",
                     uploaded_by="kiosk")  # fmt: skip
    session.add(row)
    await session.flush()
    return row


async def test_files_are_purged_after_their_cases_retention(
    demo_engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    from cloudhelp.domain import retention
    from cloudhelp.store.models import CaseEvent
    from tests.test_cases import new_case

    ended = datetime(2026, 1, 10, 3, tzinfo=UTC)
    day = timedelta(days=1)
    database = db.Database(demo_engine)
    photo = b"\xff\xd8\xff\xe0"
    async with database.write() as session:
        concluded, still_open, refused = [await new_case(session) for _ in range(3)]
        concluded.status, concluded.concluded_at = "concluded", ended
        refused.status = "not_accepted"
        session.add(CaseEvent(case_id=refused.id, from_state="pre_review",
                              to_state="not_accepted", actor="zhaogang", reason="不符合条件",
                              at=ended))  # fmt: skip
        tickets = [await _ticket_for(session, c) for c in (concluded, still_open, refused)]
        caseless = await _ticket_for(session, concluded)
        caseless.case_id, caseless.closed_at = None, ended
        shared = await _kept_file(session, tickets[0], photo + b"shared", tmp_path)
        own = await _kept_file(session, tickets[0], photo + b"concluded", tmp_path)
        open_copy = await _kept_file(session, tickets[1], photo + b"shared", tmp_path)
        refused_file = await _kept_file(session, tickets[2], photo + b"refused", tmp_path)
        caseless_file = await _kept_file(session, caseless, photo + b"caseless", tmp_path)
    due_ids = {shared.id, own.id, refused_file.id, caseless_file.id}

    # The command line, on today's clock (long after January): lists them, changes nothing.
    listed = run_cli("files", "purge", "--dry-run", "--db", database_url,
                     env={"CLOUDHELP_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "4 file(s) would purge" in listed.stdout and concluded.number in listed.stdout

    assert await retention.purge(database, tmp_path, 180, now=ended + 179 * day) == []
    dry = await retention.purge(database, tmp_path, 180, now=ended + 181 * day, dry_run=True)
    assert {f.id for f in dry} == due_ids
    purged = await retention.purge(database, tmp_path, 180, now=ended + 181 * day)
    assert {f.id for f in purged} == due_ids
    assert await retention.purge(database, tmp_path, 180, now=ended + 400 * day) == []

    def stored(row: TicketFile) -> bool:
        return (tmp_path / "files" / row.sha256[:2] / row.sha256).exists()

    assert stored(open_copy) and stored(shared)  # the open case still needs the same bytes
    assert not stored(own) and not stored(refused_file) and not stored(caseless_file)
    async with database.read() as session:
        rows = {r.id: r for r in (await session.scalars(select(TicketFile))).all()}
        trail = await audit.search(session, action="file.purged")
        verdict = await audit.verify(session)
    assert rows[open_copy.id].purged_at is None
    assert all(rows[i].purged_at == ended + 181 * day for i in due_ids)
    assert {json.loads(e.detail)["sha256"] for e in trail} == {rows[i].sha256 for i in due_ids}
    assert {e.case_number for e in trail} == {concluded.number, refused.number, None}
    assert verdict.problem is None

    # A purged file is gone for good: 410 with its own code (the row and hash stay).
    async with running_server(database_url, data_dir=tmp_path) as server:
        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}
        url = f"/api/v1/tickets/{tickets[0].id}/files/{own.id}"
        async with server.http.get(url, cookies=supervisor) as r:
            assert r.status == 410 and (await r.json())["error"]["code"] == "file_purged"
        kept = f"/api/v1/tickets/{tickets[1].id}/files/{open_copy.id}"
        async with server.http.get(kept, cookies=supervisor) as r:
            assert r.status == 200


# ------------------------------------------------------------------------------ the page


def _actions_written() -> dict[str, str]:
    """Every action an ``audit.append(session, actor, action, …)`` call in the code base can
    write, and where; an action that is not a literal fails (the page could not label it)."""
    import ast

    root = Path(__file__).resolve().parent.parent / "cloudhelp"
    found: dict[str, str] = {}
    for source in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            func = getattr(node, "func", None)
            if not (
                isinstance(node, ast.Call)
                and isinstance(func, ast.Attribute)
                and func.attr == "append"
                and isinstance(func.value, ast.Name)
                and func.value.id == "audit"
            ):
                continue
            where = f"{source.relative_to(root.parent)}:{node.lineno}"
            action = node.args[2] if len(node.args) > 2 else None
            assert isinstance(action, ast.Constant) and isinstance(action.value, str), where
            found[action.value] = where
    return found


def test_every_action_the_code_writes_is_listed_and_labelled() -> None:
    """The page's 操作 filter lists audit.ACTIONS and labels rows from the catalogs."""
    catalogs = {
        lang: json.loads((Path(__file__).resolve().parent.parent / "web" / "i18n" / f"{lang}.json")
                         .read_text(encoding="utf-8"))
        for lang in ("zh-CN", "en")
    }  # fmt: skip
    written = _actions_written()
    assert {"case.material_marked", "case.transition", "auth.sign_in"} <= set(written)
    for action, where in written.items():
        assert action in audit.ACTIONS, f"{action} ({where}) is not in audit.ACTIONS"
    for action in audit.ACTIONS:
        for lang, catalog in catalogs.items():
            assert catalog.get(f"audit.action.{action}"), f"{lang} has no label for {action}"


async def test_the_audit_page_is_filtered_labelled_and_readable(sqlite_demo_url: str) -> None:
    from playwright.async_api import expect

    from tests.browserkit import chromium, new_page, snap
    from tests.journeykit import axe_violations, english_sentences
    from tests.test_board_browser import signed_in

    async with running_server(sqlite_demo_url) as server, chromium() as browser:
        staff = {"cloudhelp_session": await server.staff_token("zhaogang")}
        body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                                  "id_number": ID_NUMBER}}  # fmt: skip
        async with server.http.post("/api/v1/cases", json=body, cookies=staff) as r:
            number = (await r.json())["case"]["number"]
        # Originals sent back to a station for this case: an item's row, whose states and
        # kind are not a case's.
        paper = {"case": number, "kind": "originals_back", "destination": "DLW-QG"}
        async with server.http.post("/api/v1/logistics/items", json=paper, cookies=staff) as r:
            assert r.status == 201, await r.text()
        reveal = f"/api/v1/cases/{number}?reveal=1&reason=核对申请人身份"
        async with server.http.get(reveal, cookies=staff) as r:
            assert r.status == 200
        base = f"/api/v1/cases/{number}"
        async with server.http.get(f"{base}/checklist", cookies=staff) as r:
            materials = (await r.json())["materials"]
        first = materials[0]
        for mark in ({"status": "ok"}, {"status": "needs_correction", "reason": "照片不清晰"}):
            marks = {"materials": [{"position": first["position"], **mark}]}
            async with server.http.put(f"{base}/checklist", json=marks, cookies=staff) as r:
                assert r.status == 200, await r.text()
        move = {"to": "not_accepted", "reason": "不属于本部门受理范围"}
        async with server.http.post(
            f"/api/v1/cases/{number}/transitions", json=move, cookies=staff
        ) as r:
            assert r.status == 200, await r.text()

        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1440, "height": 900})
        await signed_in(server, page, "zhaogang")
        response = await page.goto("/audit")
        assert response is not None and response.status == 403  # staff may not read it
        await page.context.close()
        page = await new_page(browser, server.base_url)
        await page.set_viewport_size({"width": 1440, "height": 900})
        await signed_in(server, page, "sunhua")
        await page.goto("/audit")
        for name, role, label in (
            ("person", "textbox", "人员（账号或终端编号）"), ("case", "textbox", "办件编号"),
            ("action", "combobox", "操作"), ("from", "textbox", "起始日期"),
            ("to", "textbox", "截止日期"),
        ):  # fmt: skip
            await expect(page.get_by_role(role, name=label, exact=True)).to_have_attribute(
                "name", name
            )
        rows = page.locator("table.audit tbody tr")
        await expect(rows.first).to_contain_text("登录")  # newest first: sunhua signing in
        # The header names the page; each person is labelled by their role.
        await expect(page.locator(".topbar .brand")).to_have_text("云审计日志")
        await expect(rows.first.locator("td").nth(2)).to_have_text("sunhua 值班长")
        assert await axe_violations(page, "audit") == []
        assert await english_sentences(page) == []
        await snap(page, "audit-1-all")
        # No catalog key shows through, whatever wrote the row (here the demo's papers on the
        # road, whose states are not a case's): subjects, states and kinds are all in words.
        await page.goto("/audit?action=logistics.item")
        await expect(rows.first).to_contain_text("物品")
        table = await page.locator("table.audit").inner_text()
        leaked = [w for w in table.split() if "audit." in w or "state." in w or "kind." in w]
        assert leaked == [], leaked[:5]
        # Stations by their names, never their codes (a run's destination, a kiosk's station):
        # a kiosk enrolled now, as POST /api/v1/kiosk/enrol records it.
        async with server.state.db.write() as s:
            kiosk = await s.scalar(select(Kiosk).order_by(Kiosk.id).limit(1))
            assert kiosk is not None
            station = await s.scalar(select(Station.code).where(Station.id == kiosk.station_id))
            enrolled_by = audit.kiosk_actor(kiosk)
            await audit.append(s, enrolled_by, "kiosk.enrolled", subject_kind="kiosk",
                               subject=kiosk.code, station=station)  # fmt: skip
            stations = (await s.execute(select(Station.code, Station.name))).all()
        await page.goto("/audit")
        details = await page.locator("table.audit td.detail").all_inner_texts()
        coded = [d for d in details for code, _ in stations if f"：{code}" in d]
        assert coded == [], coded[:3]
        assert [d for d in details for _, name in stations if f"：{name}" in d], details[:10]

        # Every action the code writes can be chosen, by its label.
        options = await page.locator("select[name=action] option").all_inner_texts()
        assert "核验材料" in options and not [o for o in options if o.startswith("audit.")]
        # The whole table fits a 1366 px screen: nothing to scroll sideways, also with the
        # longest action and a case's item as the subject on one page (a README walk found
        # 本行哈希 cut off: both cells kept on one line).
        other = "210211-20261204-0099"  # (not the case whose rows are counted below)
        async with server.state.db.write() as s:
            await audit.append(s, enrolled_by, "case.looked_up", subject_kind="case",
                               subject=other, case_number=other)  # fmt: skip
            await audit.append(s, enrolled_by, "logistics.item", subject_kind="item",
                               subject="113002165240", case_number=other,
                               **{"from": "received", "to": "in_transit"})  # fmt: skip
        await page.goto("/audit")
        await page.set_viewport_size({"width": 1366, "height": 768})
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1366, width
        hashes = page.locator("table.audit td code")
        assert len(await hashes.first.inner_text()) < 64
        assert len(await hashes.first.get_attribute("title") or "") == 64

        await page.get_by_role("textbox", name="办件编号", exact=True).fill(number)
        await page.get_by_role("button").filter(has_text="搜索").click()
        await expect(rows).to_have_count(6)  # with the originals sent back
        await expect(page.locator("table.audit .tag")).to_have_count(0)  # written over HTTP
        await expect(rows.nth(0)).to_contain_text("办件状态变更")
        await expect(rows.nth(0)).to_contain_text("不予受理")
        await expect(rows.nth(1)).to_contain_text("核验材料")
        # The material by name, the mark with its reason, and the mark it replaced (and whose).
        await expect(rows.nth(1).locator("td.detail")).to_have_text(
            f"材料：{first['name']} · 核验结果：需补正（照片不清晰）"
            " · 原结果：合格（zhaogang） · 轮次：1"
        )
        await expect(rows.nth(2).locator("td.detail")).to_have_text(
            f"材料：{first['name']} · 核验结果：合格 · 轮次：1"
        )
        await expect(rows.nth(3)).to_contain_text("查看完整证件号和手机号")
        await expect(rows.nth(3)).to_contain_text("核对申请人身份")
        await expect(rows.nth(4)).to_contain_text("物品流转")  # the originals sent back
        await expect(rows.nth(5)).to_contain_text("新建办件")
        await expect(rows.nth(5).locator("td").nth(2)).to_have_text("zhaogang 工作人员")
        # The item by its name, not its code.
        await expect(rows.nth(5).locator("td.detail")).to_have_text(
            "事项：渔业捕捞许可证换发（延续）"
        )
        assert await english_sentences(page) == []
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1366, width
        await snap(page, "audit-2-one-case")
        await page.set_viewport_size({"width": 1440, "height": 900})

        await page.goto(f"/audit?case={number}&lang=en")
        await expect(rows.nth(0)).to_contain_text("Case state changed")
        await expect(rows.nth(0)).to_contain_text("to: Not accepted")
        assert await axe_violations(page, "audit-en") == []
        await snap(page, "audit-3-english")

        # What `cloudhelp demo` writes (inside audit.demo_load) is audited at the moment it is
        # loaded, not when its history has it happen: such rows say 演示数据, and why.
        async with server.state.db.write() as s:
            with audit.demo_load():
                await demo.seed_cases(s, "210211")
        await page.goto("/audit?action=case.transition&lang=zh-CN")
        tag = rows.first.locator("td.detail .tag")
        await expect(tag).to_have_text("演示数据")
        assert "载入的时刻" in (await tag.get_attribute("title") or "")
        await snap(page, "audit-4-demo-rows")


async def test_the_demo_leaves_a_trail_that_holds(tmp_path: Path) -> None:
    """`cloudhelp demo` issues kiosk codes and moves sample cases: recorded, and verifiable."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {"CLOUDHELP_DATA_DIR": str(tmp_path)}
    done = run_cli("demo", "--db", url, env=env)
    assert done.returncode == 0, done.stderr
    code, body = _cli_verify(url)
    assert code == 0 and body["rows"] > 0, body
    engine = db.create_engine(url)
    try:
        async with db.Database(engine).read() as session:
            issued = await audit.search(session, action="kiosk.enrol_code_issued")
            moved = await audit.search(session, action="case.transition")
    finally:
        await engine.dispose()
    assert issued and all(json.loads(e.detail)["demo"] for e in issued)
    assert moved and all(e.case_number for e in moved)


async def test_a_failed_sign_in_is_recorded_with_a_short_reason(sqlite_demo_url: str) -> None:
    """The trail says why a sign-in failed in a few words (用户名或密码错误, 账号已停用), not
    the help the sign-in page shows; a disabled account is told apart there, never on screen."""
    from cloudhelp.store.models import Staff

    async with running_server(sqlite_demo_url) as server:
        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}
        await server.set_demo_password("wangli")
        async with server.http.post(
            "/api/v1/auth/login", json={"username": "wangli", "password": "wrong-password"}
        ) as r:
            assert r.status == 401
        async with server.state.db.write() as session:
            wangli = await session.scalar(select(Staff).where(Staff.username == "wangli"))
            wangli.active = False
        async with server.http.post(
            "/api/v1/auth/login", json={"username": "wangli", "password": DEMO_PASSWORD}
        ) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "bad_credentials"  # the same on screen
        query = "/api/v1/audit?person=wangli&action=auth.sign_in_failed"
        async with server.http.get(query, cookies=supervisor) as r:
            events = (await r.json())["events"]
        assert [e["detail"]["code"] for e in events] == ["account_disabled", "bad_credentials"]
        async with server.http.get("/audit?person=wangli", cookies=supervisor) as r:
            page = await r.text()
        assert "原因：账号已停用" in page and "原因：用户名或密码错误" in page
        assert "大写锁定" not in page


async def test_a_mark_sent_again_unchanged_writes_no_second_row(sqlite_demo_url: str) -> None:
    """预审通过 pressed with materials unmarked sends the marks made so far; pressed again once
    all are marked, it sends the whole checklist. The marks already made, unchanged, are not
    written twice (the trail had each of them again, 原结果 the same mark by the same person);
    a changed mark, or the same mark by another reviewer, is."""
    async with running_server(sqlite_demo_url) as server:
        staff = {"cloudhelp_session": await server.staff_token("zhaogang")}
        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}
        body = {"item": "NYNC-002", "applicant": {"name": "刘海生", "phone": "13812345678",
                                                  "id_number": ID_NUMBER}}  # fmt: skip
        async with server.http.post("/api/v1/cases", json=body, cookies=staff) as r:
            number = (await r.json())["case"]["number"]
        base = f"/api/v1/cases/{number}"
        async with server.http.get(f"{base}/checklist", cookies=staff) as r:
            materials = (await r.json())["materials"]
        assert len(materials) >= 3
        marks = [{"position": m["position"], "status": "ok"} for m in materials]

        async def put(sent: list[dict[str, Any]], cookies: dict[str, str]) -> None:
            async with server.http.put(
                f"{base}/checklist", json={"materials": sent}, cookies=cookies
            ) as r:
                assert r.status == 200, await r.text()

        async def rows() -> list[dict[str, Any]]:
            query = f"/api/v1/audit?case={number}&action=case.material_marked"
            async with server.http.get(query, cookies=supervisor) as r:
                return (await r.json())["events"]

        await put(marks[:2], staff)
        async with server.http.post(
            f"{base}/verdict", json={"verdict": "passed"}, cookies=staff
        ) as r:
            assert (await r.json())["error"]["code"] == "checklist_incomplete"
        await put(marks, staff)
        written = await rows()
        assert len(written) == len(materials), [e["detail"]["position"] for e in written]
        assert all(e["detail"]["replaced"] is None for e in written)
        # A changed mark is written, with the one it replaced.
        changed = {**marks[0], "status": "needs_correction", "reason": "照片不清晰"}
        await put([changed, *marks[1:]], staff)
        written = await rows()
        assert len(written) == len(materials) + 1
        assert written[0]["detail"]["replaced"]["status"] == "ok"


def test_a_campaign_change_is_described_step_by_step() -> None:
    """The audit page's line for a campaign's one-click rebook names the step, the booking and
    its new time (it read "集中办理 1 · —")."""
    event = {"action": "campaign.changed", "case": None,
             "detail": {"step": "entry_rebooked", "appointment": "15669142",
                        "starts": "2026-06-12 09:20"}}  # fmt: skip
    # The code as the slip prints it (it read 15669142, a walk found).
    assert audit_routes._describe("zh-CN", event, {}) == (
        "操作：一键改约 · 预约码：1566-9142 · 新时间：2026-06-12 09:20"
    )
    scheduled = {"action": "campaign.changed", "case": None,
                 "detail": {"step": "scheduled", "booked": 69, "unplaced": 0}}  # fmt: skip
    assert audit_routes._describe("en", scheduled, {}) == "step: scheduled · booked: 69"
