"""HTTP routes for cases (办件): open, search, show, change state (staff and supervisors)."""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import unicodedata
from datetime import date, datetime, time
from typing import Annotated

import segno
from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.callcenter import CORRECTION_STATES
from cloudhelp.core import i18n, signed
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.core.config import Settings
from cloudhelp.core.errors import ApiError, bad_request, not_found
from cloudhelp.core.inputs import ROW_ID_MAX, RowId, bounded_date, path_id
from cloudhelp.core.logs import log_event
from cloudhelp.core.throttle import FailureThrottle
from cloudhelp.domain import (
    accounts,
    audit,
    case_scope,
    cases,
    notice_pdf,
    notice_text,
    prereview,
    queue,
    ratings,
)
from cloudhelp.domain.case_record import case_record
from cloudhelp.http import pages
from cloudhelp.http.account_routes import current_staff, parse_body
from cloudhelp.http.state import AppState
from cloudhelp.store.models import (
    SUPERVISOR_ROLES,
    Case,
    Department,
    FollowUp,
    MaterialCheck,
    Rating,
    ServiceItem,
    Staff,
    StaffPresence,
    StaffSkill,
    Ticket,
    TicketFile,
    utcnow,
)

PREFIX = "/api/v1/cases"
STAFF_ROLES = ("staff", "supervisor", "admin")


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


class Mark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: Annotated[int, Field(ge=0, le=10_000)]
    status: Annotated[str, Field(max_length=20)]
    reason: Annotated[str, Field(max_length=500)] = ""
    files: Annotated[list[RowId], Field(max_length=100)] = []


class Checklist(BaseModel):
    model_config = ConfigDict(extra="forbid")
    materials: Annotated[list[Mark], Field(min_length=1, max_length=100)]


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Annotated[str, Field(max_length=24)]
    reason: Annotated[str, Field(max_length=1000)] = ""


class Lookup(BaseModel):
    """A kiosk's case lookup: the case number and the last four characters of the applicant's
    phone or ID number. Other fields are ignored, so an older page's ``phone``/``id_last4``
    gets the answer that says what to give (``lookup_incomplete``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    number: Annotated[str, Field(max_length=32)] | None = None
    last4: Annotated[str, Field(max_length=8)] | None = None


LAST4 = re.compile(r"^[0-9]{3}[0-9Xx]$")


def _typed(text: str) -> str:
    """What was typed, as compared: full-width digits and letters (an IME's ５６７８) as ASCII."""
    return unicodedata.normalize("NFKC", text).strip()


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Annotated[str, Field(min_length=1, max_length=24)]
    reason: Annotated[str, Field(max_length=1000)] = ""


def _case_error(exc: cases.CaseError) -> ApiError:
    status = 409 if exc.code == "illegal_transition" else 400
    return ApiError(status, exc.code, exc.message)


async def create(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    body = await parse_body(request, NewCase)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            station_id = staff.station_id
            ticket = None
            if body.ticket is not None:
                ticket = await session.get(Ticket, body.ticket)
                if ticket is None:
                    raise not_found("There is no such ticket.")
                station_id = ticket.station_id
            if body.item is not None:
                item = await session.scalar(
                    select(ServiceItem).where(ServiceItem.code == body.item)
                )
                if item is None:
                    raise not_found(f"There is no service item with code {body.item!r}.")
            elif ticket is not None:
                item = ticket.item
            else:
                raise bad_request("Say which item (item) or ticket (ticket) the case is for.")
            # A case for a session the staff member answers, or for an item they serve.
            if not (
                ticket is not None and ticket.staff_id == staff.id
            ) and not await case_scope.may_open_for_item(session, staff, item.id):
                raise ApiError(
                    403, "forbidden", "You serve neither this item's department nor this session."
                )
            case = await cases.open_case(
                session,
                district=state.settings.district_code,
                item=item,
                station_id=station_id,
                staff_id=staff.id,
                name=body.applicant.name,
                phone=body.applicant.phone,
                id_number=body.applicant.id_number,
                actor=staff.username,
            )
            if ticket is not None and ticket.case_id is None:
                ticket.case_id = case.id  # this session is the case's first
                await queue.record(session, ticket.id, "case_opened", staff.id, case=case.number)
            await session.refresh(case, ["item", "station"])
            await audit.append(session, audit.staff_actor(staff), "case.opened",
                               subject_kind="case", subject=case.number,
                               case_number=case.number, item=item.code,
                               ticket=ticket.id if ticket else None)  # fmt: skip
            result = cases.case_json(case, await cases.events_of(session, case), full_id=True)
    except cases.CaseError as exc:
        raise _case_error(exc) from None
    log_event("case.opened", case=result["number"], item=body.item, staff=staff.id)
    return web.json_response({"case": result}, status=201, dumps=state.dumps)


async def _log_on_session(
    session: AsyncSession, case: Case, kind: str, staff_id: int, **detail: object
) -> None:
    """Record a pre-review step on the session (ticket) in progress for this case, if any."""
    ticket_id = await session.scalar(
        select(Ticket.id)
        .where(Ticket.case_id == case.id, Ticket.status.in_(("connected", "wrapup")))
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    if ticket_id is not None:
        await queue.record(session, ticket_id, kind, staff_id, **detail)


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    return bounded_date(raw, name) if raw else None


async def find_cases(request: web.Request, staff: Staff) -> list[dict[str, object]]:
    """Cases by number, phone, item, status and creation date range (newest first, 200 at
    most), only those in the viewer's scope."""
    q = request.query
    stmt = select(Case).order_by(Case.created_at.desc(), Case.id.desc()).limit(200)
    if q.get("number"):
        stmt = stmt.where(Case.number.contains(q["number"].strip(), autoescape=True))
    if q.get("phone"):
        stmt = stmt.where(Case.applicant_phone == q["phone"].strip())
    if q.get("status"):
        if q["status"] not in cases.STATES:
            raise bad_request(f"Parameter 'status' must be one of {', '.join(cases.STATES)}.")
        stmt = stmt.where(Case.status == q["status"])
    if q.get("item"):
        stmt = stmt.join(ServiceItem).where(ServiceItem.code == q["item"].strip())
    if q.get("ticket"):
        raw_ticket = q["ticket"]
        if not (raw_ticket.isascii() and raw_ticket.isdigit() and len(raw_ticket) <= 10) or not (
            1 <= int(raw_ticket) <= ROW_ID_MAX
        ):
            raise bad_request("Parameter 'ticket' must be a ticket id.")
        # The case a session belongs to (the console finds it again after a reload).
        stmt = stmt.join(Ticket, Ticket.case_id == Case.id).where(Ticket.id == int(raw_ticket))
    first, last = _day(request, "from"), _day(request, "to")
    if first:
        stmt = stmt.where(Case.created_at >= datetime.combine(first, time(), LOCAL_TZ))
    if last:
        stmt = stmt.where(Case.created_at < datetime.combine(last, time.max, LOCAL_TZ))
    async with AppState.of(request.app).db.read() as session:
        stmt = stmt.where(await case_scope.visible(session, staff))
        rows = (await session.scalars(stmt)).unique().all()
        return [cases.case_json(c, await cases.events_of(session, c)) for c in rows]


async def search(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    found = await find_cases(request, staff)
    return web.json_response({"cases": found}, dumps=AppState.of(request.app).dumps)


async def _case(session: AsyncSession, number: str, staff: Staff | None) -> Case:
    """The case by number, if ``staff`` may see it (None: a signed notice link, no scope);
    a case out of scope is not found, like one that does not exist."""
    stmt = select(Case).where(Case.number == number)
    if staff is not None:
        stmt = stmt.where(await case_scope.visible(session, staff))
    case = await session.scalar(stmt)
    if case is None:
        raise not_found(f"There is no case {number!r}.")
    return case


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
        case = await _case(session, request.match_info["number"], staff)
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
            case = await _case(session, request.match_info["number"], staff)
            await cases.transition(session, case, body.to, staff.username, body.reason)
            result = cases.case_json(case, await cases.events_of(session, case))
    except cases.CaseError as exc:
        raise _case_error(exc) from None
    log_event("case.moved", case=result["number"], to=body.to, staff=staff.id)
    return web.json_response({"case": result}, dumps=state.dumps)


async def get_checklist(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        case = await _case(session, request.match_info["number"], staff)
        rows = await prereview.checklist(session, case)
        # In a correction round the reviewer sees the previous round's marks for reference.
        previous = (
            {"round": case.rounds - 1,
             "materials": await prereview.checklist(session, case, case.rounds - 1)}
            if case.rounds > 1
            else None
        )  # fmt: skip
    return web.json_response(
        {"round": case.rounds, "materials": rows, "previous": previous}, dumps=state.dumps
    )


async def _check_files(session: AsyncSession, case: Case, body: Checklist) -> None:
    """Files named on marks must be files sent in the case's own sessions."""
    wanted = {f for m in body.materials for f in m.files}
    if not wanted:
        return
    own = set(
        (
            await session.scalars(
                select(TicketFile.id)
                .join(Ticket, Ticket.id == TicketFile.ticket_id)
                .where(Ticket.case_id == case.id, TicketFile.id.in_(wanted))
            )
        ).all()
    )
    if foreign := sorted(wanted - own):
        raise bad_request(f"Files {foreign} were not sent in this case's sessions.", "bad_file")


async def _marks_of_round(session: AsyncSession, case: Case) -> dict[int, dict[str, object]]:
    """The current round's marks by material id, as they stand before a change."""
    checks = await session.scalars(
        select(MaterialCheck).where(
            MaterialCheck.case_id == case.id, MaterialCheck.round == case.rounds
        )
    )
    return {
        c.material_id: {"by": c.checked_by, "status": c.status, "reason": c.reason,
                        "files": list(c.file_ids or []), "at": c.checked_at.isoformat()}
        for c in checks.all()
    }  # fmt: skip


async def _audit_marks(
    session: AsyncSession,
    staff: Staff,
    case: Case,
    body: Checklist,
    earlier: dict[int, dict[str, object]],
) -> None:
    """Every mark goes into the audit trail with the mark it replaced (who, what, when), so
    the history of a round is kept per reviewer although the checklist shows the latest."""
    by_position = {m.position: m.id for m in case.item.materials}
    for mark in body.materials:
        await audit.append(session, audit.staff_actor(staff), "case.material_marked",
                           subject_kind="case", subject=case.number, case_number=case.number,
                           round=case.rounds, position=mark.position, status=mark.status,
                           reason=mark.reason.strip(), files=list(mark.files),
                           replaced=earlier.get(by_position[mark.position]))  # fmt: skip


async def put_checklist(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    body = await parse_body(request, Checklist)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            case = await _case(session, request.match_info["number"], staff)
            await _check_files(session, case, body)
            earlier = await _marks_of_round(session, case)
            rows = await prereview.mark(
                session, case, [m.model_dump() for m in body.materials], staff.username
            )
            await _audit_marks(session, staff, case, body, earlier)
            await _log_on_session(
                session, case, "checklist", staff.id, round=case.rounds, marked=len(body.materials)
            )
    except cases.CaseError as exc:
        raise _case_error(exc) from None
    return web.json_response({"round": case.rounds, "materials": rows}, dumps=state.dumps)


async def post_verdict(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    body = await parse_body(request, Verdict)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            case = await _case(session, request.match_info["number"], staff)
            notice = await prereview.verdict(
                session, case, body.verdict, staff.username, body.reason
            )
            await _log_on_session(
                session, case, "verdict", staff.id, verdict=body.verdict, round=case.rounds,
                notice=notice is not None,
            )  # fmt: skip
            await audit.append(session, audit.staff_actor(staff), "case.verdict",
                               subject_kind="case", subject=case.number,
                               case_number=case.number, verdict=body.verdict,
                               round=case.rounds, reason=body.reason)  # fmt: skip
            if notice is not None:
                await audit.append(session, audit.staff_actor(staff), "notice.issued",
                                   subject_kind="case", subject=case.number,
                                   case_number=case.number, round=notice.round,
                                   items=len(notice.items))  # fmt: skip
            result = cases.case_json(case, await cases.events_of(session, case))
    except cases.CaseError as exc:
        raise _case_error(exc) from None
    if notice is not None:
        result["notice"] = {
            "round": notice.round,
            "items": notice.items,
            "url": notice_url(state, case.number, notice.round),
        }
        log_event("case.notice_issued", case=case.number, round=notice.round, staff=staff.id)
    return web.json_response({"case": result}, dumps=state.dumps)


def notice_url(state: AppState, number: str, round_: int, now: float | None = None) -> str:
    """A link the kiosk can open and print without signing in: signed for this one notice,
    good for ``notice_link_days`` from now."""
    return f"/notices/{number}/{round_}?t={notice_token(state, number, round_, now)}"


def notice_token(state: AppState, number: str, round_: int, now: float | None = None) -> str:
    lifetime = state.settings.notice_link_days * 86400
    return signed.sign(state.secret_key, signed.NOTICE, (number, round_), lifetime, now)


async def _notice(request: web.Request) -> tuple[notice_text.NoticeText, str]:
    """The words of the notice named in the path, for staff or for whoever holds its signed
    (unexpired) link, and the link of its PDF."""
    state = AppState.of(request.app)
    number = request.match_info["number"]
    round_ = path_id(request, "round", "notice")
    token = request.query.get("t", "")
    staff = None  # the signed link opens its one notice without scope
    try:
        signed.check(state.secret_key, token, signed.NOTICE, (number, round_))
    except signed.TokenRefused as refused:
        try:  # staff see the notice without the link's signature
            staff = await current_staff(request, STAFF_ROLES)
        except ApiError:
            if refused.reason != "expired":
                raise
            raise ApiError(
                410,
                "notice_link_expired",
                "This notice link has expired; ask the hall (or look the case up again at a "
                "kiosk) for a new link.",
            ) from None
    async with state.db.read() as session:
        case = await _case(session, number, staff)
        notices = await prereview.notices_of(session, case)
        notice = next((n for n in notices if n.round == round_), None)
        if notice is None:
            raise not_found("There is no such notice.")
        # 告知人 is the person, by the name residents know, not the login.
        issuer = await session.scalar(
            select(Staff.display_name).where(Staff.username == notice.issued_by)
        )
        text = notice_text.notice_text(
            case, notice, cases.mask_id_number(case.applicant_id_number), issuer or notice.issued_by
        )
    return text, f"/notices/{number}/{round_}.pdf?t={token}"


async def notice_pdf_file(request: web.Request) -> web.Response:
    """The same notice as a PDF, to download, print or send."""
    text, _pdf_url = await _notice(request)
    try:
        data = await AppState.of(request.app).notice_pdfs.pdf(text)
    except notice_pdf.FontMissing as exc:
        raise ApiError(503, "font_missing", str(exc)) from None
    disposition = f'inline; filename="notice-{text.number}-{text.round}.pdf"'
    return web.Response(
        body=data, content_type="application/pdf", headers={"Content-Disposition": disposition}
    )


async def notice_page(request: web.Request) -> web.Response:
    """The printable one-time correction notice (一次性告知书) with a QR code of the case number."""
    try:
        text, pdf_url = await _notice(request)
    except ApiError as exc:
        if exc.code != "notice_link_expired":
            raise
        # What the resident reads in the kiosk's frame: a page in words, not a JSON body.
        return pages.render(request, "error.html", status=410, message_key=f"error.{exc.code}")
    qr = segno.make(text.number, error="m").svg_inline(scale=4, dark="#1b1f24")
    return pages.render(request, "notice.html", n=text, qr=Markup(qr), pdf_url=pdf_url)


class CloseFollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(min_length=1, max_length=2000)]


async def list_follow_ups(request: web.Request) -> web.Response:
    """Bad-rating follow-ups; ``?open=1`` only open ones, ``?overdue=1`` only overdue ones."""
    await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        rows = (
            await session.execute(
                select(FollowUp, Rating, Ticket)
                .join(Rating, Rating.id == FollowUp.rating_id)
                .join(Ticket, Ticket.id == Rating.ticket_id)
                .order_by(FollowUp.due_date, FollowUp.id)
            )
        ).all()
        people = (await session.execute(select(Staff.id, Staff.username, Staff.display_name))).all()
        names = {username: name for _, username, name in people}
        names_by_id = {staff_id: name for staff_id, _, name in people}
        found = []
        for f, r, t in rows:
            follow_up = ratings.follow_up_json(f, r, t)
            # Ticket numbers repeat every day: the card says which session (day, station, who
            # served, the case it was about).
            follow_up["ticket"] |= {
                "day": t.day,
                "station": t.station.name,
                "staff_name": names_by_id.get(t.staff_id) if t.staff_id else None,
                "case": t.case.number if t.case else None,
            }
            found.append(follow_up)
    for follow_up in found:  # pages name people (孙华), not their logins
        follow_up["closed_by_name"] = names.get(follow_up["closed_by"], follow_up["closed_by"])
    if request.query.get("open") == "1":
        found = [f for f in found if f["closed_at"] is None]
    if request.query.get("overdue") == "1":
        found = [f for f in found if f["overdue"]]
    return web.json_response({"follow_ups": found}, dumps=state.dumps)


async def close_follow_up(request: web.Request) -> web.Response:
    staff = await current_staff(request, SUPERVISOR_ROLES)
    body = await parse_body(request, CloseFollowUp)
    state = AppState.of(request.app)
    async with state.db.write() as session:
        follow_up = await session.get(FollowUp, path_id(request, "id", "follow-up"))
        if follow_up is None:
            raise not_found("There is no such follow-up.")
        if follow_up.closed_at is not None:
            raise ApiError(409, "already_closed", "This follow-up is already closed.")
        follow_up.closed_at, follow_up.closed_by, follow_up.note = (
            utcnow(),
            staff.username,
            body.note,
        )
        rating = await session.get(Rating, follow_up.rating_id)
        ticket = await session.get(Ticket, rating.ticket_id)  # type: ignore[union-attr]
        result = ratings.follow_up_json(follow_up, rating, ticket)  # type: ignore[arg-type]
    result["closed_by_name"] = staff.display_name
    return web.json_response({"follow_up": result}, dumps=state.dumps)


class LookupThrottle(FailureThrottle):
    """Failed kiosk case lookups, counted per case number (from any kiosk: guessing one case's
    digits) and per kiosk (for any number: walking the sequential numbers). A found case clears
    nothing: a resident who knows their own case must not reset a kiosk's count."""

    def __init__(self, per_case: int, per_kiosk: int, window: float) -> None:
        super().__init__(max(per_case, per_kiosk), window)
        self.per_case = per_case
        self.per_kiosk = per_kiosk

    def limits(self, kiosk_id: int, number: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (f"case:{number}", self.per_case), (f"kiosk:{kiosk_id}", self.per_kiosk)

    def retry_after(self, kiosk_id: int, number: str) -> float:
        """Seconds until this kiosk may look this number up again (0: now)."""
        return self.wait(self.limits(kiosk_id, number))

    def failed(self, kiosk_id: int, number: str) -> list[str]:
        """Count a failure; returns which limits (``case``, ``kiosk``) it has just reached."""
        limits = self.limits(kiosk_id, number)
        before = [self.wait([limit]) > 0 for limit in limits]
        self.add(key for key, _ in limits)
        return [
            scope
            for scope, was, limit in zip(("case", "kiosk"), before, limits, strict=True)
            if not was and self.wait([limit]) > 0
        ]


LOOKUP_THROTTLE_KEY = web.AppKey("lookup_throttle", LookupThrottle)


def case_grant(state: AppState, number: str, kiosk_id: int, now: float | None = None) -> str:
    """What a kiosk's ``ticket.take {case, grant}`` shows: this case, at this kiosk, for
    ``case_grant_seconds``."""
    lifetime = state.settings.case_grant_seconds
    return signed.sign(state.secret_key, signed.CASE_GRANT, (number, kiosk_id), lifetime, now)


def _lookup_throttled(wait: float) -> ApiError:
    seconds, minutes = math.ceil(wait), math.ceil(wait / 60)
    return ApiError(
        429,
        "lookup_throttled",
        f"Too many failed lookups; try again in {minutes} min or ask the station's staff.",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
        minutes=minutes,
    )


async def kiosk_lookup(request: web.Request) -> web.Response:
    """A kiosk finds a case waiting for corrections (or whose pre-review a dropped call left
    open) by its number and the last four characters of the applicant's phone or ID number.
    A wrong pair and an unknown number get the same 404; failures are throttled per case and
    per kiosk. Only what the resident needs is returned, with the grant to call for the case."""
    state = AppState.of(request.app)
    header = request.headers.get("Authorization", "")
    async with state.db.read() as session:
        try:
            kiosk = await accounts.kiosk_by_credential(session, header.removeprefix("Kiosk "))
        except accounts.AccountError as exc:
            raise ApiError(401, exc.code, exc.message) from None
    body = await parse_body(request, Lookup)
    number, last4 = _typed(body.number or ""), _typed(body.last4 or "").upper()
    if not number or len(number) > 32 or not LAST4.match(last4):
        raise bad_request(
            "Give the case number (number) and the last four digits of the applicant's phone "
            "or ID number (last4).",
            "lookup_incomplete",
        )
    throttle = request.app[LOOKUP_THROTTLE_KEY]
    wait = throttle.retry_after(kiosk.id, number)
    if wait > 0:
        log_event("kiosk.lookup_throttled", severity=logging.WARNING, kiosk=kiosk.code,
                  case=number)  # fmt: skip
        raise _lookup_throttled(wait)
    async with state.db.read() as session:
        case = await session.scalar(
            select(Case).where(Case.number == number, Case.status.in_(CORRECTION_STATES))
        )
        matches = case is not None and (
            hmac.compare_digest(_typed(case.applicant_phone)[-4:].encode(), last4.encode())
            | hmac.compare_digest(
                _typed(case.applicant_id_number)[-4:].upper().encode(), last4.encode()
            )
        )
        notices = await prereview.notices_of(session, case) if case and matches else []
    if case is None or not matches:
        reached = throttle.failed(kiosk.id, number)
        log_event("kiosk.lookup_failed", kiosk=kiosk.code, case=number)
        for scope in reached:  # one row per burst: the failure that reached a limit
            log_event("kiosk.lookup_limit_reached", severity=logging.WARNING, kiosk=kiosk.code,
                      case=number, scope=scope)  # fmt: skip
            async with state.db.write() as session:
                await audit.append(session, audit.kiosk_actor(kiosk), "case.lookup_throttled",
                                   subject_kind="kiosk" if scope == "kiosk" else "case",
                                   subject=kiosk.code if scope == "kiosk" else number,
                                   case_number=number, scope=scope,
                                   window_seconds=throttle.window,
                                   failures=throttle.per_kiosk if scope == "kiosk"
                                   else throttle.per_case)  # fmt: skip
        raise not_found("No case waiting for corrections has this number and these digits.")
    async with state.db.write() as session:
        await audit.append(session, audit.kiosk_actor(kiosk), "case.looked_up",
                           subject_kind="case", subject=case.number,
                           case_number=case.number)  # fmt: skip
    latest = notices[-1] if notices else None
    result = {
        "number": case.number,
        "item": {"code": case.item.code, "name": case.item.name},
        "status": {"code": case.status, "label": cases.STATES[case.status]},
        "round": case.rounds,
        "notice_url": notice_url(state, case.number, latest.round) if latest else None,
        "grant": case_grant(state, case.number, kiosk.id),
    }
    log_event("kiosk.case_found", kiosk=kiosk.code, case=case.number)
    return web.json_response({"case": result}, dumps=state.dumps)


async def transfer_targets(request: web.Request) -> web.Response:
    """For the console's transfer dialog: each department with how many staff who handle it
    are on duty and available now (not counting the one asking), and how many tickets wait in
    its queue."""
    me = await current_staff(request, STAFF_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        departments = (await session.scalars(select(Department).order_by(Department.code))).all()
        on_duty = (
            await session.scalars(
                select(StaffPresence).where(
                    StaffPresence.state != "offline", StaffPresence.staff_id != me.id
                )
            )
        ).all()
        skills = (
            await session.scalars(
                select(StaffSkill).where(StaffSkill.staff_id.in_([p.staff_id for p in on_duty]))
            )
        ).all()
        item_department = dict(
            (await session.execute(select(ServiceItem.id, ServiceItem.department_id))).all()
        )
        # The department of the caller's call now: transferring there would change nothing.
        current = await session.scalar(
            select(Ticket.department_id)
            .join(StaffPresence, StaffPresence.ticket_id == Ticket.id)
            .where(StaffPresence.staff_id == me.id)
        )
        waiting = dict(
            (
                await session.execute(
                    select(Ticket.department_id, func.count())
                    .where(Ticket.status.in_(queue.QUEUED))
                    .group_by(Ticket.department_id)
                )
            ).all()
        )
    handles = queue.skill_sets([p.staff_id for p in on_duty], skills)
    body = []
    for department in departments:
        staff = [
            p
            for p in on_duty
            if department.id in handles[p.staff_id][0]
            or any(item_department.get(i) == department.id for i in handles[p.staff_id][1])
        ]
        body.append(
            {
                "code": department.code,
                "name": department.name,
                "on_duty": len(staff),
                "available": sum(p.state == "available" for p in staff),
                "waiting": waiting.get(department.id, 0),
                "current": department.id == current,
            }
        )
    return web.json_response({"departments": body}, dumps=state.dumps)


async def _page_staff(request: web.Request) -> Staff | None:
    """The signed-in viewer, or None: not signed in."""
    try:
        return await current_staff(request, STAFF_ROLES)
    except ApiError:
        return None


async def cases_page(request: web.Request) -> web.Response:
    """Case search for staff and supervisors (sign in on the console first)."""
    viewer = await _page_staff(request)
    if viewer is None:
        raise web.HTTPFound("/staff")
    query = {
        k: request.query.get(k, "") for k in ("number", "phone", "item", "status", "from", "to")
    }
    error = None
    try:
        found = await find_cases(request, viewer)
    except ApiError as exc:
        found, error = [], json.loads(exc.text or "{}")["error"]["message"]
    return pages.render(
        request,
        "cases.html",
        found=found,
        query=query,
        states=cases.STATES,
        error=error,
        nav_role=viewer.role,
    )


async def case_page(request: web.Request) -> web.Response:
    viewer = await _page_staff(request)
    if viewer is None:
        raise web.HTTPFound("/staff")
    state = AppState.of(request.app)
    async with state.db.read() as session:
        case = await session.scalar(
            select(Case).where(
                Case.number == request.match_info["number"],
                await case_scope.visible(session, viewer),
            )
        )
        if case is None:
            return pages.render(request, "error.html", status=404, message_key="error.not_found")
        record = await case_record(session, case)
        # People by the names residents and colleagues know (赵刚), not their logins.
        logins = {e["actor"] for e in record["events"]} | {
            n["issued_by"] for n in record["notices"]
        }
        names = dict(
            (
                await session.execute(
                    select(Staff.username, Staff.display_name).where(Staff.username.in_(logins))
                )
            ).all()
        )
    # The moves a person makes here (pre-review happens in the console, beside the video).
    moves = sorted(cases.TRANSITIONS[case.status] - {"correction_needed", "pre_review"})
    if case.status == "correction_needed" and case.accepted_at is None:
        moves = [m for m in moves if m != "accepted"]
    lang = i18n.request_lang(request)
    move_errors = {
        code: i18n.translate(lang, f"error.{code}")
        for code in ("illegal_transition", "reason_required", "not_signed_in", "forbidden")
    } | {"": i18n.translate(lang, "staff.error.generic")}
    return pages.render(
        request,
        "case.html",
        c=record,
        moves=moves,
        move_errors=move_errors,
        names=names,
        nav_role=viewer.role,
    )


def setup(app: web.Application, settings: Settings) -> None:
    app[LOOKUP_THROTTLE_KEY] = LookupThrottle(
        per_case=settings.lookup_failures_per_case,
        per_kiosk=settings.lookup_failures_per_kiosk,
        window=settings.lookup_window_seconds,
    )
    app.router.add_get("/cases", cases_page)
    app.router.add_get("/cases/{number}", case_page)
    app.router.add_post("/api/v1/kiosk/cases/lookup", kiosk_lookup)
    app.router.add_get("/api/v1/console/transfer-targets", transfer_targets)
    app.router.add_get("/api/v1/follow-ups", list_follow_ups)
    app.router.add_post(r"/api/v1/follow-ups/{id:\d+}/close", close_follow_up)
    app.router.add_get(f"{PREFIX}/{{number}}/checklist", get_checklist)
    app.router.add_put(f"{PREFIX}/{{number}}/checklist", put_checklist)
    app.router.add_post(f"{PREFIX}/{{number}}/verdict", post_verdict)
    app.router.add_get(r"/notices/{number}/{round:\d+}.pdf", notice_pdf_file)
    app.router.add_get(r"/notices/{number}/{round:\d+}", notice_page)
    app.router.add_post(PREFIX, create)
    app.router.add_get(PREFIX, search)
    app.router.add_get(f"{PREFIX}/{{number}}", show)
    app.router.add_post(f"{PREFIX}/{{number}}/transitions", move)
