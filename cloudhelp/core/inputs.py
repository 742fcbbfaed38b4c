"""Bounds on numbers and dates that come from outside (messages, bodies, URLs, queries).

A number or date the database or ``datetime`` cannot hold must be refused where it is read,
with a clear 400 or protocol error, not met later as an overflow (HTTP 500, ``internal_error``).
Row ids are PostgreSQL ``integer`` columns; dates stay in a range where adding or taking away
a few weeks of days never leaves what ``datetime.date`` can represent.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from aiohttp import web
from pydantic import Field

from cloudhelp.core.errors import bad_request, not_found

ROW_ID_MAX = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)


def path_id(request: web.Request, name: str, what: str) -> int:
    """The row id in URL segment ``name``: 404 if it is no number, 400 if out of range."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit():
        raise not_found(f"There is no such {what}.")
    if len(raw) > len(str(ROW_ID_MAX)) or not 1 <= int(raw) <= ROW_ID_MAX:
        raise bad_request(f"'{name}' in the address must be a number from 1 to {ROW_ID_MAX}.")
    return int(raw)


def bounded_date(raw: str, name: str) -> date:
    """``raw`` (like 2026-11-27) as a date between EARLIEST_DATE and LATEST_DATE, else 400."""
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"Parameter '{name}' must be a date like 2026-11-27.") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise bad_request(
            f"Parameter '{name}' must be a date from {EARLIEST_DATE} to {LATEST_DATE}."
        )
    return value
