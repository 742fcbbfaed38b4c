"""Bounds on numbers and dates that come from outside (messages, bodies, URLs, queries).

A number or date the database or ``datetime`` cannot hold must be refused where it is read,
with a clear 400 or protocol error, not met later as an overflow (HTTP 500, ``internal_error``).
Row ids are PostgreSQL ``integer`` columns; dates stay in a range where adding or taking away
a few weeks of days never leaves what ``datetime.date`` can represent. HTTP reads them with
:mod:`cloudhelp.http.bodies`, the protocol with the message models (``RowId``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

ROW_ID_MAX = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)
