"""Helpers for appointment and campaign tests: a 69-boat roster, service hours, a supervisor's
cookie, and the appointment clock set to a given local time."""

from __future__ import annotations

import base64
import csv
import io
from datetime import date, datetime, time
from typing import Any

from openpyxl import Workbook

from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import cases
from tests.callkit import CallServer

HEADING = ["姓名", "手机号", "身份证号", "船号", "许可证号", "意向驿站", "意向时段"]
BOATS = 69


def id_number(n: int) -> str:
    first17 = f"21021119{60 + n % 30:02d}0{1 + n % 9}{10 + n % 18:02d}{n:03d}"
    return first17 + cases.id_check_character(first17)


def roster_rows() -> list[list[str]]:
    """69 boat owners of 大连湾街道: rows 2–6 would rather come in the afternoon, rows 7–11
    at 棠梨 (DLW-TL)."""
    rows = []
    for n in range(1, BOATS + 1):
        row = n + 1  # the heading is row 1
        rows.append([
            f"渔民{n:02d}", f"1384000{n:04d}", id_number(n), f"辽大渔{20000 + n}",
            f"(辽)船登(籍)(2021)DLW-{n:03d}",
            "DLW-TL" if 7 <= row <= 11 else "", "下午" if 2 <= row <= 6 else "",
        ])  # fmt: skip
    return rows


def with_three_bad_rows(rows: list[list[str]]) -> list[list[str]]:
    """Row 10: a wrong ID check character; row 25: a short phone; row 40: row 12's boat."""
    bad = [list(r) for r in rows]
    wrong = "0" if bad[8][2][-1] != "0" else "1"
    bad[8][2] = bad[8][2][:-1] + wrong  # row 10
    bad[23][1] = "1384000"  # row 25
    bad[38][3] = bad[10][3]  # row 40 repeats row 12's boat number
    return bad


def as_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADING)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def as_xlsx(rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADING)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(name: str, data: bytes) -> dict[str, str]:
    return {"filename": name, "content": base64.b64encode(data).decode()}


def at(day: date, hhmm: str) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hours, minutes), LOCAL_TZ)


def set_clock(server: CallServer, instant: datetime) -> None:
    """The instant the appointment rules read (check-in window, no-shows, slots to come)."""
    server.state.callcenter.appointment_clock = lambda: instant


async def supervisor(server: CallServer, username: str = "sunhua") -> dict[str, str]:
    return {"cloudhelp_session": await server.staff_token(username)}


async def weekday_hours(
    server: CallServer, cookie: dict[str, str], station: str, opens: str = "09:00",
    closes: str = "16:00", staff: int = 1, department: str = "NYNC",
) -> dict[str, Any]:  # fmt: skip
    week = [{"weekday": d, "opens": opens, "closes": closes, "staff": staff} for d in range(5)]
    body = {"department": department, "station": station, "week": week}
    async with server.http.put("/api/v1/capacity", json=body, cookies=cookie) as r:
        assert r.status == 200, await r.text()
        return await r.json()
