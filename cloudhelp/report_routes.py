"""Reports over a date range for supervisors: JSON, or CSV of the same table."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from aiohttp import web

from cloudhelp import metrics
from cloudhelp.account_routes import current_staff
from cloudhelp.errors import bad_request
from cloudhelp.models import utcnow
from cloudhelp.queue import LOCAL_TZ
from cloudhelp.state import AppState

MAX_DAYS = 400


def _range(request: web.Request) -> tuple[date, date]:
    today = utcnow().astimezone(LOCAL_TZ).date()
    try:
        last = date.fromisoformat(request.query.get("to") or today.isoformat())
        first = date.fromisoformat(
            request.query.get("from") or (last - timedelta(days=6)).isoformat()
        )
    except ValueError:
        raise bad_request("Parameters 'from' and 'to' are dates like 2026-11-27.") from None
    if first > last or (last - first).days > MAX_DAYS:
        raise bad_request(f"'from' must not be after 'to', and the range at most {MAX_DAYS} days.")
    return first, last


async def report(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/reports?from=&to=&by=day|department|item|station|staff[&format=csv]``."""
    await current_staff(request, ("supervisor", "admin"))
    first, last = _range(request)
    by = request.query.get("by", "day")
    if by not in metrics.GROUPS:
        raise bad_request(f"Parameter 'by' must be one of {', '.join(metrics.GROUPS)}.")
    state = AppState.of(request.app)
    async with state.db.read() as session:
        facts = await metrics.ticket_facts(session, first, last)
        names = await metrics.item_names(session)
    rows = metrics.report(facts, by)
    if request.query.get("format") == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[by, *metrics.aggregate([]).keys()])
        writer.writeheader()
        writer.writerows(rows)
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="report-{by}-{first}-{last}.csv"'
            },
        )
    body = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "by": by,
        "rows": rows,
        "total": metrics.aggregate(facts),
        "peak_hours": metrics.peak_hours(facts),
        "hot_items": [
            {"code": code, "name": names.get(code, code), "tickets": n}
            for code, n in metrics.hot_items(facts)
        ],
    }
    return web.json_response(body, dumps=state.dumps)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports", report)
