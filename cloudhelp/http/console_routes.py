"""HTTP routes the staff console reads beside the call: where a call can be transferred."""

from __future__ import annotations

from aiohttp import web

from cloudhelp.domain import transfer
from cloudhelp.http.auth import STAFF_ROLES, current_staff
from cloudhelp.http.state import AppState


async def transfer_targets(request: web.Request) -> web.Response:
    """For the console's transfer dialog: each department with how many staff who handle it
    are on duty and available now (not counting the one asking), and how many tickets wait in
    its queue."""
    me = await current_staff(request, STAFF_ROLES)
    state = AppState.of(request.app)
    async with state.db.read() as session:
        body = await transfer.targets(session, me.id)
    return web.json_response({"departments": body}, dumps=state.dumps)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/console/transfer-targets", transfer_targets)
