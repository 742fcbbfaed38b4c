"""Kiosk case lookup, correction-session grants and expiring notice links (issue 11 row 4), over
a real server: a case is found only by its number with the last four digits of the applicant's
phone or ID number; failed lookups are throttled per case and per kiosk; ``ticket.take {case}``
needs the grant of this kiosk's lookup; notice links stop working after ``notice_link_days``."""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as clock_time
from typing import Any

import pytest
from sqlalchemy import select

from cloudhelp.core.throttle import FailureThrottle
from cloudhelp.domain import cases
from cloudhelp.http.kiosk_routes import LOOKUP_THROTTLE_KEY, case_grant
from cloudhelp.http.review_routes import notice_url
from cloudhelp.store.models import AuditEvent, Kiosk
from tests.callkit import CallServer, running_server
from tests.test_cases import ID_NUMBER
from tests.test_correction_session import PHONE, case_needing_correction

pytestmark = pytest.mark.usefixtures("loopback_ice")

LOOKUP = "/api/v1/kiosk/cases/lookup"
UNKNOWN = "210211-20000101-0009"
# A valid ID number whose check character is X (typed in lower case at the kiosk below).
FIRST17_X = next(
    first17
    for n in range(1000)
    if cases.id_check_character(first17 := f"21021119850101{n:03d}") == "X"
)


async def _lookup(
    server: CallServer, credential: str | None, body: dict[str, Any]
) -> tuple[int, dict[str, Any], str | None]:
    headers = {"Authorization": f"Kiosk {credential}"} if credential else {}
    async with server.http.post(LOOKUP, json=body, headers=headers) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


async def _audit(server: CallServer, action: str) -> list[AuditEvent]:
    async with server.state.db.read() as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return list(rows.all())


async def _kiosk_id(server: CallServer, code: str) -> int:
    async with server.state.db.read() as session:
        kiosk_id = await session.scalar(select(Kiosk.id).where(Kiosk.code == code))
    assert kiosk_id is not None
    return kiosk_id


async def test_lookup_needs_the_number_and_last_four_of_phone_or_id(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, _ = await case_needing_correction(server, cookies)
        id_x = FIRST17_X + "X"
        number_x, _ = await case_needing_correction(server, cookies, "13900001111", id_x)
        credential = await server.kiosk_credential("QG-02")

        status, _, _ = await _lookup(server, None, {"number": number, "last4": PHONE[-4:]})
        assert status == 401
        # The number alone, the phone alone, the old phone + ID digits: refused, saying what
        # to give.
        for body in (
            {"number": number},
            {"phone": PHONE},
            {"phone": PHONE, "id_last4": ID_NUMBER[-4:]},
            {"last4": PHONE[-4:]},
            {"number": number, "last4": "56"},
            {"number": number, "last4": "56789"},
            {"number": number, "last4": "abcd"},
            {"number": number, "last4": "٥٦٧٨"},  # Arabic-Indic digits
            {"number": "㍱" * 32, "last4": "5678"},  # longer than a number once normalised
        ):
            status, answer, _ = await _lookup(server, credential, body)
            assert status == 400, body
            assert answer["error"]["code"] == "lookup_incomplete", body

        # A wrong pair and an unknown number get the same answer: nothing says which was wrong.
        status, wrong, _ = await _lookup(server, credential, {"number": number, "last4": "0000"})
        assert status == 404
        status, unknown, _ = await _lookup(server, credential, {"number": UNKNOWN, "last4": "5678"})
        assert status == 404 and unknown == wrong
        assert wrong["error"]["code"] == "not_found"
        # Full-width digits (an input method's) are the digits they look like.
        status, _, _ = await _lookup(server, credential, {"number": number, "last4": "５６７８"})
        assert status == 200

        # The phone's last four, the ID number's last four (an X in either case) all find it.
        for case_number, last4 in (
            (number, PHONE[-4:]),
            (number, ID_NUMBER[-4:]),
            (number_x, id_x[-4:].lower()),
            (number_x, id_x[-4:]),
            (number_x, "1111"),
        ):
            status, answer, _ = await _lookup(
                server, credential, {"number": case_number, "last4": last4}
            )
            assert status == 200, (case_number, last4, answer)
            found = answer["case"]
            assert found["number"] == case_number and found["status"]["code"] == "correction_needed"
            assert found["notice_url"].startswith(f"/notices/{case_number}/1?t=")
            assert found["grant"]
            # Only what the resident needs: no name, phone or ID number.
            text = str(answer)
            assert PHONE not in text and ID_NUMBER not in text and "刘海生" not in text
        # The number typed without its hyphens, with spaces instead, or with full-width or
        # long dashes is the same number.
        district, day, serial = number.split("-")
        for typed in (
            district + day + serial,
            f" {district} {day} {serial} ",
            f"{district} - {day} - {serial}",
            f"{district}－{day}－{serial}",
            f"{district}—{day}—{serial}",
        ):
            status, answer, _ = await _lookup(
                server, credential, {"number": typed, "last4": PHONE[-4:]}
            )
            assert status == 200, (typed, answer)
            assert answer["case"]["number"] == number
        looked_up = await _audit(server, "case.looked_up")
        assert [row.case_number for row in looked_up] == [number] * 3 + [number_x] * 3 + [
            number
        ] * 5
        assert {row.actor_name for row in looked_up} == {"QG-02"}

        # A case that does not wait for corrections is not found either.
        marks = [{"position": n, "status": "ok"} for n in range(1, 8)]
        async with server.http.post(
            "/api/v1/cases",
            json={
                "item": "NYNC-002",
                "applicant": {"name": "王五", "phone": "13700000000", "id_number": ID_NUMBER},
            },
            cookies=cookies,
        ) as r:
            passed = (await r.json())["case"]["number"]  # fmt: skip
        base = f"/api/v1/cases/{passed}"
        async with server.http.put(f"{base}/checklist", json={"materials": marks}, cookies=cookies):
            pass
        async with server.http.post(f"{base}/verdict", json={"verdict": "passed"}, cookies=cookies):
            pass
        status, answer, _ = await _lookup(server, credential, {"number": passed, "last4": "0000"})
        assert status == 404 and answer == wrong


async def test_failed_lookups_are_throttled_per_case_and_per_kiosk(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        clock = [5000.0]
        failures = server.server.app[LOOKUP_THROTTLE_KEY].failures
        assert isinstance(failures, FailureThrottle)  # one process: in its memory
        failures.clock = lambda: clock[0]
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, _ = await case_needing_correction(server, cookies)
        other, _ = await case_needing_correction(server, cookies, "13900002222")
        a, b, c, d, e = [await server.kiosk_credential(f"QG-0{n}") for n in range(1, 6)]

        # Five wrong guesses at one case from kiosk A …
        for guess in ("0001", "0002", "0003", "0004", "0005"):
            status, _, _ = await _lookup(server, a, {"number": number, "last4": guess})
            assert status == 404
        # … and the case is closed to every kiosk, even for the right digits, however its
        # number is typed (one case, one count).
        status, answer, retry = await _lookup(server, b, {"number": number, "last4": PHONE[-4:]})
        assert status == 429, answer
        bare = {"number": number.replace("-", ""), "last4": PHONE[-4:]}
        status, answer, retry = await _lookup(server, b, bare)
        assert status == 429, answer
        assert answer["error"]["code"] == "lookup_throttled"
        assert answer["error"]["minutes"] == 15 and retry == "900"
        assert "station" in answer["error"]["message"]
        # Other cases are still found from both kiosks.
        assert (await _lookup(server, b, {"number": other, "last4": "2222"}))[0] == 200
        assert (await _lookup(server, a, {"number": other, "last4": "2222"}))[0] == 200
        # An unknown number is throttled the same way (the limit tells nothing either).
        for _ in range(5):
            assert (await _lookup(server, c, {"number": UNKNOWN, "last4": "1234"}))[0] == 404
        status, answer, _ = await _lookup(server, c, {"number": UNKNOWN, "last4": "1234"})
        assert status == 429 and answer["error"]["code"] == "lookup_throttled"
        throttled = await _audit(server, "case.lookup_throttled")
        assert [(row.subject_kind, row.subject, row.actor_name) for row in throttled] == [
            ("case", number, "QG-01"), ("case", UNKNOWN, "QG-03"),
        ]  # fmt: skip
        assert throttled[0].detail == ('{"failures":5,"scope":"case","window_seconds":900.0}')

        # Fifteen minutes after the failures the case opens again.
        clock[0] += 901
        assert (await _lookup(server, b, {"number": number, "last4": PHONE[-4:]}))[0] == 200

        # A kiosk walking the numbers: 20 failures, then even a right lookup is refused there
        # (a found case does not reset the count), and only there.
        for n in range(20):
            body = {"number": f"210211-20000102-{n:04d}", "last4": "1234"}
            assert (await _lookup(server, d, body))[0] == 404
        status, answer, retry = await _lookup(server, d, {"number": other, "last4": "2222"})
        assert status == 429 and answer["error"]["code"] == "lookup_throttled" and retry == "900"
        assert (await _lookup(server, e, {"number": other, "last4": "2222"}))[0] == 200
        throttled = await _audit(server, "case.lookup_throttled")
        assert (throttled[-1].subject_kind, throttled[-1].subject) == ("kiosk", "QG-04")
        clock[0] += 901
        assert (await _lookup(server, d, {"number": other, "last4": "2222"}))[0] == 200


async def test_taking_a_ticket_for_a_case_needs_this_kiosks_grant(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, _ = await case_needing_correction(server, cookies)
        other, _ = await case_needing_correction(server, cookies, "13900003333")
        mine = await server.kiosk_credential("QG-01")
        theirs = await server.kiosk_credential("QG-02")
        grant = (await server.look_up_case(mine, number, PHONE[-4:]))["grant"]
        their_grant = (await server.look_up_case(theirs, number, PHONE[-4:]))["grant"]
        other_grant = (await server.look_up_case(mine, other, "3333"))["grant"]
        expires, mac = grant.split(".")
        state = server.state
        kiosk_id = await _kiosk_id(server, "QG-01")
        expired = case_grant(state, number, kiosk_id, now=time.time() - 601)
        kiosk = await server.connect({"kind": "kiosk", "credential": mine})

        refused = {
            "no grant": (None, "case_grant_invalid"),
            "junk": ("not-a-grant", "case_grant_invalid"),
            "forged signature": (f"{expires}.{'0' * 32}", "case_grant_invalid"),
            "later expiry, same signature": (f"{int(expires) + 86400}.{mac}", "case_grant_invalid"),
            "another kiosk's": (their_grant, "case_grant_invalid"),
            "another case's": (other_grant, "case_grant_invalid"),
            "expired": (expired, "case_grant_expired"),
        }
        for why, (token, code) in refused.items():
            frame = {"type": "ticket.take", "case": number}
            if token is not None:
                frame["grant"] = token
            await kiosk.send(frame)
            error = await kiosk.expect("error")
            assert error["code"] == code, why
        assert kiosk.drain("ticket") == []

        await kiosk.send({"type": "ticket.take", "case": number, "grant": grant})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        assert ticket["case"] == {"number": number, "round": 1, "correction": True}
        # An item ticket needs no grant (the kiosk already has a ticket now).
        await kiosk.send({"type": "ticket.take", "item": "NYNC-002"})
        assert (await kiosk.expect("error"))["code"] == "ticket_open"


async def test_notice_links_expire_and_show_no_phone(sqlite_demo_url: str) -> None:
    async with running_server(sqlite_demo_url) as server:
        cookies = {"cloudhelp_session": await server.staff_token("zhaogang")}
        number, _ = await case_needing_correction(server, cookies)
        state = server.state
        day = 86400
        fresh = notice_url(state, number, 1)
        nearly = notice_url(state, number, 1, now=time.time() - 29 * day)
        expired = notice_url(state, number, 1, now=time.time() - 30 * day - 60)
        credential = await server.kiosk_credential("QG-02")
        looked_up = (await server.look_up_case(credential, number, PHONE[-4:]))["notice_url"]

        for url in (fresh, nearly, looked_up):
            async with server.http.get(url) as r:
                assert r.status == 200, url
                page = await r.text()
            assert number in page and "刘海生" in page
            assert PHONE not in page and "138****5678" not in page and ID_NUMBER not in page
            assert cases.mask_id_number(ID_NUMBER) in page
        # An expired link: a page that says to ask the hall for a new one, and JSON for the PDF.
        async with server.http.get(expired) as r:
            assert r.status == 410
            assert r.content_type == "text/html"
            page = await r.text()
        assert "链接已过期" in page and "政务服务大厅" in page and "刘海生" not in page
        async with server.http.get(expired.replace("?t=", ".pdf?t=")) as r:
            assert r.status == 410
            assert (await r.json())["error"]["code"] == "notice_link_expired"
        async with server.http.get(f"{expired}&lang=en") as r:
            assert r.status == 410 and "expired" in await r.text()
        # Staff see the notice whatever the link's age.
        async with server.http.get(expired, cookies=cookies) as r:
            assert r.status == 200
        # A link whose expiry was pushed forward by hand no longer checks.
        token = fresh.split("?t=")[1]
        until, mac = token.split(".")
        async with server.http.get(f"/notices/{number}/1?t={int(until) + day}.{mac}") as r:
            assert r.status == 401 and "刘海生" not in await r.text()
        # The link is for this notice only.
        other_round = fresh.replace(f"/notices/{number}/1", f"/notices/{number}/2")
        async with server.http.get(other_round) as r:
            assert r.status == 401


async def test_a_history_case_is_numbered_like_a_live_one_and_found_at_the_kiosk(
    demo_engine,
) -> None:
    """The demo history's cases have the live numbers' 18 digits (not a letter the kiosk's
    lookup cannot take); a case opened later the same day follows on from them; a history case
    waiting for corrections is found by its digits typed with spaces and its phone's last four."""
    from datetime import date

    from cloudhelp.core.clock import LOCAL_TZ
    from cloudhelp.devtools import history
    from cloudhelp.domain import case_lookup
    from cloudhelp.store.db import Database
    from cloudhelp.store.models import Case

    day = date(2026, 11, 30)  # a Monday
    database = Database(demo_engine)
    until = datetime.combine(day, clock_time(16), LOCAL_TZ)
    await history.generate(database, 0, tickets_per_day=160, until=until)
    async with database.read() as s:
        numbers = list((await s.scalars(select(Case.number).order_by(Case.number))).all())
        waiting = await s.scalar(select(Case).where(Case.status == "correction_needed"))
    assert numbers and all(case_lookup.NUMBER_DIGITS.match(n.replace("-", "")) for n in numbers)
    assert numbers[-1] == f"210211-20261130-{len(numbers):04d}"
    async with database.write() as s:
        (later,) = await cases.reserve_numbers(s, "210211", day)
    assert later == f"210211-20261130-{len(numbers) + 1:04d}"
    assert waiting is not None
    typed = " ".join(waiting.number.split("-"))
    async with database.read() as s:
        found = await case_lookup.find(
            s, case_lookup.case_number(typed), waiting.applicant_phone[-4:]
        )
    assert found is not None and found.case.number == waiting.number
