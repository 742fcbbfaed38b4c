"""Time-out warnings over HTTP: the active ones, their history, acknowledgement, thresholds."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from cloudhelp.core.clock import day_bounds
from cloudhelp.domain import audit, timeouts
from cloudhelp.http.auth import current_staff
from cloudhelp.http.bodies import Body, parse_body, path_id
from cloudhelp.http.errors import ApiError
from cloudhelp.http.report_routes import date_range
from cloudhelp.http.state import AppState
from cloudhelp.store.models import SUPERVISOR_ROLES, utcnow
from cloudhelp.views import warning_labels


class ThresholdBody(Body):
    kind: Annotated[str, Field(min_length=1, max_length=32)]
    # strict: a number, never a boolean or a string read as one (false → 0 set a threshold)
    value: Annotated[float, Field(ge=0, le=10_000_000, strict=True)] | None
    department: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    item: Annotated[str, Field(min_length=1, max_length=32)] | None = None


async def list_warnings(request: web.Request) -> web.Response:
    """``GET /api/v1/warnings[?state=all&from=&to=]``: active ones, or all raised in a range.
    Staff see the warnings that concern them; supervisors see every one."""
    staff = await current_staff(request)
    active = request.query.get("state", "active") == "active"
    raised = None if active else day_bounds(*date_range(request))
    state = AppState.of(request.app)
    async with state.db.read() as s:
        rows = await timeouts.listed(s, staff, raised)
    return web.json_response(
        {"warnings": [warning_labels.warning_json(w) for w in rows]}, dumps=state.dumps
    )


async def acknowledge(request: web.Request) -> web.Response:
    """``POST /api/v1/warnings/{id}/ack``: record who saw it and when."""
    staff = await current_staff(request)
    warning_id = path_id(request, "id", "warning")
    state = AppState.of(request.app)
    async with state.db.write() as s:
        try:
            warning = await timeouts.acknowledge(s, warning_id, staff, utcnow())
        except timeouts.WarningError as exc:
            status = 404 if exc.code == "no_such_warning" else 403
            raise ApiError.of(exc, status) from None
        body = warning_labels.warning_json(warning)
    await state.callcenter.warnings_changed({warning.staff_id} if warning.staff_id else set())
    return web.json_response(body, dumps=state.dumps)


async def thresholds(request: web.Request) -> web.Response:
    """``GET /api/v1/warning-thresholds``: every kind with its default and its overrides."""
    await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as s:
        overrides = await timeouts.overrides(s)
    return web.json_response(
        {
            "kinds": [
                {
                    "kind": kind,
                    "label": warning_labels.kind_label(kind),
                    "unit": spec.unit,
                    "default": spec.default,
                    "overrides": overrides[kind],
                }
                for kind, spec in timeouts.KINDS.items()
            ]
        },
        dumps=state.dumps,
    )


async def set_threshold(request: web.Request) -> web.Response:
    """``PUT /api/v1/warning-thresholds``: set (or with ``value`` null, remove) one threshold."""
    staff = await current_staff(request, SUPERVISOR_ROLES)
    body = await parse_body(request, ThresholdBody)
    state = AppState.of(request.app)
    async with state.db.write() as s:
        try:
            await timeouts.set_threshold(s, body.kind, body.value, body.department, body.item)
            await audit.append(s, audit.staff_actor(staff), "setting.warning_threshold",
                               subject_kind="threshold", subject=body.kind, kind=body.kind,
                               value=body.value, department=body.department,
                               item=body.item)  # fmt: skip
        except timeouts.WarningError as exc:
            raise ApiError.of(exc) from None
    return await thresholds(request)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/warnings", list_warnings)
    app.router.add_post("/api/v1/warnings/{id}/ack", acknowledge)
    app.router.add_get("/api/v1/warning-thresholds", thresholds)
    app.router.add_put("/api/v1/warning-thresholds", set_threshold)
