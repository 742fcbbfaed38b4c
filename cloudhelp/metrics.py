"""Efficiency metrics over tickets and ratings (docs/metrics.md has every formula).

Per ticket: queue wait = connected − enqueued; answer delay = connected − first offer;
handling time = (ended − connected) + (wrap-up done − ended). Aggregates group tickets by the
local day they were enqueued and by department, item, station or staff member.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.models import Rating, ServiceItem, Staff, Ticket, TicketEvent
from cloudhelp.queue import LOCAL_TZ
from cloudhelp.ratings import BAD_LEVELS

SHORT_ABANDON_SECONDS = 10  # abandons quicker than this are kept apart (a mistaken tap)
SERVICE_LEVEL_SECONDS = 60  # answered within this many seconds counts towards the service level
GROUPS = ("day", "department", "item", "station", "staff")


@dataclass(frozen=True)
class TicketFacts:
    ticket_id: int
    day: date
    hour: int
    weekday: int
    department: str
    item: str
    station: str
    staff: str | None
    answered: bool
    abandoned: bool
    short_abandon: bool
    wait: float | None
    answer_delay: float | None
    handling: float | None
    rating: int | None
    rated: bool


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the q-th, 0 < q ≤ 1) of the values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


async def ticket_facts(session: AsyncSession, first: date, last: date) -> list[TicketFacts]:
    """One row per ticket enqueued on a local day in [first, last]."""
    start = datetime.combine(first, time(), LOCAL_TZ)
    end = datetime.combine(last + timedelta(days=1), time(), LOCAL_TZ)
    tickets = (
        await session.scalars(
            select(Ticket).where(Ticket.enqueued_at >= start, Ticket.enqueued_at < end)
        )
    ).all()
    ids = [t.id for t in tickets]
    first_offer: dict[int, datetime] = {}
    for event in (
        await session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id.in_(ids), TicketEvent.kind == "offered")
            .order_by(TicketEvent.at)
        )
    ).all():
        first_offer.setdefault(event.ticket_id, event.at)
    ratings = {
        r.ticket_id: r
        for r in (await session.scalars(select(Rating).where(Rating.ticket_id.in_(ids)))).all()
    }
    staff_names = {p.id: p.username for p in (await session.scalars(select(Staff))).all()}
    facts = []
    for t in tickets:
        local = t.enqueued_at.astimezone(LOCAL_TZ)
        answered = t.connected_at is not None
        abandoned = t.status in ("abandoned", "cancelled")
        waited = _seconds(t.closed_at, t.enqueued_at) if abandoned else None
        ended = t.ended_at
        handling = None
        if answered and ended is not None:
            handling = _seconds(ended, t.connected_at) or 0.0
            handling += _seconds(t.wrapup_done_at, ended) or 0.0
        rating = ratings.get(t.id)
        facts.append(
            TicketFacts(
                ticket_id=t.id,
                day=local.date(),
                hour=local.hour,
                weekday=local.weekday(),
                department=t.department.code,
                item=t.item.code,
                station=t.station.code,
                staff=staff_names.get(t.staff_id) if t.staff_id else None,
                answered=answered,
                abandoned=abandoned,
                short_abandon=abandoned and waited is not None and waited < SHORT_ABANDON_SECONDS,
                wait=_seconds(t.connected_at, t.enqueued_at),
                answer_delay=_seconds(t.connected_at, first_offer.get(t.id)),
                handling=handling,
                rating=rating.level if rating else None,
                rated=rating is not None and rating.level is not None,
            )
        )
    return facts


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(facts: list[TicketFacts]) -> dict[str, Any]:
    """The figures of one group of tickets."""
    answered = [f for f in facts if f.answered]
    abandons = [f for f in facts if f.abandoned and not f.short_abandon]
    waits = [f.wait for f in answered if f.wait is not None]
    handling = [f.handling for f in answered if f.handling is not None]
    rated = [f for f in facts if f.rated]
    bad = [f for f in rated if f.rating in BAD_LEVELS]
    counted = len(facts) - sum(1 for f in facts if f.short_abandon)
    return {
        "tickets": len(facts),
        "answered": len(answered),
        "abandoned": len(abandons),
        "short_abandons": sum(1 for f in facts if f.short_abandon),
        "abandon_rate": len(abandons) / counted if counted else None,
        "wait_mean_s": _mean(waits),
        "wait_p90_s": percentile(waits, 0.9),
        "handling_mean_s": _mean(handling),
        "handling_p90_s": percentile(handling, 0.9),
        "service_level": (
            sum(1 for w in waits if w <= SERVICE_LEVEL_SECONDS) / len(answered)
            if answered
            else None
        ),
        "ratings": len(rated),
        "good_rate": (len(rated) - len(bad)) / len(rated) if rated else None,
        "rating_response_rate": len(rated) / len(answered) if answered else None,
        "trips_saved": len(answered),
    }


def report(facts: list[TicketFacts], by: str) -> list[dict[str, Any]]:
    """Aggregates per group (``by`` one of GROUPS), sorted by the group key."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    groups: dict[str, list[TicketFacts]] = defaultdict(list)
    for fact in facts:
        key = fact.day.isoformat() if by == "day" else getattr(fact, by)
        groups[key or "—"].append(fact)
    return [{by: key, **aggregate(rows)} for key, rows in sorted(groups.items())]


def peak_hours(facts: list[TicketFacts]) -> list[list[int]]:
    """Arrivals by weekday (rows, Monday first) and hour of day (columns)."""
    grid = [[0] * 24 for _ in range(7)]
    for fact in facts:
        grid[fact.weekday][fact.hour] += 1
    return grid


def hot_items(facts: list[TicketFacts], top: int = 10) -> list[tuple[str, int]]:
    return Counter(f.item for f in facts).most_common(top)


async def item_names(session: AsyncSession) -> dict[str, str]:
    return {i.code: i.name for i in (await session.scalars(select(ServiceItem))).all()}
