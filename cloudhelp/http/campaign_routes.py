"""HTTP routes for campaigns (集中办理), for supervisors: create, import the roster, schedule,
all slips in one PDF, the reminder export, progress, and the one-click rebook of an entry."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cloudhelp.core.clock import iso, local_minute
from cloudhelp.domain import appointments, audit, campaign_progress, campaigns, notifier
from cloudhelp.http.appointment_routes import draw_slips, pdf_response
from cloudhelp.http.auth import current_staff
from cloudhelp.http.bodies import bounded_date, parse_body, path_id
from cloudhelp.http.errors import ApiError, bad_request
from cloudhelp.http.state import AppState
from cloudhelp.store.models import SUPERVISOR_ROLES, Appointment, Campaign, ServiceItem, Station

REFUSAL_STATUS = {"no_such_campaign": 404, "no_such_entry": 404, "campaign_scheduled": 409,
                  "entry_checked_in": 409, "no_free_slot": 409}  # fmt: skip
MAX_ROSTER_BYTES = 2 * 1024 * 1024
Code = Annotated[str, Field(min_length=1, max_length=32)]
Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class NewCampaign(BaseModel):
    """A campaign: its name, items, the street and its stations, the first and last day."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[str, Field(min_length=1, max_length=100)]
    street: Code
    items: Annotated[list[Code], Field(min_length=1, max_length=10)]
    stations: Annotated[list[Code], Field(min_length=1, max_length=20)]
    starts_on: Day
    ends_on: Day


class RosterFile(BaseModel):
    """A roster file: its name (``.csv`` or ``.xlsx``) and its bytes in base64."""

    model_config = ConfigDict(extra="forbid")
    filename: Annotated[str, Field(min_length=5, max_length=200)]
    content: Annotated[str, Field(min_length=1, max_length=MAX_ROSTER_BYTES * 4 // 3 + 4)]


def refused(exc: campaigns.CampaignError | appointments.AppointmentError) -> ApiError:
    return ApiError.of(exc, REFUSAL_STATUS.get(exc.code, 400))


async def campaign_json(session: Any, campaign: Campaign) -> dict[str, Any]:
    items = [await session.get(ServiceItem, i) for i in campaign.item_ids]
    stations = [await session.get(Station, i) for i in campaign.station_ids]
    street = await session.get(Station, campaign.street_id)
    return {
        "id": campaign.id,
        "name": campaign.name,
        "street": {"code": street.code, "name": street.name},
        "items": [
            {"code": i.code, "name": i.name, "department": i.department.code} for i in items if i
        ],
        "stations": [{"code": s.code, "name": s.name} for s in stations if s],
        "starts_on": iso(campaign.starts_on),
        "ends_on": iso(campaign.ends_on),
        "working_days": len(campaigns.working_days(campaign.starts_on, campaign.ends_on)),
        "entries": await campaigns.entry_count(session, campaign.id),
        "imported_at": iso(campaign.imported_at),
        "scheduled_at": iso(campaign.scheduled_at),
        "created_by": campaign.created_by,
    }


async def list_campaigns(request: web.Request) -> web.Response:
    await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    async with state.db.read() as session:
        found = []
        for campaign in await campaigns.listed(session):
            body = await campaign_json(session, campaign)
            states = await campaign_progress.entry_states(session, campaign, now)
            body["counts"] = campaign_progress.counts(states)
            found.append(body)
    return web.json_response({"campaigns": found}, dumps=state.dumps)


async def create_campaign(request: web.Request) -> web.Response:
    staff = await current_staff(request, SUPERVISOR_ROLES)
    body = await parse_body(request, NewCampaign)
    starts_on, ends_on = (
        bounded_date(body.starts_on, "starts_on"),
        bounded_date(body.ends_on, "ends_on"),
    )
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            campaign = await campaigns.create(
                session, name=body.name, street_code=body.street, item_codes=body.items,
                station_codes=body.stations, starts_on=starts_on, ends_on=ends_on,
                actor=staff.username,
            )  # fmt: skip
            await audit.append(session, audit.staff_actor(staff), "campaign.changed",
                               subject_kind="campaign", subject=str(campaign.id),
                               step="created", name=campaign.name)  # fmt: skip
            result = await campaign_json(session, campaign)
    except campaigns.CampaignError as exc:
        raise refused(exc) from None
    return web.json_response({"campaign": result}, status=201, dumps=state.dumps)


async def show_campaign(request: web.Request) -> web.Response:
    """A campaign with its progress: counts, burn-down, who has not come yet."""
    await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.read() as session:
            campaign = await campaigns.get(session, path_id(request, "id", "campaign"))
            result = await campaign_json(session, campaign)
            result["progress"] = await campaign_progress.progress(session, campaign, now)
    except campaigns.CampaignError as exc:
        raise refused(exc) from None
    return web.json_response({"campaign": result}, dumps=state.dumps)


async def import_roster(request: web.Request) -> web.Response:
    """Replace the roster; with any problem, 422 naming each row and field, nothing kept."""
    staff = await current_staff(request, SUPERVISOR_ROLES)
    body = await parse_body(request, RosterFile)
    try:
        data = base64.b64decode(body.content, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("content must be the file's bytes in base64.") from None
    if len(data) > MAX_ROSTER_BYTES:
        raise ApiError(413, "too_large", "A roster file has at most 2 MiB.")
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.write() as session:
            campaign = await campaigns.get(session, path_id(request, "id", "campaign"))
            imported, problems = await campaigns.import_roster(
                session, campaign, data, body.filename, now
            )
            if not problems:
                await audit.append(session, audit.staff_actor(staff), "campaign.changed",
                                   subject_kind="campaign", subject=str(campaign.id),
                                   step="roster_imported", rows=imported)  # fmt: skip
    except campaigns.CampaignError as exc:
        raise refused(exc) from None
    if problems:
        raise ApiError(
            422,
            "roster_invalid",
            f"The roster has {len(problems)} problem(s); nothing was imported.",
            problems=[p.as_json() for p in problems],
        )
    return web.json_response({"imported": imported}, dumps=state.dumps)


async def schedule(request: web.Request) -> web.Response:
    staff = await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.write() as session:
            campaign = await campaigns.get(session, path_id(request, "id", "campaign"))
            result = await campaigns.schedule(session, campaign, staff.username, now)
            await audit.append(session, audit.staff_actor(staff), "campaign.changed",
                               subject_kind="campaign", subject=str(campaign.id),
                               step="scheduled", booked=result["booked"],
                               unplaced=len(result["unplaced"]))  # fmt: skip
    except (campaigns.CampaignError, appointments.AppointmentError) as exc:
        raise refused(exc) from None
    return web.json_response(result, dumps=state.dumps)


async def _booked(request: web.Request) -> tuple[Campaign, list[Appointment]]:
    await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.read() as session:
            campaign = await campaigns.get(session, path_id(request, "id", "campaign"))
            states = await campaign_progress.entry_states(session, campaign, now)
            found = [s.current for s in states if s.current is not None]
            for appointment in found:  # loaded before the session closes
                _ = [m.name for m in appointment.item.materials]
    except campaigns.CampaignError as exc:
        raise refused(exc) from None
    return campaign, sorted(found, key=lambda a: (a.starts_at, a.station_id, a.id))


async def slips(request: web.Request) -> web.Response:
    """Every slip of the campaign still to come in one PDF, by date, time and station (a
    no-show's past slip is left out, as the reminders leave it out)."""
    campaign, found = await _booked(request)
    now = AppState.of(request.app).callcenter.appointment_clock()
    booked = [a for a in found if a.status == "booked" and a.starts_at > now]  # still to come
    if not booked:
        raise ApiError(409, "nothing_booked", "No appointment of this campaign is booked yet.")
    return pdf_response(await draw_slips(request, booked), f"campaign-{campaign.id}-slips.pdf")


async def reminders(request: web.Request) -> web.Response:
    """The reminders of booked appointments still to come, as CSV (the notifier seam)."""
    staff = await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    csv_notifier = notifier.CsvNotifier()
    try:
        async with state.db.write() as session:
            campaign = await campaigns.get(session, path_id(request, "id", "campaign"))
            states = await campaign_progress.entry_states(session, campaign, now)
            booked = sorted((s.current for s in states if s.current is not None),
                            key=lambda a: (a.starts_at, a.id))  # fmt: skip
            data = notifier.remind(csv_notifier, booked, now)
            await audit.append(session, audit.staff_actor(staff), "campaign.changed",
                               subject_kind="campaign", subject=str(campaign.id),
                               step="reminders_exported")  # fmt: skip
    except campaigns.CampaignError as exc:
        raise refused(exc) from None
    name = f"campaign-{campaign.id}-reminders.csv"
    return web.Response(
        body=data,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def rebook_entry(request: web.Request) -> web.Response:
    """One click: the entry's appointment moves to the first free slot from now on."""
    staff = await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    now = state.callcenter.appointment_clock()
    try:
        async with state.db.write() as session:
            campaign = await campaigns.get(session, path_id(request, "id", "campaign"))
            moved = await campaigns.rebook_entry(
                session, campaign, path_id(request, "entry", "entry"), staff.username, now
            )
            await audit.append(session, audit.staff_actor(staff), "campaign.changed",
                               subject_kind="campaign", subject=str(campaign.id),
                               step="entry_rebooked", appointment=moved.code,
                               starts=local_minute(moved.starts_at))  # fmt: skip
            result = appointments.as_json(moved, now)
    except (campaigns.CampaignError, appointments.AppointmentError) as exc:
        raise refused(exc) from None
    return web.json_response({"appointment": result}, dumps=state.dumps)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/campaigns", list_campaigns)
    app.router.add_post("/api/v1/campaigns", create_campaign)
    app.router.add_get(r"/api/v1/campaigns/{id:\d+}", show_campaign)
    app.router.add_post(r"/api/v1/campaigns/{id:\d+}/roster", import_roster)
    app.router.add_post(r"/api/v1/campaigns/{id:\d+}/schedule", schedule)
    app.router.add_get(r"/api/v1/campaigns/{id:\d+}/slips.pdf", slips)
    app.router.add_get(r"/api/v1/campaigns/{id:\d+}/reminders.csv", reminders)
    app.router.add_post(r"/api/v1/campaigns/{id:\d+}/entries/{entry:\d+}/rebook", rebook_entry)
