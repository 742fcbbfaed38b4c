"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /api/v1/openapi.json``.

Each route under ``/api/v1`` is one :class:`Operation` in :data:`OPERATIONS` (who may call it,
its query parameters, its body, what it answers). Request bodies are the pydantic models the
routes validate with, turned into JSON Schema by pydantic, so the document changes when they do;
``tests/test_openapi.py`` fails when a route is added without an entry here (or an entry names
no route). Every error has one shape, :class:`ErrorBody` (docs/api.md, "Errors").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from cloudhelp import __version__
from cloudhelp.core import i18n
from cloudhelp.core.inputs import EARLIEST_DATE, LATEST_DATE, ROW_ID_MAX
from cloudhelp.domain import audit, cases, metrics, prereview, timeouts
from cloudhelp.domain.accounts import STAFF_COOKIE
from cloudhelp.domain.logistics import states as logistics_states
from cloudhelp.http.account_routes import EnrolBody, LoginBody, NewKioskBody
from cloudhelp.http.appointment_routes import (
    AppointmentKey,
    CapacityBody,
    HoursException,
    KioskCheckIn,
    NewAppointment,
    Rebook,
)
from cloudhelp.http.campaign_routes import NewCampaign, RosterFile
from cloudhelp.http.case_routes import Move, NewCase
from cloudhelp.http.follow_up_routes import CloseFollowUp
from cloudhelp.http.kiosk_routes import Lookup
from cloudhelp.http.logistics_routes import (
    REFUSAL_STATUS,
    ExceptionBody,
    NewItem,
    NewRun,
    Pickup,
    RunReceipt,
    Scan,
)
from cloudhelp.http.report_routes import MAX_DAYS, TABLES
from cloudhelp.http.review_routes import Checklist, Verdict
from cloudhelp.http.state import AppState
from cloudhelp.http.warning_routes import ThresholdBody
from cloudhelp.store.filestore import KEPT_TYPES

PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``code`` (pages show the catalog text ``error.<code>``), an
    English ``message`` for logs and programs, and sometimes numbers for the text's
    placeholders (``minutes``, ``retry_after``)."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["not_found"])
    message: str = Field(min_length=1, examples=["There is no case '210211-20261127-0001'."])


class ErrorBody(BaseModel):
    """Every error answer under /api/ (4xx and 5xx)."""

    error: ErrorDetail


# Request bodies, then the error body: each becomes a schema under components/schemas.
BODY_MODELS: tuple[type[BaseModel], ...] = (
    LoginBody, EnrolBody, NewKioskBody, NewCase, Move, Checklist, Verdict, Lookup, CloseFollowUp,
    ThresholdBody, NewItem, NewRun, Scan, RunReceipt, Pickup, ExceptionBody,
    ThresholdBody, NewAppointment, AppointmentKey, Rebook, KioskCheckIn, CapacityBody,
    HoursException, NewCampaign, RosterFile,
)  # fmt: skip

# Values the routes accept for a body field that its model types only as a string (the route
# answers others with a 400 naming the rule): added to the generated schemas as ``enum``.
FIELD_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("Move", "to"): tuple(cases.STATES),
    ("Verdict", "verdict"): prereview.VERDICTS,
    ("Mark", "status"): tuple(prereview.CHECK_STATES),
    ("ThresholdBody", "kind"): tuple(timeouts.KINDS),
    ("NewItem", "kind"): tuple(logistics_states.KINDS),
    ("ExceptionBody", "kind"): tuple(logistics_states.EXCEPTIONS),
}


@dataclass(frozen=True)
class Param:
    """A query parameter (or, with ``where="header"``, a request header)."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False
    where: str = "query"


@dataclass(frozen=True)
class Operation:
    """One method on one path, as the router has it (``{name}`` without its pattern)."""

    method: str
    path: str
    summary: str
    tag: str
    auth: tuple[str, ...] = ()  # security schemes any one of which is accepted; () public
    roles: tuple[str, ...] = ()  # with "session": the roles allowed (() any signed-in person)
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    status: int = 200
    result: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    also: dict[int, str] = field(default_factory=dict)  # other answers with the same body
    media: tuple[str, ...] = ("application/json",)  # of the success answer
    errors: dict[int, str] = field(default_factory=dict)  # status → the codes it may carry


def _obj(*required: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema: the keys named are always there; others may be."""
    return {"type": "object", "required": list(required), "properties": properties}


STRING = {"type": "string"}
ARRAY = {"type": "array", "items": {"type": "object"}}
OBJECT = {"type": "object"}
INT = {"type": "integer"}
ROW_ID = {"type": "integer", "minimum": 1, "maximum": ROW_ID_MAX}
DATE = {"type": "string", "format": "date"}
DATE_NOTE = f"a local date, {EARLIEST_DATE} to {LATEST_DATE}"
STAFF_ROLES = ("staff", "supervisor", "admin")
SUPERVISORS = ("supervisor", "admin")
ACCOUNT_ROLES = ("staff", "supervisor", "admin", "attendant")


def _refusals(*statuses: int) -> dict[int, str]:
    """The logistics refusals answered with each status (any other refusal: 400)."""
    found: dict[int, list[str]] = {status: [] for status in statuses}
    for code, status in sorted(REFUSAL_STATUS.items()):
        if status in found:
            found[status].append(f"`{code}`")
    if 400 in found:
        found[400] = ["`bad_code`", "`bad_request`", *found[400]]
    return {status: ", ".join(codes) for status, codes in found.items() if codes}


CASE = _obj("case", case=_obj("number", "status", number={"type": "string"}, status=OBJECT))
PATH_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "code": ({"type": "string", "minLength": 1, "maxLength": 32}, "an item or kiosk code"),
    "number": ({"type": "string", "minLength": 1, "maxLength": 32}, "a case number (办件编号)"),
    "id": (ROW_ID, "a row id"),
    "ticket": (ROW_ID, "a ticket id"),
    "file": (ROW_ID, "a file id"),
    "booking": ({"type": "string", "pattern": "^[0-9-]{1,16}$"}, "an appointment's booking code"),
    "entry": (ROW_ID, "a roster entry id"),
}
FILE = _obj(
    "id", "name", "sha256", "size", "content_type", "sender", "url",
    id=INT, name={"type": "string"}, sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"},
    size=INT, content_type={"type": "string", "enum": list(KEPT_TYPES)},
    sender={"type": "string", "enum": ["kiosk", "staff"]}, url={"type": "string"},
)  # fmt: skip
ITEM_FILTERS = (
    Param("q", STRING, "part of the name, the code or the pinyin initials"),
    Param("department", STRING, "department code, e.g. NYNC"),
    Param("category", STRING, "category code"),
    Param("tier", {"type": "string", "enum": ["community", "street", "district"]}),
    Param("cloud", {"type": "string", "enum": ["true", "false"]}, "handled by cloud video or not"),
    Param("limit", {"type": "integer", "minimum": 0, "maximum": 200}, "default 50"),
    Param("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000}),
)  # fmt: skip
CASE_FILTERS = (
    Param("number", STRING, "part of the case number"),
    Param("phone", STRING, "the applicant's phone, exactly"),
    Param("status", {"type": "string", "enum": list(cases.STATES)}),
    Param("item", STRING, "item code"),
    Param("ticket", ROW_ID, "the case of this session (ticket id)"),
    Param("from", DATE, f"opened on or after; {DATE_NOTE}"),
    Param("to", DATE, f"opened on or before; {DATE_NOTE}"),
)
RANGE = (
    Param("from", DATE, f"first day; {DATE_NOTE}"),
    Param("to", DATE, f"last day (default today); {DATE_NOTE}; at most {MAX_DAYS} days in all"),
)
GROUPING = "(" + "|".join(metrics.GROUPS) + ")"
REPORT_PARAMS = (
    *RANGE,
    Param("by", {"type": "string", "pattern": f"^{GROUPING}(,{GROUPING})*$"},
          "groupings, comma-separated, each once (default day)"),
    Param("format", {"type": "string", "enum": ["json", "csv", "xlsx"]}),
    Param("table", {"type": "string", "enum": list(TABLES)}, "the table a CSV holds"),
    Param("lang", {"type": "string", "enum": list(i18n.LANGS)}, "language of export headings"),
)  # fmt: skip
AUDIT_PARAMS = (
    Param("person", STRING, "a login or kiosk code (the first 128 characters)"),
    Param("case", STRING, "a case number (the first 32 characters)"),
    Param("action", STRING, "one of " + ", ".join(audit.ACTIONS)),
    Param("from", DATE, DATE_NOTE),
    Param("to", DATE, DATE_NOTE),
    Param("before", ROW_ID, "rows before this row number (to page back)"),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "default 200"),
)
UPLOAD_HEADERS = (
    Param("X-File-SHA256", {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
          "the file's SHA-256 in hex", required=True, where="header"),
    Param("X-File-Name", STRING, "the file name, percent-encoded (kept cleaned and at most "
          "100 characters long)", where="header"),
    Param("X-File-Sender", {"type": "string", "enum": ["kiosk", "staff"]},
          "who sent the file in the call (default: the uploader)", where="header"),
)  # fmt: skip

OPERATIONS: tuple[Operation, ...] = (
    # --- about the API itself
    Operation("GET", "/api/v1/health", "The server answers, and how late its event loop ran",
              "meta",
              params=(Param("window", {"type": "integer", "minimum": 1, "maximum": 60},
                            "seconds of event-loop lag to summarise (default 10)"),),
              result=_obj("status", "event_loop", "gc_full_passes", status={"const": "ok"},
                          event_loop=OBJECT, gc_full_passes=OBJECT)),
    Operation("GET", PATH, "This document (OpenAPI 3.1)", "meta",
              result=_obj("openapi", "paths", openapi={"type": "string"}, paths=OBJECT)),
    # --- catalog and station network (public)
    Operation("GET", "/api/v1/items", "List and search service items", "catalog",
              params=ITEM_FILTERS,
              result=_obj("items", "total", "limit", "offset", items=ARRAY, total=INT, limit=INT,
                          offset=INT)),
    Operation("GET", "/api/v1/items/hot", "The most asked-for cloud items", "catalog",
              params=(Param("limit", {"type": "integer", "minimum": 0, "maximum": 50}),),
              result=_obj("items", items=ARRAY)),
    Operation("GET", "/api/v1/items/{code}", "One item with its materials", "catalog",
              result=_obj("code", "name", "materials", code={"type": "string"},
                          name={"type": "string"}, materials=ARRAY)),
    Operation("GET", "/api/v1/departments", "Departments with their item counts", "catalog",
              result=_obj("departments", departments=ARRAY)),
    Operation("GET", "/api/v1/categories", "Categories with their item counts", "catalog",
              result=_obj("categories", categories=ARRAY)),
    Operation("GET", "/api/v1/stations", "Stations and their kiosks", "network",
              result=_obj("stations", stations=ARRAY)),
    Operation("GET", "/api/v1/ratings/options", "Rating levels and bad-rating reasons", "catalog",
              result=_obj("levels", "bad_levels", "reasons", levels=ARRAY,
                          bad_levels={"type": "array"}, reasons={"type": "array"})),
    # --- signing in, kiosks
    Operation("POST", "/api/v1/auth/login", "Staff sign-in (sets the session cookie)", "accounts",
              body=LoginBody, result=_obj("staff", staff=OBJECT),
              errors={401: "`auth_failed` (wrong name or password)",
                      429: "`too_many_attempts` (with `minutes` and `retry_after`)"}),
    Operation("POST", "/api/v1/auth/logout", "Sign out (ends the session)", "accounts",
              result=_obj("signed_out", signed_out={"type": "boolean"})),
    Operation("GET", "/api/v1/auth/me", "Who is signed in", "accounts", auth=("session",),
              result=_obj("staff", staff=OBJECT)),
    Operation("POST", "/api/v1/kiosk/enrol", "A kiosk redeems its one-time code", "kiosks",
              body=EnrolBody, result=_obj("kiosk", "credential", kiosk=OBJECT,
                                          credential={"type": "string"})),
    Operation("POST", "/api/v1/admin/kiosks", "Issue a kiosk's one-time enrolment code", "kiosks",
              auth=("session",), roles=("admin",), body=NewKioskBody, status=201,
              result=_obj("kiosk", "enrol_code", kiosk={"type": "string"},
                          enrol_code={"type": "string"})),
    Operation("POST", "/api/v1/admin/kiosks/{code}/revoke", "Revoke a kiosk", "kiosks",
              auth=("session",), roles=("admin",),
              result=_obj("kiosk", "revoked", kiosk={"type": "string"},
                          revoked={"type": "boolean"})),
    # --- cases
    Operation("POST", "/api/v1/cases", "Open a case", "cases", auth=("session",),
              roles=STAFF_ROLES, body=NewCase, status=201, result=CASE,
              errors={403: "`forbidden`: neither the item's department nor the caller's session"}),
    Operation("GET", "/api/v1/cases", "Search cases in the caller's scope", "cases",
              auth=("session",), roles=STAFF_ROLES, params=CASE_FILTERS,
              result=_obj("cases", cases=ARRAY)),
    Operation("GET", "/api/v1/cases/{number}", "One case (masked; `reveal=1` audited)", "cases",
              auth=("session",), roles=STAFF_ROLES,
              params=(Param("reveal", {"type": "string", "enum": ["0", "1"]},
                            "1: the full ID and phone number (needs `reason`; audited)"),
                      Param("reason", {"type": "string", "minLength": 2, "maxLength": 200},
                            "why the numbers are revealed")),
              result=CASE, errors={400: "`reveal_reason_required`, `bad_request`"}),
    Operation("POST", "/api/v1/cases/{number}/transitions", "Change a case's state", "cases",
              auth=("session",), roles=STAFF_ROLES, body=Move, result=CASE,
              errors={409: "`illegal_transition`"}),
    Operation("GET", "/api/v1/cases/{number}/checklist", "The round's material checklist",
              "cases", auth=("session",), roles=STAFF_ROLES,
              result=_obj("round", "materials", round=INT, materials=ARRAY)),
    Operation("PUT", "/api/v1/cases/{number}/checklist", "Mark materials (audited)", "cases",
              auth=("session",), roles=STAFF_ROLES, body=Checklist,
              result=_obj("round", "materials", round=INT, materials=ARRAY),
              errors={400: "`bad_file` (a file not sent in the case's sessions), `bad_request`"}),
    Operation("POST", "/api/v1/cases/{number}/verdict", "Close the pre-review round", "cases",
              auth=("session",), roles=STAFF_ROLES, body=Verdict, result=CASE,
              errors={400: "`checklist_incomplete`, `materials_need_correction`, "
                           "`nothing_to_correct`, `bad_verdict`, `bad_request`"}),
    Operation("POST", "/api/v1/kiosk/cases/lookup", "A kiosk finds a case awaiting corrections",
              "cases", auth=("kiosk",), body=Lookup,
              result=_obj("case", case=OBJECT)),
    Operation("GET", "/api/v1/console/transfer-targets", "Departments to transfer a call to",
              "calls", auth=("session",), roles=STAFF_ROLES,
              result=_obj("departments", departments=ARRAY)),
    # --- follow-ups of bad ratings
    Operation("GET", "/api/v1/follow-ups", "Bad-rating follow-ups", "follow-ups",
              auth=("session",), roles=SUPERVISORS,
              params=(Param("open", {"type": "string", "enum": ["0", "1"]}, "1: open ones only"),
                      Param("overdue", {"type": "string", "enum": ["0", "1"]},
                            "1: overdue ones only"),
                      Param("closed", {"type": "integer", "minimum": 0, "maximum": 1000},
                            "how many closed ones, the most recently closed (default 50); "
                            "every open one is listed")),
              result=_obj("follow_ups", "closed_total", follow_ups=ARRAY,
                          closed_total=INT)),
    Operation("POST", "/api/v1/follow-ups/{id}/close", "Close a follow-up with a note",
              "follow-ups", auth=("session",), roles=SUPERVISORS, body=CloseFollowUp,
              result=_obj("follow_up", follow_up=OBJECT), errors={409: "`already_closed`"}),
    # --- time-out warnings
    Operation("GET", "/api/v1/warnings", "Active warnings, or every one raised in a range",
              "warnings", auth=("session",),
              params=(Param("state", {"type": "string", "enum": ["active", "all"]}), *RANGE),
              result=_obj("warnings", warnings=ARRAY)),
    Operation("POST", "/api/v1/warnings/{id}/ack", "Acknowledge a warning", "warnings",
              auth=("session",), errors={403: "`not_yours`", 404: "`no_such_warning`"}),
    Operation("GET", "/api/v1/warning-thresholds", "Thresholds of every warning kind",
              "warnings", auth=("session",), roles=SUPERVISORS,
              result=_obj("kinds", kinds=ARRAY)),
    Operation("PUT", "/api/v1/warning-thresholds", "Set or remove one threshold (audited)",
              "warnings", auth=("session",), roles=SUPERVISORS, body=ThresholdBody,
              result=_obj("kinds", kinds=ARRAY),
              errors={400: "`unknown_kind`, `unknown_department`, `unknown_item`, `bad_scope`"}),
    # --- reports and the audit trail
    Operation("GET", "/api/v1/reports", "Figures over a date range (JSON, CSV or XLSX)",
              "reports", auth=("session",), roles=SUPERVISORS, params=REPORT_PARAMS,
              result=_obj("from", "to", "by", "rows", "tables", "total"),
              media=("application/json", "text/csv",
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
    Operation("GET", "/api/v1/reports/call-quality",
              "Each call's media figures per side over a date range (newest first), and per "
              "station", "reports",
              auth=("session",), roles=SUPERVISORS,
              params=(*RANGE, Param("level", {"type": "string", "enum": ["good", "fair", "poor"]},
                                    "list only the calls of this level")),
              result=_obj("from", "to", "total", "stations", "calls", stations=ARRAY,
                          calls=ARRAY)),
    Operation("GET", "/api/v1/audit", "The audit trail, newest first", "audit",
              auth=("session",), roles=SUPERVISORS, params=AUDIT_PARAMS,
              result=_obj("events", events=ARRAY)),
    # --- document logistics (docs/logistics.md): everyone acts at their own station
    Operation("GET", "/api/v1/logistics/overview", "What the caller's station holds and expects",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES,
              result=_obj("station", "arriving", "packing", "waiting", "returning", "ready",
                          arriving=ARRAY, packing=ARRAY, waiting=ARRAY, ready=ARRAY)),
    Operation("GET", "/api/v1/logistics/figures", "Today's logistics figures (board)",
              "logistics", auth=("session",), roles=SUPERVISORS,
              result=_obj("trips_saved", "in_transit", "in_transit_by_hop", "overdue_pickups")),
    Operation("POST", "/api/v1/logistics/items", "Register a tracked item for a case (audited)",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES, body=NewItem, status=201,
              result=_obj("item", "pickup_code", item=OBJECT, pickup_code=STRING),
              errors=_refusals(404, 409)),
    Operation("GET", "/api/v1/logistics/items", "Items of a case, or at/for the caller's station",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES,
              params=(Param("case", STRING, "a case number"),),
              result=_obj("items", items=ARRAY)),
    Operation("GET", "/api/v1/logistics/items/{code}", "One item with its history", "logistics",
              auth=("session",), roles=ACCOUNT_ROLES, result=_obj("item", item=OBJECT),
              errors=_refusals(400, 403, 404)),
    Operation("GET", "/api/v1/logistics/items/{code}/label.pdf",
              "The item's label (100 × 60 mm PDF, QR and code)", "logistics",
              auth=("session",), roles=ACCOUNT_ROLES, media=("application/pdf",),
              errors=_refusals(400, 403, 404)),
    Operation("GET", "/api/v1/logistics/items/{code}/signature.png",
              "The applicant's signature kept at pickup", "logistics", auth=("session",),
              roles=ACCOUNT_ROLES, media=("image/png",), errors=_refusals(400, 403, 404)),
    Operation("POST", "/api/v1/logistics/items/{code}/ready", "Shelve a received item for pickup",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES,
              result=_obj("item", item=OBJECT), errors=_refusals(400, 403, 404, 409)),
    Operation("POST", "/api/v1/logistics/items/{code}/pickup",
              "Hand an item over: pickup code, ID digits, signature (audited)", "logistics",
              auth=("session",), roles=ACCOUNT_ROLES, body=Pickup,
              result=_obj("item", item=OBJECT),
              errors={**_refusals(400, 403, 404, 409), 429: "`pickup_throttled` (`minutes`)"}),
    Operation("POST", "/api/v1/logistics/items/{code}/exception",
              "Report lost, damaged, wrong station or not collected", "logistics",
              auth=("session",), roles=ACCOUNT_ROLES, body=ExceptionBody,
              result=_obj("item", item=OBJECT), errors=_refusals(400, 403, 404, 409)),
    Operation("POST", "/api/v1/logistics/runs", "Open a run to the next tier up or down",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES, body=NewRun, status=201,
              result=_obj("run", run=OBJECT), errors=_refusals(400, 404)),
    Operation("GET", "/api/v1/logistics/runs/{code}", "A run with its manifest", "logistics",
              auth=("session",), roles=ACCOUNT_ROLES, result=_obj("run", run=OBJECT),
              errors=_refusals(400, 403, 404)),
    Operation("POST", "/api/v1/logistics/runs/{code}/items", "Put a scanned item on a run",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES, body=Scan,
              result=_obj("run", run=OBJECT), errors=_refusals(400, 403, 404, 409)),
    Operation("POST", "/api/v1/logistics/runs/{code}/dispatch", "Dispatch a run (audited)",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES,
              result=_obj("run", run=OBJECT), errors=_refusals(400, 403, 404, 409)),
    Operation("POST", "/api/v1/logistics/runs/{code}/receive",
              "Receive a run against its manifest (missing and extra flagged)", "logistics",
              auth=("session",), roles=ACCOUNT_ROLES, body=RunReceipt,
              result=_obj("run", "received", "missing", "extra", run=OBJECT),
              errors=_refusals(400, 403, 404, 409)),
    Operation("GET", "/api/v1/logistics/runs/{code}/manifest.pdf", "A run's manifest (A4 PDF)",
              "logistics", auth=("session",), roles=ACCOUNT_ROLES, media=("application/pdf",),
              errors=_refusals(400, 403, 404)),
    Operation("POST", "/api/v1/kiosk/items/lookup",
              "我的材料/证照: a case's items by number and phone's last four digits", "logistics",
              auth=("kiosk",), body=Lookup, result=_obj("case", case=OBJECT),
              errors={404: "`not_found` (unknown number or wrong digits alike)",
                      429: "`lookup_throttled`"}),
    # --- appointments (docs/appointments.md)
    Operation("GET", "/api/v1/appointments/slots", "An item's slots on a day at a station",
              "appointments",
              params=(Param("item", STRING, "item code", required=True),
                      Param("station", STRING, "station code", required=True),
                      Param("date", DATE, DATE_NOTE, required=True)),
              result=_obj("date", "working_day", "slot_minutes", "slots", "passed", date=DATE,
                          working_day={"type": "boolean"}, slot_minutes=INT, slots=ARRAY,
                          passed=INT),
              errors={400: "`unknown_item`, `unknown_station`, `bad_request`"}),
    Operation("POST", "/api/v1/appointments", "Book a slot (staff: on a resident's behalf, "
              "audited)", "appointments", body=NewAppointment, status=201,
              result=_obj("appointment", "slip_url", appointment=OBJECT, slip_url=STRING),
              errors={400: "`calendar_not_installed`, `slot_on_holiday`, `slot_in_past`, "
                           "`no_such_slot`, `bad_phone`, `bad_id_number`, `bad_applicant`, "
                           "`not_cloud`, `unknown_item`, `unknown_station`",
                      409: "`slot_full`, `already_booked` (a resident's own booking: this "
                           "phone holds one of the item to come)",
                      429: "`booking_throttled` (a resident's own booking: "
                           "`bookings_per_address` within `booking_window_seconds`; with "
                           "`minutes` and `retry_after`)"}),
    Operation("POST", "/api/v1/appointments/find", "Find an appointment by code and the "
              "phone's last four digits", "appointments", body=AppointmentKey,
              result=_obj("appointment", appointment=OBJECT),
              errors={404: "`no_such_appointment`",
                      429: "`lookup_throttled` (with `minutes` and `retry_after`)"}),
    Operation("POST", "/api/v1/appointments/cancel", "Cancel an appointment (code and last "
              "four digits)", "appointments", body=AppointmentKey,
              result=_obj("appointment", appointment=OBJECT),
              errors={404: "`no_such_appointment`", 409: "`appointment_not_cancellable`",
                      429: "`lookup_throttled`"}),
    Operation("POST", "/api/v1/appointments/rebook", "Move an appointment to another slot "
              "(a new code)", "appointments", body=Rebook,
              result=_obj("appointment", "slip_url", appointment=OBJECT, slip_url=STRING),
              errors={404: "`no_such_appointment`",
                      409: "`slot_full`, `appointment_not_rebookable`",
                      429: "`lookup_throttled`"}),
    Operation("GET", "/api/v1/appointments/{booking}/slip.pdf", "An appointment's slip (with "
              "last4, or signed-in staff)", "appointments",
              params=(Param("last4", {"type": "string", "pattern": "^[0-9]{4}$"},
                            "the phone's last four digits (a resident)"),),
              media=("application/pdf",),
              errors={401: "`not_signed_in` (no last4 and no staff session)",
                      404: "`no_such_appointment`", 429: "`lookup_throttled`"}),
    Operation("GET", "/api/v1/appointments/reminders.csv", "Reminders of a day's booked "
              "appointments, as CSV (audited)", "appointments", auth=("session",),
              roles=SUPERVISORS, params=(Param("date", DATE, DATE_NOTE, required=True),),
              media=("text/csv",)),
    Operation("POST", "/api/v1/kiosk/appointments/check", "May this code be checked in at "
              "this kiosk now (nothing written)", "appointments", auth=("kiosk",),
              body=KioskCheckIn, result=_obj("appointment", appointment=OBJECT),
              errors={400: "`appointment_wrong_station`, `appointment_used`, "
                           "`appointment_cancelled`, `appointment_too_early`, "
                           "`appointment_too_late`",
                      404: "`no_such_appointment`", 429: "`lookup_throttled`"}),
    Operation("GET", "/api/v1/capacity", "A department's service hours at a station",
              "appointments", auth=("session",), roles=SUPERVISORS,
              params=(Param("department", STRING, "department code", required=True),
                      Param("station", STRING, "station code", required=True)),
              result=_obj("week", "exceptions", week=ARRAY, exceptions=ARRAY)),
    Operation("PUT", "/api/v1/capacity", "Set a department's weekday hours at a station "
              "(audited)", "appointments", auth=("session",), roles=SUPERVISORS,
              body=CapacityBody, result=_obj("week", "exceptions", week=ARRAY, exceptions=ARRAY),
              errors={400: "`bad_hours`, `bad_break`, `unknown_department`, `unknown_station`"}),
    Operation("PUT", "/api/v1/capacity/exceptions", "One date's hours (0 staff: closed; "
              "audited)", "appointments", auth=("session",), roles=SUPERVISORS,
              body=HoursException,
              result=_obj("week", "exceptions", week=ARRAY, exceptions=ARRAY),
              errors={400: "`bad_hours`, `bad_break`, `unknown_department`, `unknown_station`"}),
    # --- campaigns (集中办理)
    Operation("GET", "/api/v1/campaigns", "Campaigns with their counts", "campaigns",
              auth=("session",), roles=SUPERVISORS, result=_obj("campaigns", campaigns=ARRAY)),
    Operation("POST", "/api/v1/campaigns", "Create a campaign (audited)", "campaigns",
              auth=("session",), roles=SUPERVISORS, body=NewCampaign, status=201,
              result=_obj("campaign", campaign=OBJECT),
              errors={400: "`bad_range`, `unknown_street`, `unknown_item`, `unknown_station`"}),
    Operation("GET", "/api/v1/campaigns/{id}", "A campaign with its progress (counts, "
              "burn-down, who has not come)", "campaigns", auth=("session",), roles=SUPERVISORS,
              result=_obj("campaign", campaign=OBJECT), errors={404: "`no_such_campaign`"}),
    Operation("POST", "/api/v1/campaigns/{id}/roster", "Import the roster (CSV or Excel, "
              "base64); all or nothing", "campaigns", auth=("session",), roles=SUPERVISORS,
              body=RosterFile, result=_obj("imported", imported=INT),
              errors={400: "`bad_roster_file`", 404: "`no_such_campaign`",
                      409: "`campaign_scheduled`", 413: "`too_large`",
                      422: "`roster_invalid` (with `problems`: row, field, code, message)"}),
    Operation("POST", "/api/v1/campaigns/{id}/schedule", "Schedule the roster into slots "
              "(audited)", "campaigns", auth=("session",), roles=SUPERVISORS,
              result=_obj("booked", "unplaced", "days", booked=INT, unplaced=ARRAY,
                          days={"type": "array"}),
              errors={400: "`roster_empty`", 404: "`no_such_campaign`"}),
    Operation("GET", "/api/v1/campaigns/{id}/slips.pdf", "Every booked slip in one PDF",
              "campaigns", auth=("session",), roles=SUPERVISORS, media=("application/pdf",),
              errors={404: "`no_such_campaign`", 409: "`nothing_booked`"}),
    Operation("GET", "/api/v1/campaigns/{id}/reminders.csv", "Reminders of appointments to "
              "come, as CSV (audited)", "campaigns", auth=("session",), roles=SUPERVISORS,
              media=("text/csv",), errors={404: "`no_such_campaign`"}),
    Operation("POST", "/api/v1/campaigns/{id}/entries/{entry}/rebook", "One click: the "
              "entry's next free slot (audited)", "campaigns", auth=("session",),
              roles=SUPERVISORS, result=_obj("appointment", appointment=OBJECT),
              errors={404: "`no_such_campaign`, `no_such_entry`",
                      409: "`entry_checked_in`, `no_free_slot`"}),
    # --- files sent in a call
    Operation("POST", "/api/v1/tickets/{ticket}/files", "Keep a file sent in the call", "files",
              auth=("kiosk", "session"), params=UPLOAD_HEADERS, status=201,
              result=_obj("file", file=FILE),
              also={200: "Already kept (the same file under the same name), or a kiosk's copy "
                         "of a file staff sent and kept"},
              errors={403: "`forbidden` (not this kiosk's or staff member's ticket)",
                      413: "`too_large` (over 25 MiB)",
                      415: "`unsupported_type`, `type_mismatch`",
                      422: "`checksum_mismatch`"}),
    Operation("GET", "/api/v1/tickets/{ticket}/files", "The files kept for a ticket", "files",
              auth=("kiosk", "session"), result=_obj("files", files={"type": "array",
                                                                    "items": FILE})),
    Operation("GET", "/api/v1/tickets/{ticket}/files/{file}",
              "One file (staff: audited): a photo or PDF inline, any other file as an attachment",
              "files", auth=("kiosk", "session"), media=KEPT_TYPES,
              errors={410: "`file_purged` (after its retention period)"}),
)  # fmt: skip

SECURITY_SCHEMES = {
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": STAFF_COOKIE,
        "description": "A staff member's session, set by POST /api/v1/auth/login.",
    },
    "kiosk": {
        "type": "http",
        "scheme": "Kiosk",
        "description": "`Authorization: Kiosk <credential>`: the device credential a kiosk got "
        "from POST /api/v1/kiosk/enrol.",
    },
}


def _schemas() -> dict[str, Any]:
    """components/schemas: the body models and the error body, as pydantic describes them."""
    _, definitions = models_json_schema(
        [(model, "validation") for model in (*BODY_MODELS, ErrorBody)], ref_template=REF
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    for (model, name), values in FIELD_VALUES.items():
        schemas[model]["properties"][name]["enum"] = list(values)
    return schemas


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
    }


def _responses(op: Operation) -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    content = {m: {"schema": op.result if m == "application/json" else binary} for m in op.media}
    success = {"description": "Done.", "content": content}
    errors: dict[int, str] = {}
    if op.body is not None or op.params:
        errors[400] = "`bad_request`: the body or a parameter is invalid (the message names it)"
    if op.auth:
        errors[401] = "`not_signed_in`, `auth_failed`: no valid session or kiosk credential"
    if op.roles and op.roles != STAFF_ROLES:
        errors[403] = f"`forbidden`: only {', '.join(op.roles)} may"
    if "{" in op.path:
        errors[404] = "`not_found`: nothing by that name or number (or not in the caller's scope)"
    errors |= op.errors
    responses: dict[str, Any] = {str(op.status): success}
    for status, description in op.also.items():
        responses[str(status)] = {**success, "description": description}
    for status, codes in sorted(errors.items()):
        responses[str(status)] = _error(codes)
    responses["4XX"] = {"$ref": "#/components/responses/Refused"}
    responses["500"] = {"$ref": "#/components/responses/ServerFault"}
    return responses


def _parameters(op: Operation) -> list[dict[str, Any]]:
    found = []
    for name in re.findall(r"{(\w+)}", op.path):
        schema, description = PATH_PARAMS[name]
        found.append(
            {"name": name, "in": "path", "required": True, "schema": schema,
             "description": description}
        )  # fmt: skip
    for param in op.params:
        entry = {"name": param.name, "in": param.where, "schema": param.schema}
        if param.description:
            entry["description"] = param.description
        if param.required:
            entry["required"] = True
        found.append(entry)
    return found


def _operation(op: Operation) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "operationId": re.sub(r"\W+", "_", f"{op.method.lower()}{op.path[len('/api/v1') :]}")
        .strip("_")
        .lower(),
        "summary": op.summary,
        "tags": [op.tag],
        "responses": _responses(op),
    }
    if op.roles:
        entry["description"] = f"Roles: {', '.join(op.roles)}."
        entry["x-roles"] = list(op.roles)
    if parameters := _parameters(op):
        entry["parameters"] = parameters
    if op.body is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}
            },
        }
    elif op.method == "POST" and op.path.endswith("/files"):
        entry["requestBody"] = {
            "required": True,
            "content": {media: {"schema": {"type": "string", "format": "binary"}}
                        for media in KEPT_TYPES},
        }  # fmt: skip
    entry["security"] = [{scheme: []} for scheme in op.auth]
    return entry


@functools.cache
def document() -> dict[str, Any]:
    """The whole document (built once)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CloudHelp (云帮办) HTTP API",
            "version": __version__,
            "description": "Errors, roles and flows: docs/api.md, docs/cases.md, "
            "docs/protocol.md and docs/security.md in the CloudHelp repository.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "responses": {
                "Refused": _error(
                    "Any other refusal, e.g. `bad_origin` (403: a foreign page's Origin), "
                    "`too_large` (413), `method_not_allowed` (405)"
                ),
                "ServerFault": _error("`internal_error`: a server fault (logged)"),
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


async def serve(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``."""
    return web.json_response(document(), dumps=AppState.of(request.app).dumps)
