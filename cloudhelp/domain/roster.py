"""A campaign's roster from a CSV or Excel file: read, then validated whole (docs/appointments.md,
"Roster").

Every problem is reported at once with its row (as the spreadsheet numbers it: the heading is
row 1) and field; a roster with any problem is refused whole, so nothing is half-imported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from cloudhelp.core.errors import CodedError
from cloudhelp.domain import cases

MAX_ROWS = 5000
# Heading (Chinese or English) → field.
HEADINGS = {
    "姓名": "name", "船主": "name", "name": "name", "owner": "name",
    "手机号": "phone", "手机": "phone", "电话": "phone", "phone": "phone",
    "身份证号": "id_number", "身份证号码": "id_number", "id_number": "id_number",
    "船号": "boat_number", "船名号": "boat_number", "boat_number": "boat_number",
    "许可证号": "licence_number", "licence_number": "licence_number",
    "事项": "item", "事项编码": "item", "item": "item",
    "意向驿站": "station", "station": "station",
    "意向时段": "half", "half": "half",
}  # fmt: skip
REQUIRED = ("name", "phone", "id_number")
HALVES = {"上午": "am", "下午": "pm", "am": "am", "pm": "pm", "": ""}
UNIQUE = ("id_number", "boat_number", "licence_number")


class RosterError(CodedError):
    """A roster that cannot be read at all (not CSV or Excel, no heading, too long)."""


@dataclass(frozen=True)
class Problem:
    """What is wrong in one field of one row; ``same_as``: the earlier row a duplicate repeats."""

    row: int
    field: str
    code: str
    message: str
    same_as: int | None = None

    def as_json(self) -> dict[str, Any]:
        found = {"row": self.row, "field": self.field, "code": self.code, "message": self.message}
        return found | ({"same_as": self.same_as} if self.same_as is not None else {})


@dataclass
class RosterRow:
    row: int
    values: dict[str, str] = field(default_factory=dict)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read(data: bytes, filename: str) -> list[RosterRow]:
    """The rows of a ``.csv`` (UTF-8, with or without BOM, or GB18030) or ``.xlsx`` file."""
    name = filename.lower()
    table: list[list[object]]
    if name.endswith(".xlsx"):
        table = _xlsx_rows(data)
    elif name.endswith(".csv"):
        table = _csv_rows(data)
    else:
        raise RosterError("bad_roster_file", "A roster is a .csv or .xlsx file.")
    if not table:
        raise RosterError("bad_roster_file", "The roster is empty.")
    heading = [HEADINGS.get(_text(h).lower(), HEADINGS.get(_text(h), "")) for h in table[0]]
    missing = [f for f in REQUIRED if f not in heading]
    if missing:
        raise RosterError(
            "bad_roster_file",
            "The heading row must name the columns 姓名, 手机号 and 身份证号 "
            f"(missing: {', '.join(missing)}).",
        )
    rows = []
    for number, raw in enumerate(table[1:], start=2):
        values = {f: _text(v) for f, v in zip(heading, raw, strict=False) if f}
        if any(values.values()):
            rows.append(RosterRow(number, values))
    if len(rows) > MAX_ROWS:
        raise RosterError("bad_roster_file", f"A roster has at most {MAX_ROWS} rows.")
    return rows


def _csv_rows(data: bytes) -> list[list[object]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterError("bad_roster_file", "The CSV file is neither UTF-8 nor GB18030.")
    rows: list[list[object]] = [list(row) for row in csv.reader(io.StringIO(text))]
    return rows


def _xlsx_rows(data: bytes) -> list[list[object]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is no workbook
        raise RosterError("bad_roster_file", "The file is not an Excel (.xlsx) workbook.") from None
    sheet = book.worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    book.close()
    return rows


def validate(
    rows: list[RosterRow], items: dict[str, int], stations: dict[str, int]
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Each row checked (required fields, ID checksum, mobile number, item and station of the
    campaign, half-day) and duplicates of ID, boat and licence numbers named with the row they
    repeat. ``items``/``stations`` map accepted codes and names to ids."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str], int] = {}
    entries = []
    default_item = next(iter(items.values()))
    for row in rows:
        v = row.values
        before = len(problems)

        def bad(
            name: str, code: str, message: str, row: RosterRow = row, same_as: int | None = None
        ) -> None:
            problems.append(Problem(row.row, name, code, message, same_as))

        for name in REQUIRED:
            if not v.get(name):
                bad(name, "missing", "This field is required.")
        if v.get("name") and len(v["name"]) > 50:
            bad("name", "too_long", "At most 50 characters.")
        if v.get("phone") and not cases.valid_phone(v["phone"]):
            bad("phone", "bad_phone", f"{v['phone']!r} is not an 11-digit mobile number.")
        id_number = v.get("id_number", "").upper()
        if id_number and not cases.valid_id_number(id_number):
            bad(
                "id_number",
                "bad_id_number",
                "Not a valid ID number (its check character is wrong).",
            )
        for name in ("boat_number", "licence_number"):
            if len(v.get(name, "")) > 40:
                bad(name, "too_long", "At most 40 characters.")
        item_id = items.get(v.get("item", ""), default_item) if v.get("item") else default_item
        if v.get("item") and v["item"] not in items:
            bad("item", "not_in_campaign", f"{v['item']!r} is not an item of this campaign.")
        station_id = stations.get(v.get("station", "")) if v.get("station") else None
        if v.get("station") and station_id is None:
            bad(
                "station", "not_in_campaign", f"{v['station']!r} is not a station of this campaign."
            )
        half = HALVES.get(v.get("half", "").lower(), HALVES.get(v.get("half", "")))
        if half is None:
            bad("half", "bad_half", "上午 (am), 下午 (pm) or empty.")
        for name in UNIQUE:
            value = id_number if name == "id_number" else v.get(name, "")
            if not value:
                continue
            first = seen.setdefault((name, value), row.row)
            if first != row.row:
                bad(name, "duplicate", f"The same as row {first}.", same_as=first)
        if len(problems) == before:
            preferences: dict[str, Any] = {}
            if station_id is not None:
                preferences["station"] = station_id
            if half:
                preferences["half"] = half
            entries.append({
                "row": row.row, "item_id": item_id, "name": v["name"], "phone": v["phone"],
                "id_number": id_number, "boat_number": v.get("boat_number", ""),
                "licence_number": v.get("licence_number", ""), "preferences": preferences,
            })  # fmt: skip
    return entries, problems
