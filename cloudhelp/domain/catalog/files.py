"""The catalog file: its records, validation (every problem named by record and field), and the
JSON and CSV formats both ways."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cloudhelp.core import validation
from cloudhelp.store.models import TIERS

SAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "data" / "sample_catalog.json"

Tier = Literal["community", "street", "district"]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Text = Annotated[str, Field(max_length=2000)]


class CatalogError(Exception):
    """A catalog file is invalid; ``problems`` name the record and field of each error."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Record(BaseModel):
    """One record of an imported file (catalog or station network): unknown fields are
    refused, text is trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DepartmentIn(Record):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=100)]


class CategoryIn(Record):
    code: Code
    letter: Annotated[str, Field(pattern=r"^[A-Z]$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]


class MaterialIn(Record):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    requirement: Literal["required", "conditional"] = "required"
    condition: Text = ""
    form: Literal["original", "copy", "original_and_copy", "electronic"] = "copy"
    copies: Annotated[int, Field(ge=0, le=20)] = 1
    notes: Text = ""
    common_mistakes: list[Annotated[str, Field(min_length=1, max_length=200)]] = []

    @model_validator(mode="after")
    def _condition_for_conditional(self) -> MaterialIn:
        if self.requirement == "conditional" and not self.condition:
            raise ValueError("a conditional material needs its condition")
        return self


class ItemIn(Record):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    department: Code
    category: Code
    statutory_days: Annotated[float, Field(gt=0, le=365)]
    promised_days: Annotated[float, Field(gt=0, le=365)]
    tiers: Annotated[list[Tier], Field(min_length=1)]
    cloud: bool = True
    # Shown on the kiosks' home screen while the hall's own tickets do not say yet which items
    # residents ask for most (GET /api/v1/items/hot).
    featured: bool = False
    description: Text = ""
    materials: list[MaterialIn] = []

    @field_validator("statutory_days", "promised_days")
    @classmethod
    def _half_days(cls, value: float) -> float:
        if (value * 2) != int(value * 2):
            raise ValueError("working days must be whole or half days")
        return value

    @field_validator("tiers")
    @classmethod
    def _unique_tiers(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a tier is listed twice")
        return sorted(value, key=TIERS.index)

    @model_validator(mode="after")
    def _promised_within_statutory(self) -> ItemIn:
        if self.promised_days > self.statutory_days:
            raise ValueError(
                f"promised_days ({self.promised_days:g}) exceeds statutory_days "
                f"({self.statutory_days:g}): the promised limit may not be longer than the law's"
            )
        return self


class CatalogIn(Record):
    sample: bool = False
    note: str = ""
    departments: list[DepartmentIn] = []
    categories: list[CategoryIn] = []
    items: list[ItemIn] = []


# ---------------------------------------------------------------------------- parsing


def validate_sections(
    raw: object, models: dict[str, type[BaseModel]], allowed: Iterable[str] = ()
) -> dict[str, list[Any]]:
    """Validate each record of each list section on its own, so every error names its record."""
    raw = _top_level(raw, models)
    problems = [
        f"top level: unknown field {name!r}"
        for name in sorted(set(raw) - set(models) - set(allowed))
    ]
    parsed: dict[str, list[Any]] = {section: [] for section in models}
    for section, model in models.items():
        records = raw.get(section, [])
        if not isinstance(records, list):
            problems.append(f"top level, field {section}: must be a list")
            continue
        for index, record in enumerate(records):
            label = f"{section}[{index}]"
            if isinstance(record, dict) and record.get("code"):
                label += f" (code {record['code']})"
            try:
                parsed[section].append(model.model_validate(record))
            except ValidationError as exc:
                problems += [
                    f"{label}, {validation.describe(err, 'record')}" for err in exc.errors()
                ]
    if problems:
        raise CatalogError(problems)
    return parsed


def _top_level(raw: object, sections: Iterable[str]) -> dict[str, Any]:
    """The file's one JSON object, else a CatalogError saying what it must hold."""
    if not isinstance(raw, dict):
        raise CatalogError([f"the file must hold one JSON object with {', '.join(sections)}"])
    return raw


def _validate_records(raw: object) -> CatalogIn:
    models: dict[str, type[BaseModel]] = {
        "departments": DepartmentIn,
        "categories": CategoryIn,
        "items": ItemIn,
    }
    top = _top_level(raw, models)
    parsed = validate_sections(top, models, allowed=("sample", "note"))
    return CatalogIn(sample=bool(top.get("sample", False)), note=str(top.get("note", "")), **parsed)


def parse_json(text: str) -> CatalogIn:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            [f"line {exc.lineno}, column {exc.colno}: broken JSON ({exc.msg})"]
        ) from exc
    return _validate_records(raw)


CSV_COLUMNS = [
    "department_code", "department_name", "category_code", "category_letter", "category_name",
    "item_code", "item_name", "statutory_days", "promised_days", "tiers", "cloud",
    "item_description", "material_name", "material_requirement", "material_condition",
    "material_form", "material_copies", "material_notes", "material_common_mistakes",
]  # fmt: skip
ITEM_COLUMNS = CSV_COLUMNS[5:12]
# Read when present (files written before it lack it), always written, after the others.
OPTIONAL_ITEM_COLUMNS = ["item_featured"]
LIST_SEPARATOR = "|"


def parse_csv(text: str) -> CatalogIn:
    """One row per material (an item without materials has one row with empty material fields)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in CSV_COLUMNS if name not in (reader.fieldnames or [])]
    if missing:
        raise CatalogError([f"line 1 (header): missing column(s) {', '.join(missing)}"])
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise CatalogError([f"line {reader.line_num}: broken CSV ({exc})"]) from exc
    records = _CsvRecords()
    for line, row in enumerate(rows, start=2):
        records.add(line, row)
    if records.problems:
        raise CatalogError(records.problems)
    try:
        return _validate_records(
            {
                "departments": sorted(records.departments.values(), key=lambda d: d["code"]),
                "categories": sorted(records.categories.values(), key=lambda c: c["letter"]),
                "items": list(records.items.values()),
            }
        )
    except CatalogError as exc:
        # Point each item problem at the CSV line where the item starts.
        raise CatalogError([_to_csv_line(p, records.item_rows) for p in exc.problems]) from exc


class _CsvRecords:
    """The records of a CSV catalog as they are gathered row by row (one row per material)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.departments: dict[str, dict[str, Any]] = {}
        self.categories: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.item_rows: dict[str, tuple[int, dict[str, str]]] = {}

    def add(self, line: int, row: dict[str, str]) -> None:
        if None in row or any(value is None for value in row.values()):
            self.problems.append(f"line {line}: wrong number of columns")
            return
        self.departments.setdefault(
            row["department_code"], {"code": row["department_code"], "name": row["department_name"]}
        )
        self.categories.setdefault(
            row["category_code"],
            {
                "code": row["category_code"],
                "letter": row["category_letter"],
                "name": row["category_name"],
            },
        )
        code = row["item_code"]
        if code in self.item_rows:
            first_line, first = self.item_rows[code]
            for column in ITEM_COLUMNS + OPTIONAL_ITEM_COLUMNS:
                if row.get(column) != first.get(column):
                    self.problems.append(
                        f"line {line} (item {code}), field {column}: differs from line {first_line}"
                    )
        else:
            self.item_rows[code] = (line, row)
            self.items[code] = _csv_item(row)
        if row["material_name"]:
            self.items[code]["materials"].append(_csv_material(row))


def _csv_item(row: dict[str, str]) -> dict[str, Any]:
    return {
        "code": row["item_code"],
        "name": row["item_name"],
        "department": row["department_code"],
        "category": row["category_code"],
        "statutory_days": row["statutory_days"],
        "promised_days": row["promised_days"],
        "tiers": [t for t in row["tiers"].split(LIST_SEPARATOR) if t],
        "cloud": row["cloud"],
        "featured": row.get("item_featured") or False,
        "description": row["item_description"],
        "materials": [],
    }


def _csv_material(row: dict[str, str]) -> dict[str, Any]:
    return {
        "name": row["material_name"],
        "requirement": row["material_requirement"],
        "condition": row["material_condition"],
        "form": row["material_form"],
        "copies": row["material_copies"],
        "notes": row["material_notes"],
        "common_mistakes": [m for m in row["material_common_mistakes"].split(LIST_SEPARATOR) if m],
    }


def _to_csv_line(problem: str, item_rows: dict[str, tuple[int, dict[str, str]]]) -> str:
    for code, (line, _row) in item_rows.items():
        if f"(code {code})" in problem:
            return f"line {line}: {problem}"
    return problem


def parse_file(path: Path) -> CatalogIn:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogError([f"cannot read {path}: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise CatalogError([f"{path} is not UTF-8 text"]) from exc
    if path.suffix.lower() == ".csv":
        return parse_csv(text)
    return parse_json(text)


# ---------------------------------------------------------------------------- export


def to_json(catalog: CatalogIn) -> str:
    data = catalog.model_dump(include={"departments", "categories", "items"})
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def _days(value: float) -> str:
    return f"{value:g}"


def to_csv(catalog: CatalogIn) -> str:
    departments = {d.code: d for d in catalog.departments}
    categories = {c.code: c for c in catalog.categories}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS + OPTIONAL_ITEM_COLUMNS)
    for item in catalog.items:
        dep, cat = departments[item.department], categories[item.category]
        head = [
            dep.code, dep.name, cat.code, cat.letter, cat.name, item.code, item.name,
            _days(item.statutory_days), _days(item.promised_days),
            LIST_SEPARATOR.join(item.tiers), "true" if item.cloud else "false", item.description,
        ]  # fmt: skip
        tail = ["true" if item.featured else "false"]
        rows: list[MaterialIn | None] = [*item.materials] or [None]
        for m in rows:
            if m is None:
                writer.writerow([*head, "", "", "", "", "", "", "", *tail])
                continue
            writer.writerow(
                [
                    *head,
                    m.name,
                    m.requirement,
                    m.condition,
                    m.form,
                    m.copies,
                    m.notes,
                    LIST_SEPARATOR.join(m.common_mistakes),
                    *tail,
                ]
            )
    return out.getvalue()
