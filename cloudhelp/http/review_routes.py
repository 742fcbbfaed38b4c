"""HTTP routes for pre-review (材料预审): the checklist of a round, the verdict, and the
one-time correction notice as a printable page and a PDF (for staff, or whoever holds its
signed link)."""

from __future__ import annotations

from typing import Annotated

import segno
from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from cloudhelp.core import signed
from cloudhelp.core.inputs import RowId
from cloudhelp.core.logs import log_event
from cloudhelp.domain import cases, casework, notice_pdf, notice_text, prereview
from cloudhelp.http import pages
from cloudhelp.http.auth import STAFF_ROLES, current_staff
from cloudhelp.http.bodies import parse_body, path_id
from cloudhelp.http.case_routes import PREFIX, case_in_scope, refused
from cloudhelp.http.errors import ApiError, not_found
from cloudhelp.http.state import AppState
from cloudhelp.store.models import Staff


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


async def get_checklist(request: web.Request) -> web.Response:
    """The current round's checklist and, in a correction round, the previous round's marks
    for reference."""
    staff = await current_staff(request, STAFF_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        case = await case_in_scope(session, request.match_info["number"], staff)
        rows = await prereview.checklist(session, case)
        previous = (
            {"round": case.rounds - 1,
             "materials": await prereview.checklist(session, case, case.rounds - 1)}
            if case.rounds > 1
            else None
        )  # fmt: skip
    return web.json_response(
        {"round": case.rounds, "materials": rows, "previous": previous}, dumps=state.dumps
    )


async def put_checklist(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    body = await parse_body(request, Checklist)
    state = AppState.of(request.app)
    marks = [m.model_dump() for m in body.materials]
    try:
        async with state.db.write() as session:
            case = await case_in_scope(session, request.match_info["number"], staff)
            rows = await casework.mark_checklist(session, staff, case, marks)
    except cases.CaseError as exc:
        raise refused(exc) from None
    return web.json_response({"round": case.rounds, "materials": rows}, dumps=state.dumps)


async def post_verdict(request: web.Request) -> web.Response:
    staff = await current_staff(request, STAFF_ROLES)
    body = await parse_body(request, Verdict)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            case = await case_in_scope(session, request.match_info["number"], staff)
            notice = await casework.give_verdict(session, staff, case, body.verdict, body.reason)
            result = cases.case_json(case, await cases.events_of(session, case))
    except cases.CaseError as exc:
        raise refused(exc) from None
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


async def _notice_reader(request: web.Request, number: str, round_: int) -> Staff | None:
    """Who may read the notice: None for whoever holds its signed, unexpired link (no scope:
    the link opens its one notice), else the signed-in staff member; 410 for an expired link
    without a sign-in, 401 otherwise."""
    state = AppState.of(request.app)
    try:
        signed.check(state.secret_key, request.query.get("t", ""), signed.NOTICE, (number, round_))
        return None
    except signed.TokenRefused as refused_link:
        try:  # staff see the notice without the link's signature
            return await current_staff(request, STAFF_ROLES)
        except ApiError:
            if refused_link.reason != "expired":
                raise
    raise ApiError(
        410,
        "notice_link_expired",
        "This notice link has expired; ask the hall (or look the case up again at a kiosk) "
        "for a new link.",
    )


async def _notice(request: web.Request) -> tuple[notice_text.NoticeText, str]:
    """The words of the notice named in the path, and the link of its PDF."""
    number = request.match_info["number"]
    round_ = path_id(request, "round", "notice")
    staff = await _notice_reader(request, number, round_)
    async with AppState.of(request.app).db.read() as session:
        case = await case_in_scope(session, number, staff)
        text = await prereview.notice_words(session, case, round_)
    if text is None:
        raise not_found("There is no such notice.")
    return text, f"/notices/{number}/{round_}.pdf?t={request.query.get('t', '')}"


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


def setup(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/{{number}}/checklist", get_checklist)
    app.router.add_put(f"{PREFIX}/{{number}}/checklist", put_checklist)
    app.router.add_post(f"{PREFIX}/{{number}}/verdict", post_verdict)
    app.router.add_get(r"/notices/{number}/{round:\d+}.pdf", notice_pdf_file)
    app.router.add_get(r"/notices/{number}/{round:\d+}", notice_page)
