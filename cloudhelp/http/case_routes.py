"""HTTP routes for cases (办件): open, search, show, change state, and the case pages (staff and
supervisors). Pre-review (checklist, verdict, notices) is in :mod:`review_routes`."""

from __future__ import annotations

import json
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import i18n
from cloudhelp.core.errors import CodedError
from cloudhelp.core.inputs import RowId
from cloudhelp.core.logs import log_event
from cloudhelp.domain import accounts, audit, case_scope, case_search, cases, casework
from cloudhelp.domain.case_record import case_record
from cloudhelp.domain.logistics import items as logistics_items
from cloudhelp.http import pages
from cloudhelp.http.auth import STAFF_ROLES, current_staff, staff_or_none
from cloudhelp.http.bodies import parse_body, query_date, query_id
from cloudhelp.http.errors import ApiError, bad_request, not_found
from cloudhelp.http.state import AppState
from cloudhelp.store.models import Case, Staff

PREFIX = "/api/v1/cases"
# The HTTP status of a refused case operation, by its code (any other code: 400).
REFUSAL_STATUS = {"illegal_transition": 409, "not_found": 404, "forbidden": 403}


class Applicant(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[str, Field(min_length=1, max_length=50)]
    phone: Annotated[str, Field(min_length=1, max_length=20)]
    id_number: Annotated[str, Field(min_length=1, max_length=18)]


class NewCase(BaseModel):
    """``item`` may be left out when ``ticket`` is given: the case is for the ticket's item."""

    model_config = ConfigDict(extra="forbid")
    item: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    ticket: RowId | None = None
    applicant: Applicant


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Annotated[str, Field(min_length=1, max_length=24)]
    reason: Annotated[str, Field(max_length=1000)] = ""


def refused(exc: CodedError) -> ApiError:
    """A refused case operation as its HTTP error."""
    return ApiError.of(exc, REFUSAL_STATUS.get(exc.code, 400))


async def case_in_scope(session: AsyncSession, number: str, staff: Staff | None) -> Case:
    """The case by number if ``staff`` may see it (None: a signed notice link, no scope);
    404 alike when out of scope or not there."""
    case = await case_scope.visible_case(session, number, staff)
    if case is None:
        raise not_found(f"There is no case {number!r}.")
    return case


async def create(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    body = await parse_body(request, NewCase)
    state = AppState.of(request.app)
    applicant = casework.Applicant(**body.applicant.model_dump())
    try:
        async with state.db.write() as session:
            case = await casework.open_for(session, staff, district=state.settings.district_code,
                                           item_code=body.item, ticket_id=body.ticket,
                                           applicant=applicant)  # fmt: skip
            result = cases.case_json(case, await cases.events_of(session, case), full_id=True)
    except cases.CaseError as exc:
        raise refused(exc) from None
    log_event("case.opened", case=result["number"], item=body.item, staff=staff.id)
    return web.json_response({"case": result}, status=201, dumps=state.dumps)


def case_query(request: web.Request) -> case_search.CaseQuery:
    """The search's filters from the query string; 400 for a bad status, ticket or date."""
    q = request.query
    status = q.get("status", "")
    if status and status not in cases.STATES:
        raise bad_request(f"Parameter 'status' must be one of {', '.join(cases.STATES)}.")
    return case_search.CaseQuery(
        number=q.get("number", "").strip(),
        phone=q.get("phone", "").strip(),
        item=q.get("item", "").strip(),
        status=status,
        ticket=query_id(request, "ticket", "ticket"),
        first=query_date(request, "from"),
        last=query_date(request, "to"),
    )


async def find_cases(request: web.Request, staff: Staff) -> list[dict[str, object]]:
    """Cases by number, phone, item, status, session and creation date range (newest first,
    200 at most), only those in the viewer's scope."""
    query = case_query(request)
    async with AppState.of(request.app).db.read() as session:
        return await case_search.search(session, staff, query)


async def search(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    found = await find_cases(request, staff)
    return web.json_response({"cases": found}, dumps=AppState.of(request.app).dumps)


async def show(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    reveal = request.query.get("reveal") == "1"
    reason = request.query.get("reason", "").strip()
    if reveal and not 2 <= len(reason) <= 200:
        raise ApiError(
            400,
            "reveal_reason_required",
            "Say why (reason, 2 to 200 characters) to reveal the full ID and phone.",
        )
    state = AppState.of(request.app)
    async with state.db.read() as session:
        case = await case_in_scope(session, request.match_info["number"], staff)
        body = await case_record(session, case, full_id=reveal)
    if reveal:  # recorded before anything is shown
        async with state.db.write() as session:
            await audit.append(session, audit.staff_actor(staff), "case.pii_revealed",
                               subject_kind="case", subject=case.number,
                               case_number=case.number, reason=reason)  # fmt: skip
        log_event("case.id_revealed", case=case.number, staff=staff.id)
    return web.json_response({"case": body}, dumps=state.dumps)


async def move(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    body = await parse_body(request, Move)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            case = await case_in_scope(session, request.match_info["number"], staff)
            await cases.transition(session, case, body.to, staff.username, body.reason)
            result = cases.case_json(case, await cases.events_of(session, case))
    except cases.CaseError as exc:
        raise refused(exc) from None
    log_event("case.moved", case=result["number"], to=body.to, staff=staff.id)
    return web.json_response({"case": result}, dumps=state.dumps)


async def cases_page(request: web.Request) -> web.Response:
    """Case search for staff and supervisors (sign in on the console first)."""
    viewer = await staff_or_none(request)
    if viewer is None:
        raise pages.sign_in_first(request)
    query = {
        k: request.query.get(k, "") for k in ("number", "phone", "item", "status", "from", "to")
    }
    error = None
    try:
        found = await find_cases(request, viewer)
    except ApiError as exc:
        found, error = [], json.loads(exc.text or "{}")["error"]["message"]
    return pages.render(request, "cases.html", found=found, query=query, states=cases.STATES,
                        error=error, nav_role=viewer.role)  # fmt: skip


async def case_page(request: web.Request) -> web.Response:
    """One case's record, with the moves a person may make on it by hand."""
    viewer = await staff_or_none(request)
    if viewer is None:
        raise pages.sign_in_first(request)
    async with AppState.of(request.app).db.read() as session:
        case = await case_scope.visible_case(session, request.match_info["number"], viewer)
        if case is None:
            return pages.render(request, "error.html", status=404, message_key="error.not_found")
        record = await case_record(session, case)
        papers = await logistics_items.of_case(session, case)
        # People by the names residents and colleagues know (赵刚), not their logins.
        logins = {e["actor"] for e in record["events"]}
        names = await accounts.display_names(
            session, logins | {n["issued_by"] for n in record["notices"]}
        )
    lang = i18n.request_lang(request)
    move_errors = {
        code: i18n.translate(lang, f"error.{code}")
        for code in ("illegal_transition", "reason_required", "not_signed_in", "forbidden")
    } | {"": i18n.translate(lang, "staff.error.generic")}
    return pages.render(request, "case.html", c=record, moves=cases.manual_moves(case),
                        move_errors=move_errors, names=names, nav_role=viewer.role,
                        papers=papers)  # fmt: skip


def setup(app: web.Application) -> None:
    app.router.add_get("/cases", cases_page)
    app.router.add_get("/cases/{number}", case_page)
    app.router.add_post(PREFIX, create)
    app.router.add_get(PREFIX, search)
    app.router.add_get(f"{PREFIX}/{{number}}", show)
    app.router.add_post(f"{PREFIX}/{{number}}/transitions", move)
