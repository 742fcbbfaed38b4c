"""Ratings (好差评) after a session, and follow-ups of bad ones."""

from __future__ import annotations

import pytest

from cloudhelp.core import i18n
from cloudhelp.domain.ratings import BAD_REASONS
from cloudhelp.store.models import FollowUp, Rating
from tests.callkit import CallServer, running_server
from tests.test_call_core import answer, take_ticket
from tests.test_cases import ID_NUMBER


async def finished_session(server: CallServer, kiosk_code: str, item: str) -> tuple:
    staff = await server.staff("zhaogang")
    kiosk = await server.kiosk(kiosk_code)
    ticket = await take_ticket(kiosk, item)
    await answer(staff)
    await kiosk.expect("joined")
    await kiosk.send({"type": "call.hangup"})
    await kiosk.expect("left")
    return kiosk, staff, ticket


@pytest.mark.usefixtures("loopback_ice")
async def test_a_bad_rating_opens_a_follow_up(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        kiosk, _staff, ticket = await finished_session(server, "QG-01", "NYNC-002")
        bad = {
            "type": "rating.submit",
            "ticket": ticket["id"],
            "level": 2,
            "reasons": ["等待时间长"],
        }
        await kiosk.send(bad)
        saved = await kiosk.expect("rating.saved")
        assert saved["ticket"] == ticket["id"]
        await kiosk.send(bad)
        assert (await kiosk.expect("error"))["code"] == "already_rated"

        async with server.state.db.read() as session:
            rating = await session.get(Rating, saved["rating"])
            follow_up = (await session.execute(FollowUp.__table__.select())).one()
        assert rating is not None and rating.level == 2 and rating.reasons == ["等待时间长"]
        assert follow_up.assignee_id is not None and follow_up.closed_at is None

        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}
        staff_only = {"cloudhelp_session": await server.staff_token("wangli")}
        async with server.http.get("/api/v1/follow-ups", cookies=staff_only) as r:
            assert r.status == 403
        async with server.http.get("/api/v1/follow-ups?open=1", cookies=supervisor) as r:
            (listed,) = (await r.json())["follow_ups"]
        assert listed["level"] == {"value": 2, "label": "不满意"} and listed["overdue"] is False
        # No case was opened in this session, so no phone was recorded to call back on.
        assert listed["ticket"]["case"] is None and listed["ticket"]["phone"] is None
        close = f"/api/v1/follow-ups/{listed['id']}/close"
        async with server.http.post(
            close, json={"note": "已回访，说明排队原因"}, cookies=supervisor
        ) as r:
            assert (await r.json())["follow_up"]["closed_by"] == "sunhua"
        async with server.http.post(close, json={"note": "again"}, cookies=supervisor) as r:
            assert r.status == 409
        # Closing it is in the audit trail (once: the refused second close writes nothing),
        # and the audit page names the action, the ticket and the note.
        query = "/api/v1/audit?person=sunhua&action=follow_up.closed"
        async with server.http.get(query, cookies=supervisor) as r:
            (closed,) = (await r.json())["events"]
        assert closed["subject"] == {"kind": "follow_up", "id": str(listed["id"])}
        assert closed["detail"]["note"] == "已回访，说明排队原因"
        assert closed["detail"]["ticket_number"] == ticket["number"]
        async with server.http.get("/audit?person=sunhua", cookies=supervisor) as r:
            page = await r.text()
        assert "办结差评回访" in page and "回访与整改情况：已回访，说明排队原因" in page
        assert f"回访 {ticket['number']}" in page  # its session's number, not the row's id
        assert f"排队号：{ticket['number']}" in page
        assert '<option value="follow_up.closed"' in page
        async with server.http.get("/api/v1/follow-ups?open=1", cookies=supervisor) as r:
            assert (await r.json())["follow_ups"] == []


@pytest.mark.usefixtures("loopback_ice")
async def test_a_follow_up_gives_the_phone_of_the_sessions_case(sqlite_demo_url: str) -> None:
    """The follow-up of a session in which a case was opened gives the applicant's phone (in
    full: only supervisors list follow-ups), so the supervisor can call the resident back."""
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk("QG-01")
        ticket = await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        zhaogang = {"cloudhelp_session": await server.staff_token("zhaogang")}
        applicant = {"name": "周建国", "phone": "13912345670", "id_number": ID_NUMBER}
        body = {"ticket": ticket["id"], "applicant": applicant}
        async with server.http.post("/api/v1/cases", json=body, cookies=zhaogang) as r:
            assert r.status == 201, await r.text()
            case_number = (await r.json())["case"]["number"]
        await kiosk.send({"type": "call.hangup"})
        await kiosk.expect("left")
        await kiosk.send({"type": "rating.submit", "ticket": ticket["id"], "level": 1,
                          "reasons": ["等待时间长"]})  # fmt: skip
        await kiosk.expect("rating.saved")

        supervisor = {"cloudhelp_session": await server.staff_token("sunhua")}
        async with server.http.get("/api/v1/follow-ups?open=1", cookies=supervisor) as r:
            (listed,) = (await r.json())["follow_ups"]
        assert listed["ticket"]["case"] == case_number
        assert listed["ticket"]["phone"] == "13912345670"
        # Closing it answers the follow-up as the list has it, the phone included.
        close = f"/api/v1/follow-ups/{listed['id']}/close"
        async with server.http.post(close, json={"note": "已电话回访"}, cookies=supervisor) as r:
            assert (await r.json())["follow_up"]["ticket"]["phone"] == "13912345670"
        # Who may not list follow-ups does not get the phone either.
        async with server.http.get("/api/v1/follow-ups", cookies=zhaogang) as r:
            assert r.status == 403


@pytest.mark.usefixtures("loopback_ice")
async def test_good_ratings_skips_and_refusals(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        kiosk, _staff, ticket = await finished_session(server, "QG-01", "NYNC-001")
        wrong = {"type": "rating.submit", "ticket": ticket["id"], "level": 5, "reasons": ["其他"]}
        await kiosk.send(wrong)
        assert (await kiosk.expect("error"))["code"] == "bad_reasons"
        await kiosk.send({"type": "rating.submit", "ticket": ticket["id"], "level": 9})
        assert (await kiosk.expect("error"))["code"] == "bad_message"
        level_unanswered = {"type": "rating.submit", "ticket": ticket["id"], "level": 4}
        await kiosk.send({**level_unanswered, "outcome": "no_answer"})
        assert (await kiosk.expect("error"))["code"] == "bad_outcome"
        await kiosk.send({**level_unanswered, "level": None, "outcome": "rated"})
        assert (await kiosk.expect("error"))["code"] == "bad_outcome"
        await kiosk.send({"type": "rating.submit", "ticket": ticket["id"], "level": None})
        await kiosk.expect("rating.saved")  # a skip is recorded, as declined
        other = await server.kiosk("TL-01", "DLW-TL")
        await other.send({"type": "rating.submit", "ticket": ticket["id"], "level": 5})
        assert (await other.expect("error"))["code"] == "no_such_ticket"
        async with server.state.db.read() as session:
            rows = (await session.execute(Rating.__table__.select())).all()
            follow_ups = (await session.execute(FollowUp.__table__.select())).all()
        assert [(row.level, row.outcome) for row in rows] == [(None, "declined")]
        assert follow_ups == []
        async with server.http.get("/api/v1/ratings/options") as r:
            options = await r.json()
        assert options["levels"][0] == {"value": 5, "label": "非常满意"}


def test_every_bad_rating_reason_has_words_in_both_catalogs() -> None:
    """The pages show a stored reason (Chinese, the list's own words) through the catalogs'
    ``rating.reason.<reason>`` (web/static/js/i18n.js storedText)."""
    for name in ("zh-CN", "en"):
        missing = [r for r in BAD_REASONS if f"rating.reason.{r}" not in i18n.catalog(name)]
        assert missing == [], (name, missing)
    zh = i18n.catalog("zh-CN")
    assert [zh[f"rating.reason.{r}"] for r in BAD_REASONS] == list(BAD_REASONS)
