"""HTTP routes of the document logistics: the hall's logistics desk and the station attendant's
page share one API; everyone acts at their own station (docs/logistics.md)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock, workers
from cloudhelp.core.errors import CodedError
from cloudhelp.core.logs import log_event
from cloudhelp.core.throttle import Throttle, Throttles
from cloudhelp.domain import audit, timeouts
from cloudhelp.domain.logistics import (
    codes,
    exceptions,
    figures,
    handover,
    items,
    labels,
    runs,
    states,
)
from cloudhelp.domain.logistics.items import LogisticsError
from cloudhelp.domain.logistics.routes import Network
from cloudhelp.http import pages
from cloudhelp.http.auth import current_staff
from cloudhelp.http.bodies import Body, parse_body
from cloudhelp.http.errors import ApiError
from cloudhelp.http.state import AppState
from cloudhelp.store import filestore
from cloudhelp.store.models import (
    ACCOUNT_ROLES,
    SUPERVISOR_ROLES,
    Case,
    LogisticsRun,
    LogisticsRunItem,
    Staff,
    TrackedItem,
    utcnow,
)

PREFIX = "/api/v1/logistics"
# Wrong pickup codes or ID digits for one item: this many within the window pause its handover.
PICKUP_FAILURES = 5
PICKUP_WINDOW_SECONDS = 900.0
PICKUP_THROTTLE_KEY = web.AppKey[Throttle]("pickup_throttle")
REFUSAL_STATUS = {
    "unknown_code": 404,
    "unknown_station": 404,
    "not_found": 404,
    "not_at_your_station": 403,
    "not_your_run": 403,
    "pickup_refused": 403,
    "not_your_case": 403,
    "illegal_move": 409,
    "wrong_route": 409,
    "already_bundled": 409,
    "run_closed": 409,
    "run_empty": 409,
    "run_not_dispatched": 409,
    "run_received": 409,
    "not_ready": 409,
    "not_destination": 409,
    "not_overdue": 409,
    "case_not_concluded": 409,
    "case_closed": 409,
    "wrong_tier": 409,
}


class NewItem(Body):
    case: Annotated[str, Field(min_length=1, max_length=32)]
    kind: Annotated[str, Field(min_length=1, max_length=16)]
    description: Annotated[str, Field(max_length=200)] = ""
    destination: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class NewRun(Body):
    to: Annotated[str, Field(min_length=1, max_length=32)]


class Scan(Body):
    code: Annotated[str, Field(min_length=1, max_length=40)]


class RunReceipt(Body):
    codes: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=500)]


class Pickup(Body):
    pickup_code: Annotated[str, Field(min_length=1, max_length=12)]
    id_last4: Annotated[str, Field(min_length=1, max_length=8)]
    signature: Annotated[str, Field(min_length=1, max_length=450_000)]
    collected_by: Annotated[str, Field(max_length=50)] = ""


class ExceptionBody(Body):
    kind: Annotated[str, Field(min_length=1, max_length=16)]
    reason: Annotated[str, Field(max_length=500)] = ""
    responsible: Annotated[str, Field(max_length=50)] = ""


def refused(exc: CodedError) -> ApiError:
    return ApiError.of(exc, REFUSAL_STATUS.get(exc.code, 400))


async def actor(request: web.Request) -> Staff:
    """Anyone signed in: hall staff at the hall's desk, an attendant at their station."""
    return await current_staff(request, ACCOUNT_ROLES)


def _may_see(staff: Staff, item: TrackedItem, hall_id: int, run_ends: set[int]) -> bool:
    """The hall follows every item; a station the items that touch it."""
    if staff.station_id == hall_id:
        return True
    touched = {item.origin_id, item.destination_id, item.at_station_id, *run_ends}
    return staff.station_id in touched


async def _run_ends(session: AsyncSession, item: TrackedItem) -> set[int]:
    if item.run_id is None:
        return set()
    run = await session.get(LogisticsRun, item.run_id)
    return {run.from_id, run.to_id} if run else set()


async def visible_item(session: AsyncSession, staff: Staff, code: str) -> TrackedItem:
    item = await items.by_code(session, code)
    hall = (await Network.load(session)).hall().id
    if not _may_see(staff, item, hall, await _run_ends(session, item)):
        raise LogisticsError("not_at_your_station", f"Item {item.code} is not your station's.")
    return item


async def _item_body(session: AsyncSession, item: TrackedItem) -> dict[str, Any]:
    await session.flush()
    await session.refresh(item)  # its stations and case as they are now
    network = await Network.load(session)
    run_ids = {e.run_id for e in await items.events_of(session, item) if e.run_id}
    codes = dict(
        (
            await session.execute(
                select(LogisticsRun.id, LogisticsRun.code).where(LogisticsRun.id.in_(run_ids))
            )
        ).all()
    )
    return items.item_json(
        item, await items.events_of(session, item), stations=network.by_id, runs=codes
    )


def _pdf(pdf: bytes, name: str) -> web.Response:
    disposition = f'inline; filename="{name}"'
    return web.Response(
        body=pdf, content_type="application/pdf", headers={"Content-Disposition": disposition}
    )


def _json(request: web.Request, body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=AppState.of(request.app).dumps)


# ------------------------------------------------------------------------------ items


async def create_item(request: web.Request) -> web.Response:
    staff = await actor(request)
    body = await parse_body(request, NewItem)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            case = await session.scalar(select(Case).where(Case.number == body.case.strip()))
            if case is None:
                raise LogisticsError("not_found", f"There is no case {body.case!r}.")
            target = None
            if body.destination:
                target = (await Network.load(session)).by_code.get(body.destination)
                if target is None:
                    raise LogisticsError("unknown_station", f"No station {body.destination!r}.")
            item = await items.register(session, staff, case, body.kind, body.description, target)
            result = await _item_body(session, item)
            pickup_code = item.pickup_code  # told to the applicant; shown here and at the kiosk
    except LogisticsError as exc:
        raise refused(exc) from None
    log_event("logistics.registered", item=result["code"], case=body.case, staff=staff.id)
    return _json(request, {"item": result, "pickup_code": pickup_code}, 201)


async def list_items(request: web.Request) -> web.Response:
    """Items of a case (``case``), or those at or bound for the viewer's station."""
    staff = await actor(request)
    number = request.query.get("case", "").strip()
    async with AppState.of(request.app).db.read() as session:
        hall = (await Network.load(session)).hall().id
        stmt = select(TrackedItem).order_by(TrackedItem.created_at.desc()).limit(200)
        if number:
            stmt = stmt.join(Case, Case.id == TrackedItem.case_id).where(Case.number == number)
        if staff.station_id != hall:
            here = staff.station_id
            stmt = stmt.where(
                or_(
                    TrackedItem.at_station_id == here,
                    TrackedItem.destination_id == here,
                    TrackedItem.origin_id == here,
                )
            )
        found = [items.item_json(i) for i in (await session.scalars(stmt)).all()]
    return _json(request, {"items": found})


async def show_item(request: web.Request) -> web.Response:
    staff = await actor(request)
    try:
        async with AppState.of(request.app).db.read() as session:
            item = await visible_item(session, staff, request.match_info["code"])
            result = await _item_body(session, item)
    except LogisticsError as exc:
        raise refused(exc) from None
    return _json(request, {"item": result})


async def label(request: web.Request) -> web.Response:
    staff = await actor(request)
    try:
        async with AppState.of(request.app).db.read() as session:
            item = await visible_item(session, staff, request.match_info["code"])
            text = labels.Label(
                code=item.code,
                kind=states.KINDS[item.kind],
                case=item.case.number,
                applicant=labels.mask_name(item.case.applicant_name),
                description=item.description,
                origin=item.origin.name,
                destination=item.destination.name,
            )
    except LogisticsError as exc:
        raise refused(exc) from None
    pdf = await workers.in_process(labels.label_pdf, text)
    return _pdf(pdf, f"label-{text.code}.pdf")


async def _change(request: web.Request, work: Any) -> web.Response:
    """Run ``work(session, staff, item)`` on the item in the path; the item after, or the
    refusal (nothing changed)."""
    staff = await actor(request)
    try:
        async with AppState.of(request.app).db.write() as session:
            item = await items.by_code(session, request.match_info["code"])
            await work(session, staff, item)
            result = await _item_body(session, item)
    except LogisticsError as exc:
        raise refused(exc) from None
    return _json(request, {"item": result})


async def ready(request: web.Request) -> web.Response:
    async def work(session: AsyncSession, staff: Staff, item: TrackedItem) -> None:
        await handover.make_ready(session, staff, item)

    return await _change(request, work)


def _png(data_url: str) -> bytes:
    raw = data_url.split(",", 1)[1] if data_url.startswith("data:image/png;base64,") else ""
    try:
        png = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        png = b""
    handover.check_signature(png)
    return png


async def pickup(request: web.Request) -> web.Response:
    """Hand an item over: pickup code, ID digits and the signature; a refusal is audited."""
    staff = await actor(request)
    body = await parse_body(request, Pickup)
    state = AppState.of(request.app)
    key = f"item:{codes.typed(request.match_info['code'])}"
    throttle = request.app[PICKUP_THROTTLE_KEY]
    limits = [(key, PICKUP_FAILURES)]
    wait = await throttle.wait(limits)
    if wait > 0:
        minutes = math.ceil(wait / 60)
        raise ApiError(
            429,
            "pickup_throttled",
            f"Too many wrong pickup codes for this item; try again in {minutes} min.",
            headers={"Retry-After": str(math.ceil(wait))},
            minutes=minutes,
        )
    try:
        png = _png(body.signature)
    except LogisticsError as exc:
        raise refused(exc) from None
    sha = await asyncio.to_thread(filestore.store_bytes, state.settings.data_dir, png)
    try:
        async with state.db.write() as session:
            item = await items.by_code(session, request.match_info["code"])
            await handover.hand_over(
                session,
                staff,
                item,
                pickup_code=body.pickup_code,
                id_last4=body.id_last4,
                signature_sha256=sha,
                collected_by=body.collected_by.strip(),
            )
            result = await _item_body(session, item)
    except LogisticsError as exc:
        if exc.code == "pickup_refused":
            await throttle.add(limits)
            async with state.db.write() as session:
                await audit.append(
                    session,
                    audit.staff_actor(staff),
                    "logistics.pickup_refused",
                    subject_kind="item",
                    subject=codes.typed(request.match_info["code"]),
                )
        raise refused(exc) from None
    log_event("logistics.picked_up", item=result["code"], staff=staff.id)
    return _json(request, {"item": result})


async def report_exception(request: web.Request) -> web.Response:
    body = await parse_body(request, ExceptionBody)

    async def work(session: AsyncSession, staff: Staff, item: TrackedItem) -> None:
        limits = await timeouts.Thresholds.load(session)
        days = limits.value("pickup_overdue", item.case.item.department_id, item.case.item_id)
        ends = await _run_ends(session, item)
        seen = await runs.seen_as_extra(session, staff.station_id, item.code)
        await exceptions.report(
            session,
            staff,
            item,
            body.kind,
            reason=body.reason,
            responsible=body.responsible,
            now=utcnow(),
            pickup_days=days,
            run_ends=(min(ends), max(ends)) if ends else None,
            found_here=seen,
        )

    return await _change(request, work)


async def signature(request: web.Request) -> web.Response:
    staff = await actor(request)
    state = AppState.of(request.app)
    try:
        async with state.db.read() as session:
            item = await visible_item(session, staff, request.match_info["code"])
            sha = item.signature_sha256
    except LogisticsError as exc:
        raise refused(exc) from None
    path = filestore.storage_path(state.settings.data_dir, sha) if sha else None
    if path is None or not path.exists():
        raise ApiError(404, "not_found", "This item has no signature.")
    return web.Response(body=await asyncio.to_thread(path.read_bytes), content_type="image/png")


# ------------------------------------------------------------------------------ runs


async def create_run(request: web.Request) -> web.Response:
    staff = await actor(request)
    body = await parse_body(request, NewRun)
    try:
        async with AppState.of(request.app).db.write() as session:
            run = await runs.open_run(session, staff, body.to)
            result = runs.run_json(run, [])
    except LogisticsError as exc:
        raise refused(exc) from None
    return _json(request, {"run": result}, 201)


async def _own_run(session: AsyncSession, staff: Staff, code: str) -> LogisticsRun:
    run = await runs.run_by_code(session, code)
    hall = (await Network.load(session)).hall().id
    if staff.station_id not in (run.from_id, run.to_id, hall):
        raise LogisticsError("not_your_run", f"Run {run.code} is another station's.")
    return run


async def show_run(request: web.Request) -> web.Response:
    staff = await actor(request)
    try:
        async with AppState.of(request.app).db.read() as session:
            run = await _own_run(session, staff, request.match_info["code"])
            result = runs.run_json(run, await runs.manifest(session, run))
    except LogisticsError as exc:
        raise refused(exc) from None
    return _json(request, {"run": result})


async def add_to_run(request: web.Request) -> web.Response:
    staff = await actor(request)
    body = await parse_body(request, Scan)
    try:
        async with AppState.of(request.app).db.write() as session:
            run = await runs.run_by_code(session, request.match_info["code"])
            await runs.add_item(session, staff, run, body.code)
            result = runs.run_json(run, await runs.manifest(session, run))
    except LogisticsError as exc:
        raise refused(exc) from None
    return _json(request, {"run": result})


async def dispatch_run(request: web.Request) -> web.Response:
    staff = await actor(request)
    try:
        async with AppState.of(request.app).db.write() as session:
            run = await runs.run_by_code(session, request.match_info["code"])
            await runs.dispatch(session, staff, run)
            result = runs.run_json(run, await runs.manifest(session, run))
    except LogisticsError as exc:
        raise refused(exc) from None
    log_event("logistics.run_dispatched", run=result["code"], staff=staff.id)
    return _json(request, {"run": result})


async def receive_run(request: web.Request) -> web.Response:
    staff = await actor(request)
    body = await parse_body(request, RunReceipt)
    try:
        async with AppState.of(request.app).db.write() as session:
            run = await runs.run_by_code(session, request.match_info["code"])
            receipt = await runs.receive(session, staff, run, body.codes)
            result = runs.run_json(run, await runs.manifest(session, run))
    except LogisticsError as exc:
        raise refused(exc) from None
    log_event(
        "logistics.run_received",
        run=result["code"],
        missing=len(receipt.missing),
        extra=len(receipt.extra),
        staff=staff.id,
    )
    return _json(
        request,
        {
            "run": result,
            "received": receipt.received,
            "missing": receipt.missing,
            "extra": receipt.extra,
        },
    )


async def manifest(request: web.Request) -> web.Response:
    staff = await actor(request)
    try:
        async with AppState.of(request.app).db.read() as session:
            run = await _own_run(session, staff, request.match_info["code"])
            lines = [
                labels.ManifestLine(
                    item.code,
                    states.KINDS[item.kind],
                    item.case.number,
                    labels.mask_name(item.case.applicant_name),
                    item.destination.name,
                )
                for _entry, item in await runs.manifest(session, run)
            ]
            args = (
                run.code,
                run.origin.name,
                run.destination.name,
                clock.local_minute(run.dispatched_at or run.created_at),
                lines,
            )
    except LogisticsError as exc:
        raise refused(exc) from None
    pdf = await workers.in_process(labels.manifest_pdf, *args)
    return _pdf(pdf, f"manifest-{args[0]}.pdf")


# ------------------------------------------------------------------------------ the pages' view


async def station_view(session: AsyncSession, staff: Staff) -> dict[str, Any]:
    """What a station (or the hall's desk) sees: runs arriving, items here by what they wait
    for, runs being packed, and the next hops it sends to."""
    network = await Network.load(session)
    here = network.by_id[staff.station_id]
    rows = (
        await session.scalars(
            select(TrackedItem)
            .where(TrackedItem.at_station_id == here.id, TrackedItem.finished_at.is_(None))
            .order_by(TrackedItem.created_at)
        )
    ).all()
    packed = (
        select(LogisticsRunItem.item_id)
        .join(LogisticsRun, LogisticsRun.id == LogisticsRunItem.run_id)
        .where(LogisticsRun.status == "open", LogisticsRun.from_id == here.id)
    )
    bundled = set((await session.scalars(packed)).all())
    waiting: list[dict[str, Any]] = []
    ready_items: list[dict[str, Any]] = []
    returning: list[dict[str, Any]] = []
    for item in rows:
        body = items.item_json(item)
        if item.status == "ready":
            ready_items.append(body)
        elif item.status in states.WAITING:
            hop = network.next_hop(here.id, item.destination_id)
            body["next_hop"] = network.by_id[hop].code if hop else None
            body["bundled"] = item.id in bundled
            (returning if item.status == "to_return" else waiting).append(body)
    all_runs = []
    for run in await runs.runs_at(session, here.id):
        all_runs.append(runs.run_json(run, await runs.manifest(session, run)))
    arriving = [r for r in all_runs if r["to"]["code"] == here.code and r["status"] == "dispatched"]
    packing = [r for r in all_runs if r["from"]["code"] == here.code and r["status"] == "open"]
    # The hall's desk follows every open exception, wherever the item lies.
    followed = []
    if here.parent_id is None:
        open_ones = await session.scalars(
            select(TrackedItem)
            .where(TrackedItem.exception.is_not(None), TrackedItem.finished_at.is_(None))
            .order_by(TrackedItem.exception_at)
        )
        followed = [items.item_json(i) for i in open_ones.all()]
    neighbours = [s for s in network.by_id.values() if network.adjacent(here.id, s.id)]
    return {
        "station": {"code": here.code, "name": here.name, "tier": here.tier},
        "viewer": {"username": staff.username, "name": staff.display_name, "role": staff.role},
        "arriving": arriving,
        "packing": packing,
        "recent": [r for r in all_runs if r not in arriving and r not in packing][:20],
        "waiting": waiting,
        "returning": returning,
        "ready": ready_items,
        "exceptions": followed,
        "neighbours": [
            {"code": s.code, "name": s.name, "tier": s.tier}
            for s in sorted(neighbours, key=lambda s: (s.tier != "district", s.code))
        ],
        "stations": [
            {"code": s.code, "name": s.name}
            for s in sorted(network.by_id.values(), key=lambda s: s.code)
            if s.parent_id is not None
        ],
        "pickup_days": figures.PICKUP_DAYS_DEFAULT,
        "now": utcnow().isoformat(),
    }


async def overview(request: web.Request) -> web.Response:
    staff = await actor(request)
    async with AppState.of(request.app).db.read() as session:
        body = await station_view(session, staff)
        limits = await timeouts.Thresholds.load(session)
        body["pickup_days"] = limits.value("pickup_overdue", None, None)
    return _json(request, body)


async def logistics_figures(request: web.Request) -> web.Response:
    """``GET /api/v1/logistics/figures``: the board's logistics figures for today."""
    await current_staff(request, SUPERVISOR_ROLES)
    now = utcnow()
    today = clock.local_date(now)
    async with AppState.of(request.app).db.read() as session:
        days = (await timeouts.Thresholds.load(session)).value("pickup_overdue", None, None)
        body = await figures.summary(session, today, today, now, days)
    return _json(request, body)


async def desk_page(request: web.Request) -> web.Response:
    return pages.render(request, "logistics.html", page="desk")


async def station_page(request: web.Request) -> web.Response:
    return pages.render(request, "logistics.html", page="station")


def setup(app: web.Application, throttles: Throttles) -> None:
    app[PICKUP_THROTTLE_KEY] = throttles("pickup", PICKUP_FAILURES, PICKUP_WINDOW_SECONDS)
    app.router.add_get("/logistics", desk_page)
    app.router.add_get("/station", station_page)
    app.router.add_get(f"{PREFIX}/overview", overview)
    app.router.add_get(f"{PREFIX}/figures", logistics_figures)
    app.router.add_post(f"{PREFIX}/items", create_item)
    app.router.add_get(f"{PREFIX}/items", list_items)
    app.router.add_get(f"{PREFIX}/items/{{code}}", show_item)
    app.router.add_get(f"{PREFIX}/items/{{code}}/label.pdf", label)
    app.router.add_get(f"{PREFIX}/items/{{code}}/signature.png", signature)
    app.router.add_post(f"{PREFIX}/items/{{code}}/ready", ready)
    app.router.add_post(f"{PREFIX}/items/{{code}}/pickup", pickup)
    app.router.add_post(f"{PREFIX}/items/{{code}}/exception", report_exception)
    app.router.add_post(f"{PREFIX}/runs", create_run)
    app.router.add_get(f"{PREFIX}/runs/{{code}}", show_run)
    app.router.add_post(f"{PREFIX}/runs/{{code}}/items", add_to_run)
    app.router.add_post(f"{PREFIX}/runs/{{code}}/dispatch", dispatch_run)
    app.router.add_post(f"{PREFIX}/runs/{{code}}/receive", receive_run)
    app.router.add_get(f"{PREFIX}/runs/{{code}}/manifest.pdf", manifest)
