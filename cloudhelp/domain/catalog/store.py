"""The catalog in the database: a checked import (all or nothing) and the stored catalog in the
file format."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain.catalog.files import (
    CatalogError,
    CatalogIn,
    CategoryIn,
    DepartmentIn,
    ItemIn,
    MaterialIn,
)
from cloudhelp.store.models import Category, Department, Material, ServiceItem


def pinyin_initials(name: str) -> str:
    """'个体工商户设立登记' -> 'gtgshsldj' (letters only), for touch-screen search. pypinyin
    (its phrase dictionary: ~0.2 s of CPU) is imported by the first call, not by every start."""
    from pypinyin import Style, lazy_pinyin

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
    departments = {d.code: d for d in (await session.scalars(select(Department))).all()}
    categories = {c.code: c for c in (await session.scalars(select(Category))).all()}
    problems = _problems_in_file(catalog) + _problems_with_stored(
        catalog, set(departments), {c.letter: c.code for c in categories.values()}
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
    await _upsert_items(session, catalog.items, departments, categories)
    return {
        "departments": len(catalog.departments),
        "categories": len(catalog.categories),
        "items": len(catalog.items),
    }


def _problems_in_file(catalog: CatalogIn) -> list[str]:
    """Codes and letters the file uses twice."""
    problems: list[str] = []
    for section, key in (("departments", "code"), ("categories", "code"), ("items", "code")):
        for code in _duplicates(getattr(r, key) for r in getattr(catalog, section)):
            problems.append(f"{section} (code {code}), field code: duplicate code in the file")
    for code in _duplicates(c.letter for c in catalog.categories):
        problems.append(f"categories (letter {code}), field letter: letter used twice in the file")
    return problems


def _problems_with_stored(
    catalog: CatalogIn, stored_departments: set[str], stored_letters: dict[str, str]
) -> list[str]:
    """Items of departments or categories neither stored nor in the file, and category letters
    that already belong to another stored category."""
    problems: list[str] = []
    known_departments = stored_departments | {d.code for d in catalog.departments}
    known_categories = set(stored_letters.values()) | {c.code for c in catalog.categories}
    for index, item in enumerate(catalog.items):
        label = f"items[{index}] (code {item.code})"
        if item.department not in known_departments:
            problems.append(f"{label}, field department: unknown department {item.department!r}")
        if item.category not in known_categories:
            problems.append(f"{label}, field category: unknown category {item.category!r}")
    for cat in catalog.categories:
        owner = stored_letters.get(cat.letter)
        if owner is not None and owner != cat.code:
            problems.append(
                f"categories (code {cat.code}), field letter: letter {cat.letter} "
                f"already belongs to category {owner}"
            )
    return problems


async def _upsert_items(
    session: AsyncSession,
    items: list[ItemIn],
    departments: dict[str, Department],
    categories: dict[str, Category],
) -> None:
    """Write each item over the stored one of its code (or a new one), with its materials."""
    codes = [i.code for i in items]
    existing = {
        i.code: i
        for i in (
            await session.scalars(select(ServiceItem).where(ServiceItem.code.in_(codes)))
        ).all()
    }
    for item in items:
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
                tiers=i.tiers,  # type: ignore[arg-type]
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
