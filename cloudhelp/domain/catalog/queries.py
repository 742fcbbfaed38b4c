"""Reading the catalog: search, hot items, departments and categories, and items as JSON."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock
from cloudhelp.store.models import Category, Department, ServiceItem, Ticket

HOT_DAYS = 30  # how far back the kiosks' "hot items" count tickets


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


async def items_by_code(session: AsyncSession, codes: Collection[str]) -> dict[str, ServiceItem]:
    """The items of ``codes`` that exist, by code (one statement for all of them)."""
    found = await session.scalars(select(ServiceItem).where(ServiceItem.code.in_(codes)))
    return {item.code: item for item in found}


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
