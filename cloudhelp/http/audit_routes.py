"""The audit trail for supervisors: ``GET /api/v1/audit`` and the ``/audit`` page."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import i18n
from cloudhelp.core.inputs import ROW_ID_MAX
from cloudhelp.domain import appointments, audit
from cloudhelp.http import pages
from cloudhelp.http.auth import current_staff
from cloudhelp.http.bodies import query_date, query_int
from cloudhelp.http.errors import ApiError
from cloudhelp.http.state import AppState
from cloudhelp.store.models import SUPERVISOR_ROLES, Case, Material, ServiceItem, Staff, Station

FILTERS = ("person", "case", "from", "to", "action")
MAX_ROWS = 500


async def _search(request: web.Request) -> list[dict[str, Any]]:
    q = request.query
    first, last = query_date(request, "from"), query_date(request, "to")
    before = query_int(request, "before", 1, ROW_ID_MAX)
    limit = query_int(request, "limit", 1, MAX_ROWS, default=200)
    async with AppState.of(request.app).db.read() as session:
        rows = await audit.search(
            session,
            person=q.get("person", "").strip()[:128] or None,
            case_number=q.get("case", "").strip()[:32] or None,
            first=first,
            last=last,
            action=q.get("action", "").strip()[:48] or None,
            before=before,
            limit=limit,
        )
    return [audit.event_json(r) for r in rows]


async def list_events(request: web.Request) -> web.Response:
    """Audit rows newest first; filters person, case, from, to (local days), action, before
    (a row number, to page back) and limit (≤ 500)."""
    await current_staff(request, SUPERVISOR_ROLES)
    found = await _search(request)
    return web.json_response({"events": found}, dumps=AppState.of(request.app).dumps)


async def _names(session: AsyncSession, events: list[dict[str, Any]]) -> dict[str, str]:
    """Names for the codes the rows' details hold: ``item:<code>`` for items,
    ``material:<case>:<position>`` for the materials marked on a case and ``station:<code>`` for
    stations (a kiosk's, a run's destination: ``station``, ``from``, ``to``)."""
    names: dict[str, str] = {}
    places = {
        str(e["detail"][key])
        for e in events
        for key in ("station", "from", "to")
        if isinstance(e["detail"].get(key), str)
    }
    if places:
        stations = await session.execute(
            select(Station.code, Station.name).where(Station.code.in_(places))
        )
        names |= {f"station:{code}": name for code, name in stations.all()}
    codes = {str(e["detail"]["item"]) for e in events if e["detail"].get("item")}
    if codes:
        items = await session.execute(
            select(ServiceItem.code, ServiceItem.name).where(ServiceItem.code.in_(codes))
        )
        names |= {f"item:{code}": name for code, name in items.all()}
    marked = {e["case"] for e in events if e["action"] == "case.material_marked" and e["case"]}
    if marked:
        materials = await session.execute(
            select(Case.number, Material.position, Material.name)
            .join(Material, Material.item_id == Case.item_id)
            .where(Case.number.in_(marked))
        )
        names |= {f"material:{n}:{p}": name for n, p, name in materials.all()}
    return names


async def _roles(session: AsyncSession, events: list[dict[str, Any]]) -> dict[int, str]:
    """The role of each staff account that acted in the rows (as the account has it now)."""
    ids = {e["actor"]["id"] for e in events if e["actor"]["kind"] == "staff" and e["actor"]["id"]}
    if not ids:
        return {}
    rows = await session.execute(select(Staff.id, Staff.role).where(Staff.id.in_(ids)))
    return {staff_id: role for staff_id, role in rows.all()}


def _mark(lang: str, status: object, reason: object) -> str:
    """A material's mark as read: 需补正（理由）."""
    text = i18n.translate(lang, f"check.{status}")
    return i18n.translate(lang, "audit.mark_reason", mark=text, reason=reason) if reason else text


def _describe(lang: str, event: dict[str, Any], names: dict[str, str]) -> str:
    """One line of what the row's detail says, in the reader's language."""
    detail = event["detail"]
    parts = []

    def part(key: str, value: object) -> None:
        label = i18n.translate(lang, f"audit.field.{key}")
        parts.append(i18n.translate(lang, "audit.label_value", label=label, value=value))

    if event["action"] == "case.material_marked":
        position = detail.get("position")
        part("material", names.get(f"material:{event['case']}:{position}", f"#{position}"))
        part("mark", _mark(lang, detail.get("status"), detail.get("reason")))
        replaced = detail.get("replaced")
        if replaced:
            earlier = _mark(lang, replaced.get("status"), replaced.get("reason"))
            part("replaced", i18n.translate(lang, "audit.replaced_by", mark=earlier,
                                            by=replaced.get("by", "")))  # fmt: skip
        if detail.get("round") is not None:
            part("round", detail["round"])
        return " · ".join(parts)
    keys = ("step", "from", "to", "verdict", "round", "reason", "code", "name", "sha256",
            "station", "ticket_number", "kind", "value", "department", "item", "day", "day_kind",
            "days", "appointment", "starts", "rows", "booked", "note")  # fmt: skip
    for key in keys:
        if key in detail and detail[key] not in ("", None):
            value = detail[key]
            if key == "sha256":
                value = str(value)[:12] + "…"
            elif key == "station":
                value = names.get(f"station:{value}", value)
            elif key in ("from", "to"):
                states = (
                    "logistics.state" if event["action"].startswith("logistics.") else "case.state"
                )
                value = names.get(f"station:{value}") or _known(lang, f"{states}.{value}", value)
            elif key == "verdict":
                value = i18n.translate(lang, f"audit.verdict.{value}")
            elif key == "code":  # a short reason (用户名或密码错误), not the help on screen
                value = _known(lang, f"audit.reason.{value}", value)
            elif key == "step":  # a campaign's: created, roster imported, one rebooked …
                value = _known(lang, f"audit.step.{value}", value)
            elif key == "day_kind":
                value = i18n.translate(lang, f"audit.day_kind.{value}")
            elif key == "kind":
                value = _known(
                    lang, f"warning.{value}", _known(lang, f"logistics.kind.{value}", value)
                )
            elif key == "item":
                value = names.get(f"item:{value}", value)
            elif key == "appointment" and str(value).isdigit():  # as printed: 1234-5678
                value = appointments.show_code(str(value))
            part(key, value)
    if "changes" in detail:
        parts.append(
            "; ".join(f"{k} {v}" for k, v in sorted(detail["changes"].items()))  # numbers only
        )
    return " · ".join(parts)


def _known(lang: str, key: str, value: object) -> object:
    """The catalog's text for ``key``, or ``value`` as it is when the catalog has none (a
    station's code, a state another part names)."""
    text = i18n.translate(lang, key)
    return value if text == key else text


async def audit_page(request: web.Request) -> web.Response:
    """Supervisors read the trail, filtered by person, case and date."""
    try:
        viewer = await current_staff(request, SUPERVISOR_ROLES)
    except ApiError as exc:
        if exc.code == "forbidden":
            return pages.render(request, "error.html", status=403, message_key="error.forbidden")
        raise pages.sign_in_first(request) from None
    query = {k: request.query.get(k, "") for k in FILTERS}
    error = None
    try:
        found = await _search(request)
    except ApiError as exc:
        found, error = [], "error.bad_request" if exc.code == "bad_request" else f"error.{exc.code}"
    lang = i18n.request_lang(request)
    async with AppState.of(request.app).db.read() as session:
        names = await _names(session, found)
        roles = await _roles(session, found)
    for event in found:
        event["summary"] = _describe(lang, event, names)
        # A person is labelled by their role (值班长, not 工作人员 for every account).
        actor = event["actor"]
        actor["role"] = roles.get(actor["id"]) if actor["kind"] == "staff" else None
    return pages.render(
        request,
        "audit.html",
        found=found,
        query=query,
        error=error,
        actions=audit.ACTIONS,
        nav_role=viewer.role,
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/api/v1/audit", list_events)
