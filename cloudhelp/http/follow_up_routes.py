"""HTTP routes for follow-ups of bad ratings (回访整改), for supervisors: list and close."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cloudhelp.domain import follow_ups
from cloudhelp.http.auth import current_staff
from cloudhelp.http.bodies import parse_body, path_id
from cloudhelp.http.errors import ApiError
from cloudhelp.http.state import AppState
from cloudhelp.store.models import SUPERVISOR_ROLES

# The HTTP status of a refused follow-up operation, by its code.
REFUSAL_STATUS = {"not_found": 404, "already_closed": 409}


class CloseFollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(min_length=1, max_length=2000)]


async def list_follow_ups(request: web.Request) -> web.Response:
    """Bad-rating follow-ups; ``?open=1`` only open ones, ``?overdue=1`` only overdue ones."""
    await current_staff(request, SUPERVISOR_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        found = await follow_ups.listed(
            session,
            open_only=request.query.get("open") == "1",
            overdue_only=request.query.get("overdue") == "1",
        )
    return web.json_response({"follow_ups": found}, dumps=state.dumps)


async def close_follow_up(request: web.Request) -> web.Response:
    staff = await current_staff(request, SUPERVISOR_ROLES)
    body = await parse_body(request, CloseFollowUp)
    state = AppState.of(request.app)
    try:
        async with state.db.write() as session:
            result = await follow_ups.close(
                session, path_id(request, "id", "follow-up"), staff, body.note
            )
    except follow_ups.FollowUpError as exc:
        raise ApiError.of(exc, REFUSAL_STATUS.get(exc.code, 400)) from None
    return web.json_response({"follow_up": result}, dumps=state.dumps)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/follow-ups", list_follow_ups)
    app.router.add_post(r"/api/v1/follow-ups/{id:\d+}/close", close_follow_up)
