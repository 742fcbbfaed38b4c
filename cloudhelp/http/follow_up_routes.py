"""HTTP routes for follow-ups of bad ratings (回访整改), for supervisors: list and close."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from cloudhelp.domain import follow_ups
from cloudhelp.http.auth import current_staff
from cloudhelp.http.bodies import parse_body, path_id, query_int
from cloudhelp.http.errors import ApiError
from cloudhelp.http.state import AppState
from cloudhelp.store.models import SUPERVISOR_ROLES

# Closed follow-ups listed at most, and by default (the newest first); the open ones all.
CLOSED_MAX = 1000
CLOSED_DEFAULT = 50
# The HTTP status of a refused follow-up operation, by its code.
REFUSAL_STATUS = {"not_found": 404, "already_closed": 409}


class CloseFollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(min_length=1, max_length=2000)]


async def list_follow_ups(request: web.Request) -> web.Response:
    """Bad-rating follow-ups; ``?open=1`` only open ones, ``?overdue=1`` only overdue ones;
    otherwise every open one and the ``?closed=N`` most recently closed (default
    CLOSED_DEFAULT), with how many were closed in all (``closed_total``)."""
    await current_staff(request, SUPERVISOR_ROLES)
    closed = query_int(request, "closed", 0, CLOSED_MAX, default=CLOSED_DEFAULT)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        found = await follow_ups.listed(
            session,
            open_only=request.query.get("open") == "1",
            overdue_only=request.query.get("overdue") == "1",
            closed_limit=closed,
        )
        closed_total = await follow_ups.closed_count(session)
    body = {"follow_ups": found, "closed_total": closed_total}
    return web.json_response(body, dumps=state.dumps)


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
