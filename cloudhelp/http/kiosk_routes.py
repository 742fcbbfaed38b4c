"""HTTP routes for kiosks (besides enrolment): a resident finds their case again by its number
and the last four characters of the applicant's phone or ID number."""

from __future__ import annotations

import logging
import math
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cloudhelp.core import signed
from cloudhelp.core.clock import utcnow
from cloudhelp.core.config import Settings
from cloudhelp.core.logs import log_event
from cloudhelp.core.throttle import Throttles
from cloudhelp.domain import audit, case_lookup, cases
from cloudhelp.domain.case_lookup import LookupThrottle
from cloudhelp.domain.logistics import lookup as logistics_lookup
from cloudhelp.http.auth import current_kiosk
from cloudhelp.http.bodies import parse_body
from cloudhelp.http.errors import ApiError, bad_request, not_found
from cloudhelp.http.review_routes import notice_url
from cloudhelp.http.state import AppState
from cloudhelp.store.models import Kiosk

LOOKUP_THROTTLE_KEY = web.AppKey("lookup_throttle", LookupThrottle)


class Lookup(BaseModel):
    """A kiosk's case lookup: the case number and the last four characters of the applicant's
    phone or ID number. Other fields are ignored, so an older page's ``phone``/``id_last4``
    gets the answer that says what to give (``lookup_incomplete``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    number: Annotated[str, Field(max_length=32)] | None = None
    last4: Annotated[str, Field(max_length=8)] | None = None


def case_grant(state: AppState, number: str, kiosk_id: int, now: float | None = None) -> str:
    """What a kiosk's ``ticket.take {case, grant}`` shows: this case, at this kiosk, for
    ``case_grant_seconds``."""
    lifetime = state.settings.case_grant_seconds
    return signed.sign(state.secret_key, signed.CASE_GRANT, (number, kiosk_id), lifetime, now)


def lookup_throttled(wait: float) -> ApiError:
    seconds, minutes = math.ceil(wait), math.ceil(wait / 60)
    return ApiError(
        429,
        "lookup_throttled",
        f"Too many failed lookups; try again in {minutes} min or ask the station's staff.",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
        minutes=minutes,
    )


async def _failed(request: web.Request, kiosk: Kiosk, number: str) -> ApiError:
    """Count a failed lookup (logged; each limit it reaches logged and audited once); the
    answer, the same whatever failed."""
    throttle = request.app[LOOKUP_THROTTLE_KEY]
    reached = await throttle.failed(kiosk.id, number)
    log_event("kiosk.lookup_failed", kiosk=kiosk.code, case=number)
    for scope in reached:  # one row per burst: the failure that reached a limit
        log_event("kiosk.lookup_limit_reached", severity=logging.WARNING, kiosk=kiosk.code,
                  case=number, scope=scope)  # fmt: skip
        async with AppState.of(request.app).db.write() as session:
            await case_lookup.audit_limit_reached(session, kiosk, number, scope, throttle)
    return not_found("No case waiting for corrections has this number and these digits.")


async def kiosk_lookup(request: web.Request) -> web.Response:
    """A kiosk finds a case waiting for corrections (or whose pre-review a dropped call left
    open); only what the resident needs is returned, with the grant to call for the case."""
    kiosk = await current_kiosk(request)
    body = await parse_body(request, Lookup)
    number = case_lookup.case_number(body.number or "")
    last4 = case_lookup.typed(body.last4 or "").upper()
    if not case_lookup.well_formed(number, last4):
        raise bad_request(
            "Give the case number (number) and the last four digits of the applicant's phone "
            "or ID number (last4).",
            "lookup_incomplete",
        )
    wait = await request.app[LOOKUP_THROTTLE_KEY].retry_after(kiosk.id, number)
    if wait > 0:
        log_event("kiosk.lookup_throttled", severity=logging.WARNING, kiosk=kiosk.code,
                  case=number)  # fmt: skip
        raise lookup_throttled(wait)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        found = await case_lookup.find(session, number, last4)
    if found is None:
        raise await _failed(request, kiosk, number)
    case, latest = found.case, found.notices[-1] if found.notices else None
    async with state.db.write() as session:
        await audit.append(session, audit.kiosk_actor(kiosk), "case.looked_up",
                           subject_kind="case", subject=case.number,
                           case_number=case.number)  # fmt: skip
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


async def kiosk_items_lookup(request: web.Request) -> web.Response:
    """我的材料/证照: a case's papers by its number and the last four digits of the applicant's
    phone: where each is, where to collect it (and the pickup code once it is ready), and when
    and where the certificate is expected. Throttled with the case lookup."""
    kiosk = await current_kiosk(request)
    body = await parse_body(request, Lookup)
    number = case_lookup.case_number(body.number or "")
    last4 = case_lookup.typed(body.last4 or "")
    if not case_lookup.well_formed(number, last4) or not last4.isdigit():
        raise bad_request(
            "Give the case number (number) and the last four digits of the applicant's phone "
            "(last4).",
            "lookup_incomplete",
        )
    wait = await request.app[LOOKUP_THROTTLE_KEY].retry_after(kiosk.id, number)
    if wait > 0:
        raise lookup_throttled(wait)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        case = await logistics_lookup.find(session, number, last4)
        result = await logistics_lookup.resident_view(session, case, utcnow()) if case else None
    if result is None:
        raise await _failed(request, kiosk, number)
    async with state.db.write() as session:
        await audit.append(session, audit.kiosk_actor(kiosk), "case.items_looked_up",
                           subject_kind="case", subject=number, case_number=number)  # fmt: skip
    return web.json_response({"case": result}, dumps=state.dumps)


def setup(app: web.Application, settings: Settings, throttles: Throttles) -> None:
    app[LOOKUP_THROTTLE_KEY] = LookupThrottle(
        per_case=settings.lookup_failures_per_case,
        per_kiosk=settings.lookup_failures_per_kiosk,
        window=settings.lookup_window_seconds,
        throttles=throttles,
    )
    app.router.add_post("/api/v1/kiosk/cases/lookup", kiosk_lookup)
    app.router.add_post("/api/v1/kiosk/items/lookup", kiosk_items_lookup)
