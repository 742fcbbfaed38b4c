"""Document logistics over the real HTTP API, on SQLite and PostgreSQL: a certificate from the
hall to the resident's hand, originals there and back, a run with a missing and an extra item,
an item not collected in time, refusals that change nothing, and stations kept apart."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import openpyxl
import segno
from aiohttp import ClientSession, CookieJar
from sqlalchemy import func, select

from cloudhelp.domain import cases, timeouts
from cloudhelp.domain.logistics import codes, exceptions, items
from cloudhelp.store.models import (
    AuditEvent,
    AuditHead,
    Case,
    ServiceItem,
    Staff,
    Station,
    TimeoutWarning,
    TrackedItem,
    TrackedItemEvent,
    utcnow,
)
from cloudhelp.views import board
from tests.callkit import DEMO_PASSWORD, CallServer, running_server

ID17 = "21021119800101123"
ID_NUMBER = ID17 + cases.id_check_character(ID17)
PHONE = "13900001234"


async def open_case(server: CallServer, steps: list[str], station: str = "DLW-QG") -> str:
    """A case opened at ``station`` for the fishing licence, moved through ``steps``."""
    async with server.state.db.write() as session:
        item = await session.scalar(select(ServiceItem).where(ServiceItem.code == "NYNC-002"))
        where = await session.scalar(select(Station).where(Station.code == station))
        assert item is not None and where is not None
        case = await cases.open_case(
            session, district="210211", item=item, station_id=where.id, staff_id=None,
            name="王德海", phone=PHONE, id_number=ID_NUMBER, actor="zhaogang",
        )  # fmt: skip
        for step in steps:
            await cases.transition(session, case, step, "zhaogang")
        return case.number


async def concluded_case(server: CallServer) -> str:
    return await open_case(server, ["awaiting_acceptance", "accepted", "concluded"])


@asynccontextmanager
async def signed_in(server: CallServer, username: str) -> AsyncIterator[ClientSession]:
    """A browser-like client signed in as ``username``."""
    await server.set_demo_password(username)
    async with ClientSession(base_url=server.base_url, cookie_jar=CookieJar(unsafe=True)) as c:
        body = {"username": username, "password": DEMO_PASSWORD}
        async with c.post("/api/v1/auth/login", json=body) as response:
            assert response.status == 200, await response.text()
        yield c


async def call(
    client: ClientSession, method: str, path: str, status: int = 200, **kwargs: Any
) -> Any:
    async with client.request(method, f"/api/v1/logistics{path}", **kwargs) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def register(
    client: ClientSession, number: str, kind: str = "certificate", **extra: Any
) -> dict[str, Any]:
    body = {"case": number, "kind": kind, "description": "渔业捕捞许可证（正本）", **extra}
    return await call(client, "POST", "/items", 201, json=body)


async def run_with(client: ClientSession, to: str, *item_codes: str, dispatch: bool = True) -> str:
    """A run from the client's station to ``to`` holding the items, dispatched."""
    run = (await call(client, "POST", "/runs", 201, json={"to": to}))["run"]["code"]
    for code in item_codes:
        await call(client, "POST", f"/runs/{run}/items", json={"code": code})
    if dispatch:
        await call(client, "POST", f"/runs/{run}/dispatch")
    return run


async def status_of(client: ClientSession, code: str) -> str:
    return (await call(client, "GET", f"/items/{code}"))["item"]["status"]["code"]


def signature_png() -> str:
    """A PNG the size of a signature drawn on a canvas, as the page sends it."""
    out = io.BytesIO()
    segno.make("王德海 签名", error="h").save(out, kind="png", scale=6)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def changes(server: CallServer) -> tuple[int, int]:
    """How many item events and audit rows there are (a refusal adds neither)."""
    async with server.state.db.read() as session:
        events = await session.scalar(select(func.count()).select_from(TrackedItemEvent))
        head = await session.get(AuditHead, 1)
        return int(events or 0), head.seq if head else 0


async def test_a_certificate_from_the_hall_to_the_residents_hand(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await concluded_case(server)
        async with (
            signed_in(server, "zhaogang") as desk,
            signed_in(server, "wujun") as street,
            signed_in(server, "zhouyan") as station,
            signed_in(server, "sunhua") as supervisor,
        ):
            created = await register(desk, number)
            item, pickup_code = created["item"], created["pickup_code"]
            code = item["code"]
            assert codes.valid(code) and re.fullmatch(r"\d{6}", pickup_code)
            assert (
                item["destination"]["code"] == "DLW-QG" and item["status"]["code"] == "registered"
            )

            async with desk.get(f"/api/v1/logistics/items/{code}/label.pdf") as response:
                assert response.status == 200 and response.content_type == "application/pdf"
                pdf = await response.read()
            # 100 × 60 mm in points, landscape.
            assert pdf.startswith(b"%PDF") and b"/MediaBox [0 0 283.46 170.08]" in pdf

            first = await run_with(desk, "DLW", code)
            async with desk.get(f"/api/v1/logistics/runs/{first}/manifest.pdf") as response:
                assert response.status == 200 and (await response.read()).startswith(b"%PDF")
            assert await status_of(desk, code) == "in_transit"
            receipt = await call(street, "POST", f"/runs/{first}/receive", json={"codes": [code]})
            assert (receipt["received"], receipt["missing"], receipt["extra"]) == ([code], [], [])
            second = await run_with(street, "DLW-QG", codes.grouped(code))  # typed with spaces
            await call(station, "POST", f"/runs/{second}/receive", json={"codes": [code]})
            await call(station, "POST", f"/items/{code}/ready")

            # The resident at the kiosk: where it is, where to collect it, the pickup code.
            credential = await server.kiosk_credential("QG-01")
            lookup = {"number": number, "last4": PHONE[-4:]}
            headers = {"Authorization": f"Kiosk {credential}"}
            async with server.http.post(
                "/api/v1/kiosk/items/lookup", json=lookup, headers=headers
            ) as response:
                assert response.status == 200, await response.text()
                seen = (await response.json())["case"]
            assert seen["items"][0]["status"]["label"] == "待取件"
            assert seen["items"][0]["collect_at"]["name"] == "前关社区驿站"
            assert seen["items"][0]["pickup_code"] == pickup_code
            # Audited as what it is (it was recorded as a correction session's lookup).
            async with server.state.db.read() as s:
                looked = (
                    await s.scalars(select(AuditEvent.action).where(AuditEvent.subject == number))
                ).all()
            assert "case.items_looked_up" in looked and "case.looked_up" not in looked
            wrong = {"number": number, "last4": "0000"}
            async with server.http.post(
                "/api/v1/kiosk/items/lookup", json=wrong, headers=headers
            ) as response:
                assert response.status == 404

            trips_before = (await call(supervisor, "GET", "/figures"))["trips_saved"]
            # The attendant checks identity and takes the signature.
            before = await changes(server)
            bad = {"pickup_code": pickup_code, "id_last4": "0000", "signature": signature_png()}
            refusal = await call(station, "POST", f"/items/{code}/pickup", 403, json=bad)
            assert refusal["error"]["code"] == "pickup_refused"
            assert await status_of(station, code) == "ready"
            assert (await changes(server))[0] == before[0]  # no item event for a refusal
            good = {"pickup_code": pickup_code, "id_last4": ID_NUMBER[-4:],
                    "signature": signature_png(), "collected_by": "王德海"}  # fmt: skip
            done = (await call(station, "POST", f"/items/{code}/pickup", json=good))["item"]
            assert done["status"]["code"] == "picked_up" and done["signed"]
            async with station.get(f"/api/v1/logistics/items/{code}/signature.png") as response:
                assert response.status == 200 and (await response.read()).startswith(b"\x89PNG")
            kinds = [e["kind"] for e in done["events"]]
            assert kinds == ["registered", "dispatched", "received", "handed_on", "received",
                             "ready", "picked_up"]  # fmt: skip

            async with desk.get(f"/api/v1/cases/{number}") as response:
                assert (await response.json())["case"]["status"]["label"] == "已送达"
            figures = await call(supervisor, "GET", "/figures")
            assert figures["trips_saved"] == trips_before + 1
            assert figures["issue_to_pickup_hours_median"] is not None
            snapshot = await board.snapshot(server.state.db, utcnow())
            assert snapshot["logistics"]["trips_saved"] == trips_before + 1
            # The reports count it too, with CSV and the workbook like every other table.
            async with supervisor.get("/api/v1/reports?table=logistics&format=csv") as response:
                assert response.status == 200
                rows = list(csv.reader(io.StringIO((await response.text()).lstrip("\ufeff"))))
            assert rows[0][:2] == ["站点", "驿站取件（免跑取证）"]
            assert ["前关社区驿站", "1"] == rows[1][:2]
            async with supervisor.get("/api/v1/reports?format=xlsx") as response:
                book = openpyxl.load_workbook(io.BytesIO(await response.read()))
            assert book["材料证照流转"]["A2"].value == "前关社区驿站"

        # Every event is in the audit trail, under the item's code, in the same order.
        async with server.state.db.read() as session:
            audited = (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.subject == code, AuditEvent.action.like("logistics.%"))
                    .order_by(AuditEvent.seq)
                )
            ).all()
        events = [json.loads(a.detail)["event"] for a in audited if a.action == "logistics.item"]
        assert events == kinds
        assert {a.action for a in audited} == {
            "logistics.item",
            "logistics.bundled",
            "logistics.pickup_refused",
        }


async def test_originals_collected_at_a_station_and_returned(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await open_case(server, ["awaiting_acceptance", "accepted"])
        async with (
            signed_in(server, "zhaogang") as desk,
            signed_in(server, "wujun") as street,
            signed_in(server, "zhouyan") as station,
        ):
            # The hall cannot register originals collected elsewhere; the station can.
            refused = await call(
                desk, "POST", "/items", 409, json={"case": number, "kind": "originals_in"}
            )
            assert refused["error"]["code"] == "wrong_tier"
            originals = (await register(station, number, "originals_in"))["item"]["code"]
            up = await run_with(station, "DLW", originals)
            await call(street, "POST", f"/runs/{up}/receive", json={"codes": [originals]})
            hall_run = await run_with(street, "GJZ-HALL", originals)
            await call(desk, "POST", f"/runs/{hall_run}/receive", json={"codes": [originals]})
            assert await status_of(desk, originals) == "at_hall"

            created = await register(desk, number, "originals_back", description="身份证原件")
            back, pickup_code = created["item"]["code"], created["pickup_code"]
            down = await run_with(desk, "DLW", back)
            await call(street, "POST", f"/runs/{down}/receive", json={"codes": [back]})
            last = await run_with(street, "DLW-QG", back)
            await call(station, "POST", f"/runs/{last}/receive", json={"codes": [back]})
            await call(station, "POST", f"/items/{back}/ready")
            body = {
                "pickup_code": pickup_code,
                "id_last4": ID_NUMBER[-4:],
                "signature": signature_png(),
            }
            await call(station, "POST", f"/items/{back}/pickup", json=body)
            assert await status_of(station, back) == "picked_up"
            # Originals back do not deliver the case: it is still being handled.
            async with desk.get(f"/api/v1/cases/{number}") as response:
                assert (await response.json())["case"]["status"]["code"] == "accepted"


async def test_a_run_received_with_one_item_missing_and_one_extra(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await concluded_case(server)
        async with signed_in(server, "zhaogang") as desk, signed_in(server, "wujun") as street:
            a, b, c = [(await register(desk, number))["item"]["code"] for _ in range(3)]
            run = await run_with(desk, "DLW", a, b)
            other = await run_with(desk, "DLW", c)
            manifest = (await call(desk, "GET", f"/runs/{run}"))["run"]["items"]
            assert [i["code"] for i in manifest] == [a, b]
            receipt = await call(street, "POST", f"/runs/{run}/receive", json={"codes": [a, c]})
            assert receipt["received"] == [a]
            assert receipt["missing"] == [b]
            assert receipt["extra"] == [c]
            assert receipt["run"]["missing"] == [b] and receipt["run"]["extra"] == [c]
            assert await status_of(street, a) == "received"
            assert await status_of(desk, b) == "in_transit"  # still on the road: looked for
            assert await status_of(desk, c) == "in_transit"  # its own run is still coming
            again = await call(street, "POST", f"/runs/{run}/receive", 409, json={"codes": [b]})
            assert again["error"]["code"] == "run_received"
            # The missing one is reported lost, with a reason and the person responsible.
            lost = {"kind": "lost", "reason": "交接时未见此件", "responsible": "wujun"}
            item = (await call(street, "POST", f"/items/{b}/exception", json=lost))["item"]
            assert item["status"]["code"] == "lost" and item["exception"]["responsible"] == "wujun"
            late = await call(street, "POST", f"/runs/{other}/receive", json={"codes": [c]})
            assert late["received"] == [c]


async def test_an_item_not_collected_in_time_goes_back_to_the_hall(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await concluded_case(server)
        async with (
            signed_in(server, "zhaogang") as desk,
            signed_in(server, "wujun") as street,
            signed_in(server, "zhouyan") as station,
        ):
            code = (await register(desk, number))["item"]["code"]
            await call(
                street,
                "POST",
                f"/runs/{await run_with(desk, 'DLW', code)}/receive",
                json={"codes": [code]},
            )
            await call(
                station,
                "POST",
                f"/runs/{await run_with(street, 'DLW-QG', code)}/receive",
                json={"codes": [code]},
            )
            await call(station, "POST", f"/items/{code}/ready")
            early = {"kind": "not_collected", "reason": "逾期未取", "responsible": "zhouyan"}
            refused = await call(station, "POST", f"/items/{code}/exception", 409, json=early)
            assert refused["error"]["code"] == "not_overdue"

            # Fifteen days on (the clock injected): the warning is raised, the item goes back.
            later = utcnow() + timedelta(days=15)
            async with server.state.db.write() as session:
                await timeouts.evaluate(session, later)
                raised = (await session.scalars(select(TimeoutWarning).where(
                    TimeoutWarning.kind == "pickup_overdue"))).all()  # fmt: skip
                assert [w.detail["code"] for w in raised] == [code]
                attendant = await session.scalar(select(Staff).where(Staff.username == "zhouyan"))
                item = await items.by_code(session, code)
                assert attendant is not None
                await exceptions.report(session, attendant, item, "not_collected",
                                        reason="15 天未取", responsible="zhouyan", now=later,
                                        pickup_days=14)  # fmt: skip
                await timeouts.evaluate(session, later)
                assert item.status == "to_return"
            async with server.state.db.read() as session:
                open_kinds = {w.kind for w in await timeouts.active(session)}
            assert "pickup_overdue" not in open_kinds and "logistics_exception" not in open_kinds
            back = await run_with(station, "DLW", code)
            await call(street, "POST", f"/runs/{back}/receive", json={"codes": [code]})
            up = await run_with(street, "GJZ-HALL", code)
            await call(desk, "POST", f"/runs/{up}/receive", json={"codes": [code]})
            body = (await call(desk, "GET", f"/items/{code}"))["item"]
            assert body["status"]["code"] == "returned"
            assert body["exception"]["code"] == "not_collected"
            kinds = [e["kind"] for e in body["events"]]
            assert kinds[-5:] == ["exception", "dispatched", "received", "handed_on", "returned"]

        # An exception left open past its days warns, naming the person responsible.
        async with server.state.db.write() as session:
            row = await session.scalar(select(TrackedItem).where(TrackedItem.code == code))
            assert row is not None and row.finished_at is not None
            changes_ = await timeouts.evaluate(session, later + timedelta(days=5))
            assert not [w for w in changes_.raised if w.kind == "logistics_exception"]


async def test_unknown_codes_and_wrong_stations_change_nothing(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await concluded_case(server)
        async with signed_in(server, "zhaogang") as desk, signed_in(server, "zhouyan") as station:
            code = (await register(desk, number))["item"]["code"]
            run = (await call(desk, "POST", "/runs", 201, json={"to": "DLW"}))["run"]["code"]
            before = await changes(server)
            typo = code[:-1] + str((int(code[-1]) + 1) % 10)
            bad = await call(desk, "POST", f"/runs/{run}/items", 400, json={"code": typo})
            assert bad["error"]["code"] == "bad_code"
            unknown_body = "1" + "0" * 10
            unknown = unknown_body + codes.luhn_digit(unknown_body)
            missing = await call(desk, "POST", f"/runs/{run}/items", 404, json={"code": unknown})
            assert (
                missing["error"]["code"] == "unknown_code"
                and unknown in missing["error"]["message"]
            )
            assert (await call(station, "POST", f"/items/{unknown}/ready", 404))["error"][
                "code"
            ] == "unknown_code"
            # At the wrong station: the item lies at the hall, not at the community station.
            wrong = await call(station, "POST", f"/items/{code}/ready", 403)
            assert wrong["error"]["code"] == "not_at_your_station"
            # A run the desk did not open to that station; a run to a station two hops away.
            far = await call(desk, "POST", "/runs", 400, json={"to": "DLW-QG"})
            assert far["error"]["code"] == "not_adjacent"
            empty = await call(desk, "POST", f"/runs/{run}/dispatch", 409)
            assert empty["error"]["code"] == "run_empty"
            assert await changes(server) == (before[0], before[1])
            assert await status_of(desk, code) == "registered"
            # Packed, then lost before the run leaves: it drops off the manifest at dispatch.
            other = (await register(desk, number))["item"]["code"]
            for packed in (code, other):
                await call(desk, "POST", f"/runs/{run}/items", json={"code": packed})
            lost = {"kind": "lost", "reason": "装车前找不到", "responsible": "zhaogang"}
            await call(desk, "POST", f"/items/{other}/exception", json=lost)
            left = (await call(desk, "POST", f"/runs/{run}/dispatch"))["run"]
            assert [i["code"] for i in left["items"]] == [code]
            assert await status_of(desk, other) == "lost"


async def test_an_attendant_cannot_act_on_another_stations_items(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await concluded_case(server)
        async with (
            signed_in(server, "zhaogang") as desk,
            signed_in(server, "wujun") as street,
            signed_in(server, "zhouyan") as station,
            signed_in(server, "hetao") as neighbour,
        ):
            created = await register(desk, number)
            code, pickup_code = created["item"]["code"], created["pickup_code"]
            await call(
                street,
                "POST",
                f"/runs/{await run_with(desk, 'DLW', code)}/receive",
                json={"codes": [code]},
            )
            last = await run_with(street, "DLW-QG", code)
            before = await changes(server)
            for path, body in (
                (f"/runs/{last}/receive", {"codes": [code]}),
                (f"/items/{code}/ready", None),
                (
                    f"/items/{code}/exception",
                    {"kind": "damaged", "reason": "x", "responsible": "hetao"},
                ),
            ):
                refused = await call(neighbour, "POST", path, 403, json=body)
                assert refused["error"]["code"] in ("not_your_run", "not_at_your_station")
            assert (await call(neighbour, "GET", f"/items/{code}", 403))["error"][
                "code"
            ] == "not_at_your_station"
            assert (await call(neighbour, "GET", f"/runs/{last}", 403))["error"][
                "code"
            ] == "not_your_run"
            assert await changes(server) == before
            await call(station, "POST", f"/runs/{last}/receive", json={"codes": [code]})
            await call(station, "POST", f"/items/{code}/ready")
            signed = {
                "pickup_code": pickup_code,
                "id_last4": ID_NUMBER[-4:],
                "signature": signature_png(),
            }
            refused = await call(neighbour, "POST", f"/items/{code}/pickup", 403, json=signed)
            assert refused["error"]["code"] == "not_at_your_station"
            assert await status_of(station, code) == "ready"
            # Guessing the pickup code: five wrong tries pause the item's handover, even the
            # right one, and every wrong try is in the audit trail.
            guess = {**signed, "pickup_code": "000000" if pickup_code != "000000" else "111111"}
            for _ in range(5):
                wrong = await call(station, "POST", f"/items/{code}/pickup", 403, json=guess)
                assert wrong["error"]["code"] == "pickup_refused"
            paused = await call(station, "POST", f"/items/{code}/pickup", 429, json=signed)
            assert (
                paused["error"]["code"] == "pickup_throttled" and paused["error"]["minutes"] == 15
            )
            assert await status_of(station, code) == "ready"
            listed = (await call(neighbour, "GET", "/items"))["items"]
            assert code not in [i["code"] for i in listed]
            # An attendant has no console: cases stay the hall's.
            async with neighbour.get("/api/v1/cases") as response:
                assert response.status == 403
        async with server.state.db.read() as session:
            case = await session.scalar(select(Case).where(Case.number == number))
            assert case is not None and case.status == "concluded"


async def test_an_item_turning_up_at_the_wrong_station_goes_back(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await concluded_case(server)
        async with (
            signed_in(server, "zhaogang") as desk,
            signed_in(server, "wujun") as street,
            signed_in(server, "hetao") as neighbour,
            signed_in(server, "zhouyan") as station,
        ):
            mine = (await register(desk, number))["item"]["code"]  # for 前关驿站
            theirs = (await register(desk, number, destination="DLW-TL"))["item"]["code"]
            first = await run_with(desk, "DLW", mine, theirs)
            await call(street, "POST", f"/runs/{first}/receive", json={"codes": [mine, theirs]})
            to_qg = await run_with(street, "DLW-QG", mine)
            to_tl = await run_with(street, "DLW-TL", theirs)
            wrong = {"kind": "wrong_station", "reason": "装错袋，到了棠梨", "responsible": "wujun"}
            # 棠梨 has not seen 前关's certificate: it cannot claim it by its code alone.
            refused = await call(neighbour, "POST", f"/items/{mine}/exception", 403, json=wrong)
            assert refused["error"]["code"] == "not_at_your_station"
            # It turns up in 棠梨's bag: flagged extra at receipt, then reported there.
            receipt = await call(
                neighbour, "POST", f"/runs/{to_tl}/receive", json={"codes": [theirs, mine]}
            )
            assert receipt["extra"] == [mine]
            item = (await call(neighbour, "POST", f"/items/{mine}/exception", json=wrong))["item"]
            assert item["status"]["code"] == "to_return"
            assert item["at_station"]["code"] == "DLW-TL"
            assert item["destination"]["code"] == "GJZ-HALL"
            # 前关 finds it missing from its run; it travels back to the hall from 棠梨.
            missing = await call(station, "POST", f"/runs/{to_qg}/receive", json={"codes": []})
            assert missing["missing"] == [mine]
            back = await run_with(neighbour, "DLW", mine)
            await call(street, "POST", f"/runs/{back}/receive", json={"codes": [mine]})
            up = await run_with(street, "GJZ-HALL", mine)
            await call(desk, "POST", f"/runs/{up}/receive", json={"codes": [mine]})
            assert await status_of(desk, mine) == "returned"
            # An attendant registers originals only for the cases of their own station.
            other = await call(
                neighbour, "POST", "/items", 403, json={"case": number, "kind": "originals_in"}
            )
            assert other["error"]["code"] == "not_your_case"


async def test_a_case_handled_at_the_hall_alone_needs_a_destination(demo_url: str) -> None:
    async with running_server(demo_url) as server:
        number = await open_case(
            server, ["awaiting_acceptance", "accepted", "concluded"], station="GJZ-HALL"
        )
        async with signed_in(server, "zhaogang") as desk:
            refused = await call(
                desk, "POST", "/items", 400, json={"case": number, "kind": "certificate"}
            )
            assert refused["error"]["code"] == "bad_destination"
            item = (await register(desk, number, destination="DLW-TL"))["item"]
            assert item["destination"]["code"] == "DLW-TL"
