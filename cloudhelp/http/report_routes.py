"""Reports over a date range for supervisors: JSON, CSV of any one table, or an Excel workbook."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import i18n, workers
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import metrics, netquality, timeouts
from cloudhelp.domain.logistics import figures as logistics_figures
from cloudhelp.http.auth import current_staff
from cloudhelp.http.bodies import bounded_date
from cloudhelp.http.errors import ApiError, bad_request
from cloudhelp.http.state import AppState
from cloudhelp.store.models import SUPERVISOR_ROLES, utcnow

MAX_DAYS = 400
DUE_SOON_WORKING_DAYS = 2
TABLES = ("rows", "peak_hours", "hot_items", "due", "logistics")
LOGISTICS_COLUMNS = ("station_name", "station_pickups", "issue_to_pickup_hours",
                     "awaiting_pickup", "overdue_pickups")  # fmt: skip
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def today() -> date:
    return utcnow().astimezone(LOCAL_TZ).date()


def date_range(request: web.Request) -> tuple[date, date]:
    last = bounded_date(request.query.get("to") or today().isoformat(), "to")
    first = bounded_date(
        request.query.get("from") or (last - timedelta(days=6)).isoformat(), "from"
    )
    if first > last or (last - first).days > MAX_DAYS:
        raise ApiError(
            400,
            "bad_range",
            f"'from' must not be after 'to', and the range at most {MAX_DAYS} days.",
            days=MAX_DAYS,
        )
    return first, last


async def build_report(
    state: AppState, first: date, last: date, groups: list[str]
) -> dict[str, Any]:
    """Everything the report page shows for one range: a table per grouping, the total, the
    daily trend, the peak-hour grid, hot items and case progress."""
    await metrics.refresh(state.db, first, last, rules=metrics.Rules.of(state.settings))
    async with state.db.read() as s:
        tables = {}
        for by in groups:
            names = await metrics.group_names(s, by)
            rows = await metrics.table(s, first, last, by)
            if names:
                rows = [{by: r[by], "name": names.get(r[by], r[by]), **r} for r in rows]
            tables[by] = rows
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "by": groups[0],
            "rows": tables[groups[0]],
            "tables": tables,
            "total": await metrics.total(s, first, last),
            "daily": await metrics.table(s, first, last, "day"),
            "peak_hours": await metrics.peak_hours(s, first, last),
            "hot_items": await metrics.hot_items(s, first, last),
            "cases": await metrics.case_progress(s, today(), DUE_SOON_WORKING_DAYS),
            "logistics": await _logistics(s, first, last),
        }


async def _logistics(session: AsyncSession, first: date, last: date) -> dict[str, Any]:
    """Papers over the range: pickups at stations (trips saved) and hours from issue to pickup,
    per station; on the road, awaiting and overdue now."""
    now = utcnow()
    days = (await timeouts.Thresholds.load(session)).value("pickup_overdue", None, None)
    return {
        "total": await logistics_figures.summary(session, first, last, now, days),
        "stations": await logistics_figures.by_station(session, first, last, now, days),
    }


def export_table(body: dict[str, Any], table: str, by: str) -> tuple[list[str], list[dict]]:
    """The columns and rows of one table of a report, as exported."""
    if table == "rows":
        named = ["name"] if by in ("department", "item", "station", "staff") else []
        return [by, *named, *metrics.FIGURES], body["tables"][by]
    if table == "peak_hours":
        hours = [f"{h:02d}" for h in range(24)]
        return ["weekday", *hours], [
            {"weekday": WEEKDAYS[i], **dict(zip(hours, counts, strict=True))}
            for i, counts in enumerate(body["peak_hours"])
        ]
    if table == "hot_items":
        return ["code", "name", "tickets"], body["hot_items"]
    if table == "logistics":
        return list(LOGISTICS_COLUMNS), body["logistics"]["stations"]
    due = [{"state": "overdue", **case} for case in body["cases"]["overdue"]]
    due += [{"state": "due_soon", **case} for case in body["cases"]["due_soon"]]
    return ["state", "number", "item", "promised_due"], due


def _is_rate(field: str) -> bool:
    return field.endswith("rate") or field == "service_level"


def percent(rate: float) -> Decimal:
    """A rate in percent to 0.1, the one rule of the reports page and every export: the page's
    ``(rate * 100).toFixed(1)`` (the float's exact value rounded, a tie upwards)."""
    return Decimal(rate * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)


def localized_table(
    body: dict[str, Any], table: str, by: str, lang: str
) -> tuple[list[str], list[list[Any]], list[str]]:
    """One table as people read it, for every export: headers and state names in ``lang``,
    rates rounded to 0.1 % (kept as fractions), other fractional figures to 0.1."""
    fields, rows = export_table(body, table, by)
    header = [i18n.translate(lang, f"export.column.{f}") if not f.isdigit() else f for f in fields]
    cells = []
    for row in rows:
        line = []
        for field in fields:
            value = row.get(field)
            if field == "state":
                value = i18n.translate(lang, f"export.state.{value}")
            elif isinstance(value, float):
                value = float(percent(value)) / 100 if _is_rate(field) else round(value, 1)
            line.append(value)
        cells.append(line)
    return header, cells, fields


def xlsx_bytes(body: dict[str, Any], groups: list[str], lang: str) -> bytes:
    """Every table of the report in one workbook, one sheet each, headed in the reader's
    language; rates are formatted as percentages. CPU-bound (~0.4 s for 400 days): the route
    runs it in a worker process (core/workers.py). openpyxl is imported here, in the worker, not
    with the server."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    sheets = [("rows", by) for by in groups] + [(t, groups[0]) for t in TABLES if t != "rows"]
    for table, by in sheets:
        header, cells, fields = localized_table(body, table, by, lang)
        sheet = book.create_sheet(
            i18n.translate(lang, f"export.sheet.{by if table == 'rows' else table}")
        )
        sheet.append(header)
        for line in cells:
            sheet.append(line)
        for column, field in enumerate(fields, start=1):
            if _is_rate(field):
                for cell in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                    cell[0].number_format = "0.0%"
        sheet.freeze_panes = "B2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def xlsx_response(
    body: dict[str, Any], groups: list[str], lang: str, name: str
) -> web.Response:
    """The workbook (xlsx_bytes, made in a worker process) as a download."""
    return web.Response(
        body=await workers.in_process(xlsx_bytes, body, groups, lang),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


def csv_response(body: dict[str, Any], table: str, by: str, lang: str, name: str) -> web.Response:
    """One table as CSV, exactly as the workbook's sheet: rates written as percentages."""
    header, cells, fields = localized_table(body, table, by, lang)
    out = io.StringIO()
    out.write("\ufeff")  # so that Excel opens Chinese text as UTF-8
    writer = csv.writer(out)
    writer.writerow(header)
    rates = [i for i, field in enumerate(fields) if _is_rate(field)]
    for line in cells:
        for i in rates:
            if line[i] is not None:
                line[i] = f"{percent(line[i])}%"
        writer.writerow(line)
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def report(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/reports?from=&to=&by=day[,station…][&format=csv&table=…|xlsx]``; the CSV
    is the first grouping's table, or ``table=peak_hours|hot_items|due|logistics``; the XLSX
    holds every table."""
    await current_staff(request, SUPERVISOR_ROLES)
    first, last = date_range(request)
    groups = request.query.get("by", "day").split(",")
    if not all(by in metrics.GROUPS for by in groups) or len(set(groups)) != len(groups):
        raise bad_request(
            f"Parameter 'by' lists groupings among {', '.join(metrics.GROUPS)}, each once."
        )
    by = groups[0]
    table = request.query.get("table", "rows")
    if table not in TABLES:
        raise bad_request(f"Parameter 'table' must be one of {', '.join(TABLES)}.")
    state = AppState.of(request.app)
    body = await build_report(state, first, last, groups)
    output = request.query.get("format", "json")
    lang = i18n.request_lang(request)
    if output == "csv":
        suffix = by if table == "rows" else table
        return csv_response(body, table, by, lang, f"report-{suffix}-{first}-{last}")
    if output == "xlsx":
        return await xlsx_response(body, groups, lang, f"report-{first}-{last}")
    if output != "json":
        raise bad_request("Parameter 'format' is json, csv or xlsx.")
    return web.json_response(body, dumps=state.dumps)


async def call_quality(request: web.Request) -> web.Response:
    """``GET /api/v1/reports/call-quality?from=&to=[&level=]``: totals, per station, and each
    call's media figures per side (median and worst round trip and loss, frame rate, freezes,
    relay), newest first; ``level`` (good, fair or poor) lists only the calls of that level."""
    await current_staff(request, SUPERVISOR_ROLES)
    first, last = date_range(request)
    level = request.query.get("level") or None
    if level is not None and level not in netquality.LEVELS:
        raise bad_request("Parameter 'level' is good, fair or poor.")
    state = AppState.of(request.app)
    async with state.db.read() as s:
        body = await netquality.report(s, first, last, level)
    return web.json_response(body, dumps=state.dumps)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports", report)
    app.router.add_get("/api/v1/reports/call-quality", call_quality)
