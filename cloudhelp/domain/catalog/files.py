"""The service catalog: file format (JSON or CSV), validated import, export, and queries."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pypinyin import Style, lazy_pinyin
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock, validation
from cloudhelp.store.models import TIERS, Category, Department, Material, ServiceItem, Ticket

HOT_DAYS = 30  # how far back the kiosks' "hot items" count tickets
SAMPLE_CATALOG = Path(__file__).resolve().parents[1] / "data" / "sample_catalog.json"

Tier = Literal["community", "street", "district"]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Text = Annotated[str, Field(max_length=2000)]


class CatalogError(Exception):
    """A catalog file is invalid; ``problems`` name the record and field of each error."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DepartmentIn(_Record):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=100)]


class CategoryIn(_Record):
    code: Code
    letter: Annotated[str, Field(pattern=r"^[A-Z]$")]
    name: Annotated[str, Field(min_length=1, max_length=100)]


class MaterialIn(_Record):
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


class ItemIn(_Record):
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


class CatalogIn(_Record):
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
    if not isinstance(raw, dict):
        raise CatalogError([f"the file must hold one JSON object with {', '.join(models)}"])
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


def _validate_records(raw: object) -> CatalogIn:
    models: dict[str, type[BaseModel]] = {
        "departments": DepartmentIn,
        "categories": CategoryIn,
        "items": ItemIn,
    }
    parsed = validate_sections(raw, models, allowed=("sample", "note"))
    assert isinstance(raw, dict)
    return CatalogIn(sample=bool(raw.get("sample", False)), note=str(raw.get("note", "")), **parsed)


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
    problems: list[str] = []
    departments: dict[str, dict[str, Any]] = {}
    categories: dict[str, dict[str, Any]] = {}
    items: dict[str, dict[str, Any]] = {}
    item_rows: dict[str, tuple[int, dict[str, str]]] = {}
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise CatalogError([f"line {reader.line_num}: broken CSV ({exc})"]) from exc
    for line, row in enumerate(rows, start=2):
        if None in row or any(value is None for value in row.values()):
            problems.append(f"line {line}: wrong number of columns")
            continue
        departments.setdefault(
            row["department_code"], {"code": row["department_code"], "name": row["department_name"]}
        )
        categories.setdefault(
            row["category_code"],
            {
                "code": row["category_code"],
                "letter": row["category_letter"],
                "name": row["category_name"],
            },
        )
        code = row["item_code"]
        if code in item_rows:
            first_line, first = item_rows[code]
            for column in ITEM_COLUMNS + OPTIONAL_ITEM_COLUMNS:
                if row.get(column) != first.get(column):
                    problems.append(
                        f"line {line} (item {code}), field {column}: differs from line {first_line}"
                    )
        else:
            item_rows[code] = (line, row)
            items[code] = {
                "code": code,
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
        if row["material_name"]:
            items[code]["materials"].append(
                {
                    "name": row["material_name"],
                    "requirement": row["material_requirement"],
                    "condition": row["material_condition"],
                    "form": row["material_form"],
                    "copies": row["material_copies"],
                    "notes": row["material_notes"],
                    "common_mistakes": [
                        m for m in row["material_common_mistakes"].split(LIST_SEPARATOR) if m
                    ],
                }
            )
    if problems:
        raise CatalogError(problems)
    try:
        return _validate_records(
            {
                "departments": sorted(departments.values(), key=lambda d: d["code"]),
                "categories": sorted(categories.values(), key=lambda c: c["letter"]),
                "items": list(items.values()),
            }
        )
    except CatalogError as exc:
        # Point each item problem at the CSV line where the item starts.
        raise CatalogError([_to_csv_line(p, item_rows) for p in exc.problems]) from exc


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


# ---------------------------------------------------------------------------- storage


def pinyin_initials(name: str) -> str:
    """'个体工商户设立登记' -> 'gtgshsldj' (letters only), for touch-screen search."""
    letters = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")
    return "".join(ch for ch in "".join(letters).lower() if ch.isascii() and ch.isalnum())


def _duplicates(codes: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for code in codes:
        if code in seen and code not in repeated:
            repeated.append(code)
        seen.add(code)
    return repeated


async def import_catalog(session: AsyncSession, catalog: CatalogIn) -> dict[str, int]:
    """Upsert departments, categories and items by code; an item's materials are replaced.

    Everything is checked before anything is written; the caller commits, so a failure
    anywhere leaves the database unchanged.
    """
    problems: list[str] = []
    for section, key in (("departments", "code"), ("categories", "code"), ("items", "code")):
        for code in _duplicates(getattr(r, key) for r in getattr(catalog, section)):
            problems.append(f"{section} (code {code}), field code: duplicate code in the file")
    for code in _duplicates(c.letter for c in catalog.categories):
        problems.append(f"categories (letter {code}), field letter: letter used twice in the file")

    departments = {d.code: d for d in (await session.scalars(select(Department))).all()}
    categories = {c.code: c for c in (await session.scalars(select(Category))).all()}
    known_departments = set(departments) | {d.code for d in catalog.departments}
    known_categories = set(categories) | {c.code for c in catalog.categories}
    for index, item in enumerate(catalog.items):
        label = f"items[{index}] (code {item.code})"
        if item.department not in known_departments:
            problems.append(f"{label}, field department: unknown department {item.department!r}")
        if item.category not in known_categories:
            problems.append(f"{label}, field category: unknown category {item.category!r}")
    letters_in_db = {c.letter: c.code for c in categories.values()}
    for cat in catalog.categories:
        owner = letters_in_db.get(cat.letter)
        if owner is not None and owner != cat.code:
            problems.append(
                f"categories (code {cat.code}), field letter: letter {cat.letter} "
                f"already belongs to category {owner}"
            )
    if problems:
        raise CatalogError(problems)

    for dep in catalog.departments:
        department = departments.get(dep.code) or Department(code=dep.code)
        department.name = dep.name
        session.add(department)
        departments[dep.code] = department
    for cat in catalog.categories:
        category = categories.get(cat.code) or Category(code=cat.code)
        category.letter, category.name = cat.letter, cat.name
        session.add(category)
        categories[cat.code] = category
    await session.flush()

    existing = {
        i.code: i
        for i in (
            await session.scalars(
                select(ServiceItem).where(ServiceItem.code.in_([i.code for i in catalog.items]))
            )
        ).all()
    }
    for item in catalog.items:
        service = existing.get(item.code) or ServiceItem(code=item.code)
        service.name = item.name
        service.pinyin_initials = pinyin_initials(item.name)
        service.department = departments[item.department]
        service.category = categories[item.category]
        service.statutory_days = item.statutory_days
        service.promised_days = item.promised_days
        service.tiers = list(item.tiers)
        service.cloud = item.cloud
        service.featured = item.featured
        service.description = item.description
        # Materials are updated in place by position, so later records that point at a
        # material (pre-review checklists) keep pointing at the same row.
        current = {m.position: m for m in service.materials} if service.id else {}
        materials: list[Material] = []
        for pos, material in enumerate(item.materials, start=1):
            target = current.get(pos) or Material(position=pos)
            for field_name, value in material.model_dump().items():
                setattr(target, field_name, value)
            materials.append(target)
        service.materials = materials
        session.add(service)
    return {
        "departments": len(catalog.departments),
        "categories": len(catalog.categories),
        "items": len(catalog.items),
    }


async def load_catalog(session: AsyncSession) -> CatalogIn:
    """The whole stored catalog in the file format."""
    departments = (await session.scalars(select(Department).order_by(Department.code))).all()
    categories = (await session.scalars(select(Category).order_by(Category.letter))).all()
    items = (await session.scalars(select(ServiceItem).order_by(ServiceItem.code))).all()
    return CatalogIn(
        departments=[DepartmentIn(code=d.code, name=d.name) for d in departments],
        categories=[CategoryIn(code=c.code, letter=c.letter, name=c.name) for c in categories],
        items=[
            ItemIn(
                code=i.code,
                name=i.name,
                department=i.department.code,
                category=i.category.code,
                statutory_days=i.statutory_days,
                promised_days=i.promised_days,
                tiers=i.tiers,
                cloud=i.cloud,
                featured=i.featured,
                description=i.description,
                materials=[
                    MaterialIn(
                        name=m.name,
                        requirement=m.requirement,  # type: ignore[arg-type]
                        condition=m.condition,
                        form=m.form,  # type: ignore[arg-type]
                        copies=m.copies,
                        notes=m.notes,
                        common_mistakes=list(m.common_mistakes),
                    )
                    for m in i.materials
                ],
            )
            for i in items
        ],
    )


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
        for m in item.materials or [None]:
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


# ---------------------------------------------------------------------------- queries


async def search_items(
    session: AsyncSession,
    *,
    query: str = "",
    department: str | None = None,
    category: str | None = None,
    tier: str | None = None,
    cloud: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[ServiceItem], int]:
    """Items matching a name, code or pinyin-initials query and the filters, with the total."""
    stmt = select(ServiceItem)
    if query:
        needle = query.strip()
        stmt = stmt.where(
            or_(
                ServiceItem.name.contains(needle, autoescape=True),
                ServiceItem.code.ilike(f"%{_escape_like(needle)}%", escape="\\"),
                ServiceItem.pinyin_initials.contains(needle.lower(), autoescape=True),
            )
        )
    if department:
        stmt = stmt.join(Department).where(Department.code == department)
    if category:
        stmt = stmt.join(Category).where(Category.code == category)
    if cloud is not None:
        stmt = stmt.where(ServiceItem.cloud.is_(cloud))
    rows = list((await session.scalars(stmt.order_by(ServiceItem.code))).unique().all())
    if tier:
        # Tier sets are tiny JSON lists; filtering them here keeps one query for both databases.
        rows = [row for row in rows if tier in row.tiers]
    return rows[offset : offset + limit], len(rows)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def hot_items(session: AsyncSession, limit: int) -> list[ServiceItem]:
    """The cloud items residents asked for most in the last HOT_DAYS days (most tickets
    first), topped up with the catalog's featured cloud items in catalog order; fewer (or
    none) when neither gives enough."""
    since = clock.utcnow() - timedelta(days=HOT_DAYS)
    counted = (
        select(Ticket.item_id, func.count().label("tickets"))
        .where(Ticket.enqueued_at >= since)
        .group_by(Ticket.item_id)
        .subquery()
    )
    asked = (
        await session.scalars(
            select(ServiceItem)
            .join(counted, counted.c.item_id == ServiceItem.id)
            .where(ServiceItem.cloud.is_(True))
            .order_by(counted.c.tickets.desc(), ServiceItem.id)
            .limit(limit)
        )
    ).all()
    chosen = list(asked)
    if len(chosen) < limit:
        featured = select(ServiceItem).where(
            ServiceItem.featured.is_(True),
            ServiceItem.cloud.is_(True),
            ServiceItem.id.not_in([item.id for item in chosen]),
        )
        chosen += (
            await session.scalars(featured.order_by(ServiceItem.id).limit(limit - len(chosen)))
        ).all()
    return chosen


async def get_item(session: AsyncSession, code: str) -> ServiceItem | None:
    return await session.scalar(select(ServiceItem).where(ServiceItem.code == code))


async def get_department(session: AsyncSession, code: str) -> Department | None:
    """The department with that code, if there is one."""
    return await session.scalar(select(Department).where(Department.code == code))


async def list_departments(session: AsyncSession) -> list[tuple[Department, int]]:
    stmt = (
        select(Department, func.count(ServiceItem.id))
        .outerjoin(ServiceItem, ServiceItem.department_id == Department.id)
        .group_by(Department.id)
        .order_by(Department.code)
    )
    return [(d, n) for d, n in (await session.execute(stmt)).all()]


async def list_categories(session: AsyncSession) -> list[tuple[Category, int]]:
    stmt = (
        select(Category, func.count(ServiceItem.id))
        .outerjoin(ServiceItem, ServiceItem.category_id == Category.id)
        .group_by(Category.id)
        .order_by(Category.letter)
    )
    return [(c, n) for c, n in (await session.execute(stmt)).all()]


def item_summary(item: ServiceItem) -> dict[str, Any]:
    return {
        "code": item.code,
        "name": item.name,
        "pinyin_initials": item.pinyin_initials,
        "department": {"code": item.department.code, "name": item.department.name},
        "category": {
            "code": item.category.code,
            "letter": item.category.letter,
            "name": item.category.name,
        },
        "statutory_days": item.statutory_days,
        "promised_days": item.promised_days,
        "tiers": item.tiers,
        "cloud": item.cloud,
    }


def item_detail(item: ServiceItem) -> dict[str, Any]:
    return {
        **item_summary(item),
        "description": item.description,
        "materials": [
            {
                "position": m.position,
                "name": m.name,
                "requirement": m.requirement,
                "condition": m.condition,
                "form": m.form,
                "copies": m.copies,
                "notes": m.notes,
                "common_mistakes": m.common_mistakes,
            }
            for m in item.materials
        ],
    }
