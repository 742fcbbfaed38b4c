"""What the board and the reports count of the logistics: items on the road by hop, items
waiting for pickup past their days, time from issue to pickup, and trips saved, counted from
real pickups at stations (each one a journey to the hall the resident did not make)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cloudhelp.core.clock import day_start
from cloudhelp.store.models import LogisticsRun, Station, TrackedItem, TrackedItemEvent

PICKUP_DAYS_DEFAULT = 14.0  # the pickup_overdue warning's default threshold, in days


async def in_transit_by_hop(session: AsyncSession) -> list[dict[str, Any]]:
    """Items on the road now, per run hop (from → to), most first."""
    origin, target = aliased(Station), aliased(Station)
    count = func.count(TrackedItem.id)
    rows = await session.execute(
        select(origin.name, target.name, count)
        .join(LogisticsRun, LogisticsRun.id == TrackedItem.run_id)
        .join(origin, origin.id == LogisticsRun.from_id)
        .join(target, target.id == LogisticsRun.to_id)
        .where(TrackedItem.status == "in_transit")
        .group_by(origin.name, target.name)
        .order_by(count.desc(), origin.name)
    )
    return [{"from": a, "to": b, "items": n} for a, b, n in rows.all()]


async def overdue_ready(
    session: AsyncSession, now: datetime, days: float = PICKUP_DAYS_DEFAULT
) -> list[TrackedItem]:
    """Items waiting for pickup longer than ``days``, the longest first."""
    rows = await session.scalars(
        select(TrackedItem)
        .where(TrackedItem.status == "ready", TrackedItem.ready_at < now - timedelta(days=days))
        .order_by(TrackedItem.ready_at)
    )
    return list(rows.all())


async def pickups(session: AsyncSession, first: date, last: date) -> list[tuple[TrackedItem, str]]:
    """Items picked up at a station (not the hall) between two local days, with the station."""
    rows = await session.execute(
        select(TrackedItem, Station.name)
        .join(TrackedItemEvent, TrackedItemEvent.item_id == TrackedItem.id)
        .join(Station, Station.id == TrackedItemEvent.station_id)
        .where(
            TrackedItemEvent.kind == "picked_up",
            TrackedItemEvent.at >= day_start(first),
            TrackedItemEvent.at < day_start(last + timedelta(days=1)),
            Station.parent_id.is_not(None),
        )
    )
    return [(item, name) for item, name in rows.all()]


def _hours(items: list[TrackedItem]) -> list[float]:
    return [
        (i.finished_at - i.created_at).total_seconds() / 3600
        for i in items
        if i.finished_at is not None and i.kind == "certificate"
    ]


async def summary(
    session: AsyncSession,
    first: date,
    last: date,
    now: datetime,
    days: float = PICKUP_DAYS_DEFAULT,
) -> dict[str, Any]:
    """The board's and the report's figures for a range of local days (issue→pickup over the
    certificates picked up in it)."""
    picked = await pickups(session, first, last)
    hours = _hours([item for item, _ in picked])
    counted = select(TrackedItem.status, func.count()).group_by(TrackedItem.status)
    by_status = dict((await session.execute(counted)).all())
    return {
        "trips_saved": len(picked),
        "issue_to_pickup_hours_median": round(median(hours), 1) if hours else None,
        "issue_to_pickup_hours_mean": round(sum(hours) / len(hours), 1) if hours else None,
        "overdue_pickups": len(await overdue_ready(session, now, days)),
        "in_transit": by_status.get("in_transit", 0),
        "in_transit_by_hop": await in_transit_by_hop(session),
        "awaiting_pickup": by_status.get("ready", 0),
        "exceptions_open": await open_exceptions(session),
    }


async def open_exceptions(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(TrackedItem)
            .where(TrackedItem.exception.is_not(None), TrackedItem.finished_at.is_(None))
        )
        or 0
    )


async def by_station(
    session: AsyncSession,
    first: date,
    last: date,
    now: datetime,
    days: float = PICKUP_DAYS_DEFAULT,
) -> list[dict[str, Any]]:
    """One row per station that items went to or were picked up at: pickups (trips saved),
    hours from issue to pickup, waiting now, overdue now."""
    picked = await pickups(session, first, last)
    overdue = await overdue_ready(session, now, days)
    waiting = dict(
        (
            await session.execute(
                select(Station.name, func.count())
                .join(TrackedItem, TrackedItem.at_station_id == Station.id)
                .where(TrackedItem.status == "ready")
                .group_by(Station.name)
            )
        ).all()
    )
    names = sorted({n for _, n in picked} | set(waiting) | {i.at_station.name for i in overdue})
    rows = []
    for name in names:
        here = [item for item, at in picked if at == name]
        hours = _hours(here)
        rows.append(
            {
                "station_name": name,
                "station_pickups": len(here),
                "issue_to_pickup_hours": round(median(hours), 1) if hours else None,
                "awaiting_pickup": waiting.get(name, 0),
                "overdue_pickups": sum(1 for i in overdue if i.at_station.name == name),
            }
        )
    return rows
