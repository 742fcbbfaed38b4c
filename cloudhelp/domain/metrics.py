"""Efficiency metrics (docs/metrics.md has every formula).

Per ticket: queue wait = connected − enqueued; answer delay = connected − first offer;
handling time = (ended − connected) + (wrap-up done − ended). Each local day is summed once
into ``daily_stats`` rows (one per grouping key, with wait and handling histograms); reports add
those rows up in SQL, so a year of a busy district costs a few thousand rows, not a million
tickets. A day's rows are final once the day is over and none of its tickets is still open;
until then they are rebuilt when older than the caller allows.
"""

from __future__ import annotations

import asyncio
import bisect
import weakref
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ, day_bounds, local_date
from cloudhelp.core.config import Settings
from cloudhelp.domain import cases
from cloudhelp.domain.ratings import BAD_LEVELS
from cloudhelp.store.db import Database
from cloudhelp.store.models import (
    Case,
    CaseEvent,
    CorrectionNotice,
    Department,
    Rating,
    ServiceItem,
    Staff,
    Station,
    Ticket,
    TicketEvent,
    utcnow,
)
from cloudhelp.store.rollups import (
    HISTOGRAM_EDGES,
    STAT_COUNTERS,
    STAT_HISTOGRAMS,
    STAT_MAXIMA,
    STAT_SUMS,
    daily_stats,
)


@dataclass(frozen=True)
class Rules:
    """The district's definitions (settings ``short_abandon_seconds``, ``service_level_seconds``).

    They are applied when a day is summed: a change counts from the days summed after it.
    """

    short_abandon_seconds: float = 10  # abandons quicker than this are kept apart (mistaken taps)
    service_level_seconds: float = 60  # answered within this counts towards the service level

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(settings.short_abandon_seconds, settings.service_level_seconds)


DEFAULT_RULES = Rules()


FINAL_AFTER = timedelta(hours=1)  # a day's rows are final this long after local midnight
GROUPS = ("day", "week", "month", "department", "item", "station", "staff")
_BUCKETS = len(HISTOGRAM_EDGES) + 1


@dataclass(frozen=True)
class TicketFacts:
    ticket_id: int
    day: date
    hour: int
    department: str
    item: str
    station: str
    staff: str | None
    open: bool
    answered: bool
    abandoned: bool
    short_abandon: bool
    wait: float | None
    answer_delay: float | None
    handling: float | None
    rating: int | None


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


async def ticket_facts(
    session: AsyncSession,
    first: date,
    last: date,
    rules: Rules = DEFAULT_RULES,
    ids: Collection[int] | None = None,
) -> list[TicketFacts]:
    """One row per ticket enqueued on a local day in [first, last] (only those of ``ids`` when
    given), in the order of their ids."""
    if ids is not None:
        wanted = sorted(ids)
        facts = []
        for chunk in range(0, len(wanted), _ID_CHUNK):
            facts += await _ticket_facts(session, first, last, rules, wanted[chunk:][:_ID_CHUNK])
        return facts
    return await _ticket_facts(session, first, last, rules, None)


_ID_CHUNK = 500  # ids per query (SQLite limits a statement's parameters)


async def _ticket_facts(
    session: AsyncSession, first: date, last: date, rules: Rules, ids: list[int] | None
) -> list[TicketFacts]:
    start, end = day_bounds(first, last)
    first_offer = (
        select(func.min(TicketEvent.at))
        .where(TicketEvent.ticket_id == Ticket.id, TicketEvent.kind == "offered")
        .scalar_subquery()
    )
    stmt = (
        select(
            Ticket.id, Ticket.status, Ticket.enqueued_at, Ticket.connected_at, Ticket.ended_at,
            Ticket.wrapup_done_at, Ticket.closed_at, Department.code, ServiceItem.code,
            Station.code, Staff.username, Rating.level, first_offer,
        )
        .join(Department, Department.id == Ticket.department_id)
        .join(ServiceItem, ServiceItem.id == Ticket.item_id)
        .join(Station, Station.id == Ticket.station_id)
        .outerjoin(Staff, Staff.id == Ticket.staff_id)
        .outerjoin(Rating, Rating.ticket_id == Ticket.id)
        .where(Ticket.enqueued_at >= start, Ticket.enqueued_at < end)
        .order_by(Ticket.id)
    )  # fmt: skip
    if ids is not None:
        stmt = stmt.where(Ticket.id.in_(ids))
    facts = []
    for (
        ticket_id, status, enqueued, connected, ended, wrapped, closed,
        department, item, station, staff, rating, offered,
    ) in (await session.execute(stmt)).all():  # fmt: skip
        local = enqueued.astimezone(LOCAL_TZ)
        abandoned = status in ("abandoned", "cancelled")
        waited = _seconds(closed, enqueued) if abandoned else None
        handling = None
        if connected is not None and ended is not None:
            handling = (_seconds(ended, connected) or 0.0) + (_seconds(wrapped, ended) or 0.0)
        facts.append(
            TicketFacts(
                ticket_id=ticket_id,
                day=local.date(),
                hour=local.hour,
                department=department,
                item=item,
                station=station,
                staff=staff,
                open=closed is None,
                answered=connected is not None,
                abandoned=abandoned,
                short_abandon=waited is not None and waited < rules.short_abandon_seconds,
                wait=_seconds(connected, enqueued),
                answer_delay=_seconds(connected, offered),
                handling=handling,
                rating=rating,
            )
        )
    return facts


# ---------------------------------------------------------------------- building a day's rows


def _empty_row() -> dict[str, Any]:
    """A row being summed: sums are whole microseconds until stored (exact in any order, so an
    incremental build equals a full one), maxima are seconds."""
    return dict.fromkeys(STAT_COUNTERS + STAT_HISTOGRAMS + STAT_SUMS, 0) | dict.fromkeys(
        STAT_MAXIMA, 0.0
    )


Key = tuple[str, str]
Rows = defaultdict[Key, dict[str, Any]]


def _observe(row: dict[str, Any], metric: str, seconds: float, sign: int) -> bool:
    """Add (``sign`` 1) or take away (-1) one observation; True when a taken-away value may
    have been the row's maximum, which must then be found again."""
    row[f"{metric}_n"] += sign
    row[f"{metric}_sum"] += sign * round(seconds * 1_000_000)
    row[f"{metric}_h{bisect.bisect_left(HISTOGRAM_EDGES, seconds)}"] += sign
    if sign > 0:
        row[f"{metric}_max"] = max(row[f"{metric}_max"], seconds)
        return False
    return seconds >= row[f"{metric}_max"]


def _metric_seconds(fact: TicketFacts, metric: str) -> float | None:
    return fact.wait if metric == "wait" else fact.handling


def _add_ticket(row: dict[str, Any], fact: TicketFacts, rules: Rules, sign: int = 1) -> list[str]:
    """Add or take away one ticket's part of a row; returns the metrics whose maximum to find
    again (see _observe)."""
    row["tickets"] += sign
    row["short_abandons"] += sign * fact.short_abandon
    row["abandoned"] += sign * (fact.abandoned and not fact.short_abandon)
    row["answered"] += sign * fact.answered
    lost_max = []
    if fact.wait is not None:
        if _observe(row, "wait", fact.wait, sign):
            lost_max.append("wait")
        row["within_service_level"] += sign * (fact.wait <= rules.service_level_seconds)
    if fact.handling is not None and _observe(row, "handling", fact.handling, sign):
        lost_max.append("handling")
    if fact.rating is not None:
        row["ratings"] += sign
        row["bad_ratings"] += sign * (fact.rating in BAD_LEVELS)
    return lost_max


def _apply(rows: Rows, fact: TicketFacts, rules: Rules, sign: int) -> set[tuple[Key, str]]:
    """Add or take away one ticket in every row it counts in; returns the (row, metric)
    maxima to find again."""
    lost: set[tuple[Key, str]] = set()
    for key in _keys(fact.department, fact.item, fact.station, fact.staff):
        lost.update((key, metric) for metric in _add_ticket(rows[key], fact, rules, sign))
    rows["hour", f"{fact.hour:02d}"]["tickets"] += sign
    return lost


def _ticket_rows(facts: list[TicketFacts], rules: Rules) -> Rows:
    """The tickets' part of a day's rows (pure Python: run in a worker thread for a big day)."""
    rows: Rows = defaultdict(_empty_row)
    rows["all", ""]  # a day without tickets still has its (empty) row
    for fact in facts:
        _apply(rows, fact, rules, 1)
    return rows


async def _case_rows(
    session: AsyncSession, day: date, rows: dict[tuple[str, str], dict[str, Any]]
) -> None:
    """Cases opened, concluded and passing pre-review on ``day`` (with their correction rounds)."""
    start, end = day_bounds(day, day)
    base = (
        select(Case.id, Department.code, ServiceItem.code, Station.code, Staff.username)
        .join(ServiceItem, ServiceItem.id == Case.item_id)
        .join(Department, Department.id == ServiceItem.department_id)
        .join(Station, Station.id == Case.station_id)
        .outerjoin(Staff, Staff.id == Case.staff_id)
    )
    notices_before_pass = (
        select(func.count(CorrectionNotice.id))
        .where(CorrectionNotice.case_id == Case.id, CorrectionNotice.issued_at <= CaseEvent.at)
        .scalar_subquery()
    )
    queries = {
        "cases_opened": base.add_columns(literal(0)).where(
            Case.created_at >= start, Case.created_at < end
        ),
        "cases_concluded": base.add_columns(literal(0)).where(
            Case.concluded_at >= start, Case.concluded_at < end
        ),
        "cases_passed": base.add_columns(notices_before_pass)
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .where(
            CaseEvent.from_state == "pre_review",
            CaseEvent.to_state == "awaiting_acceptance",
            CaseEvent.at >= start,
            CaseEvent.at < end,
        ),
    }
    for counter, stmt in queries.items():
        for _, department, item, station, staff, notices in (await session.execute(stmt)).all():
            for key in _keys(department, item, station, staff):
                row = rows[key]
                row[counter] += 1
                if counter == "cases_passed":
                    row["correction_rounds"] += notices
                    row["first_pass"] += notices == 0


def _keys(department: str, item: str, station: str, staff: str | None) -> list[tuple[str, str]]:
    keys = [("all", ""), ("department", department), ("item", item), ("station", station)]
    if staff:
        keys.append(("staff", staff))
    return keys


async def _store_day(
    session: AsyncSession, day: date, now: datetime, rows: Rows, final: bool
) -> None:
    """Replace the stored rows of ``day`` (sums turned from microseconds into seconds)."""
    common = {
        "day": day,
        "week": day - timedelta(days=day.weekday()),
        "month": day.replace(day=1),
        "final": final,
        "computed_at": now,
    }
    await session.execute(delete(daily_stats).where(daily_stats.c.day == day))
    await session.execute(
        insert(daily_stats),
        [
            common | {"dimension": d, "key": k} | row | {s: row[s] / 1_000_000 for s in STAT_SUMS}
            for (d, k), row in rows.items()
        ],
    )


def _is_final(day: date, now: datetime, facts: Iterable[TicketFacts]) -> bool:
    return now >= day_bounds(day, day)[1] + FINAL_AFTER and not any(f.open for f in facts)


BIG_DAY = 500  # tickets from which a day is summed in a worker thread


async def _sum_tickets(facts: list[TicketFacts], rules: Rules) -> Rows:
    if len(facts) < BIG_DAY:
        return _ticket_rows(facts, rules)
    return await asyncio.to_thread(_ticket_rows, facts, rules)


async def build_day(
    session: AsyncSession, day: date, now: datetime, rules: Rules = DEFAULT_RULES
) -> None:
    """Replace the rows of one local day with ones computed from scratch."""
    facts = await ticket_facts(session, day, day, rules)
    rows = await _sum_tickets(facts, rules)
    await _case_rows(session, day, rows)
    await _store_day(session, day, now, rows, _is_final(day, now, facts))


# ---------------------------------------------------------------------- the day in progress

# What tells that a ticket's facts may have changed: its version (bumped with every change of
# state and times, domain/queue.py), the codes it counts under, and its rating.
_SIGNATURE = (
    Ticket.id, Ticket.version, Ticket.status, Ticket.department_id, Ticket.item_id,
    Ticket.station_id, Ticket.staff_id, Rating.id, Rating.level,
)  # fmt: skip
CACHED_DAYS = 3  # open days whose ticket rows are kept between builds (today, a late yesterday)


@dataclass
class _OpenDay:
    """The tickets' part of a day's rows as last built, with the facts and signature of each
    ticket, so the next build reads and re-sums only the tickets that changed."""

    rules: Rules
    facts: dict[int, TicketFacts]
    signatures: dict[int, tuple[Any, ...]]
    rows: Rows


@dataclass
class _Rollups:
    """One database's open days, and a lock so that one build of a day runs at a time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    days: dict[date, _OpenDay] = field(default_factory=dict)
    facts_read: int = 0  # tickets whose facts the last build read


_ROLLUPS: weakref.WeakKeyDictionary[Database, _Rollups] = weakref.WeakKeyDictionary()


def _rollups(database: Database) -> _Rollups:
    if database not in _ROLLUPS:
        _ROLLUPS[database] = _Rollups()
    return _ROLLUPS[database]


def facts_read(database: Database) -> int:
    """How many tickets' facts the last build of a day on ``database`` read (all the day's on
    a first build, only the changed ones after)."""
    return _rollups(database).facts_read


async def _signatures(session: AsyncSession, day: date) -> dict[int, tuple[Any, ...]]:
    start, end = day_bounds(day, day)
    stmt = (
        select(*_SIGNATURE)
        .outerjoin(Rating, Rating.ticket_id == Ticket.id)
        .where(Ticket.enqueued_at >= start, Ticket.enqueued_at < end)
    )
    return {row[0]: tuple(row[1:]) for row in (await session.execute(stmt)).all()}


async def _open_day(rollups: _Rollups, session: AsyncSession, day: date, rules: Rules) -> _OpenDay:
    """The day's ticket rows brought up to date: from scratch the first time (or when most
    tickets changed), else by taking the changed tickets' old facts away and adding the new."""
    signatures = await _signatures(session, day)
    known = rollups.days.get(day)
    if known is None or known.rules != rules:
        known = None
    changed = [
        t for t, sig in signatures.items() if known is None or known.signatures.get(t) != sig
    ]
    if known is None or len(changed) > len(signatures) // 2:
        facts = await ticket_facts(session, day, day, rules)
        rollups.facts_read = len(facts)
        by_id = {f.ticket_id: f for f in facts}
        known = _OpenDay(rules, by_id, {}, await _sum_tickets(facts, rules))
    else:
        fresh = await ticket_facts(session, day, day, rules, ids=changed)
        rollups.facts_read = len(fresh)
        gone = [t for t in known.facts if t not in signatures] + changed
        lost: set[tuple[Key, str]] = set()
        for ticket_id in gone:
            old = known.facts.pop(ticket_id, None)
            if old is not None:
                lost |= _apply(known.rows, old, rules, -1)
        for fact in fresh:
            _apply(known.rows, fact, rules, 1)
            known.facts[fact.ticket_id] = fact
        _tidy(known, lost)
    known.signatures = {t: signatures[t] for t in known.facts if t in signatures}
    rollups.days[day] = known
    for old_day in sorted(rollups.days)[:-CACHED_DAYS]:
        del rollups.days[old_day]
    return known


def _tidy(known: _OpenDay, lost: set[tuple[Key, str]]) -> None:
    """Drop rows no ticket counts in any more (as a full build would not have them) and find
    again the maxima a taken-away ticket may have held."""
    for key in [k for k, row in known.rows.items() if row["tickets"] == 0 and k != ("all", "")]:
        del known.rows[key]
    for key, metric in lost:
        if key in known.rows:
            values = [
                seconds
                for fact in known.facts.values()
                if (seconds := _metric_seconds(fact, metric)) is not None
                and (key in _keys(fact.department, fact.item, fact.station, fact.staff))
            ]
            known.rows[key][f"{metric}_max"] = max(values, default=0.0)


def _fresh(state: tuple[bool, datetime] | None, now: datetime, max_age: timedelta) -> bool:
    return state is not None and (state[0] or now - state[1] <= max_age)


async def _build(
    database: Database, day: date, now: datetime, max_age: timedelta, rules: Rules
) -> bool:
    """Build one day's rows unless fresh enough by now (another build may have just done it).
    Reads (and sums, in a thread for a big day) with no lock held; the write transaction only
    replaces the rows."""
    rollups = _rollups(database)
    async with rollups.lock:
        async with database.read() as s:
            state = (
                await s.execute(
                    select(daily_stats.c.final, daily_stats.c.computed_at).where(
                        daily_stats.c.dimension == "all", daily_stats.c.day == day
                    )
                )
            ).one_or_none()
            if _fresh((state[0], state[1]) if state else None, now, max_age):
                return False
            known = await _open_day(rollups, s, day, rules)
            rows: Rows = defaultdict(_empty_row, {k: dict(v) for k, v in known.rows.items()})
            await _case_rows(s, day, rows)
        final = _is_final(day, now, known.facts.values())
        if final:
            rollups.days.pop(day, None)
        try:
            async with database.write() as s:
                await _store_day(s, day, now, rows, final)
        except IntegrityError:
            return False  # another server process built the same day at the same moment
        return True


async def refresh(
    database: Database,
    first: date,
    last: date,
    max_age: timedelta = timedelta(minutes=1),
    rules: Rules = DEFAULT_RULES,
    now: datetime | None = None,
) -> int:
    """Build the rows of each day in range that has none, or non-final ones older than
    ``max_age``, from the first day anything was recorded; a day still open is rebuilt from
    its changed tickets only. Returns how many days were built. ``now`` (default: the clock)
    says which day is today."""
    now = now or utcnow()
    async with database.read() as s:
        known = {
            day: (final, computed_at)
            for day, final, computed_at in (
                await s.execute(
                    select(daily_stats.c.day, daily_stats.c.final, daily_stats.c.computed_at)
                    .where(daily_stats.c.dimension == "all")
                    .where(daily_stats.c.day >= first, daily_stats.c.day <= last)
                )
            ).all()
        }
        stale = [
            first + timedelta(days=n)
            for n in range((min(last, local_date(now)) - first).days + 1)
            if not _fresh(known.get(first + timedelta(days=n)), now, max_age)
        ]
        if stale:
            # A day before anything was recorded counts nothing: it is not built (a year asked
            # for in a district that started in the autumn, or data imported later, builds it
            # then).
            start = await _first_active_day(s)
            stale = [day for day in stale if start is not None and day >= start]
    built = 0
    for day in stale:
        if await _build(database, day, now, max_age, rules):
            built += 1
    return built


async def _first_active_day(session: AsyncSession) -> date | None:
    """The first local day a ticket was taken or a case opened, concluded or moved (what a
    day's rows count); None while nothing is recorded."""
    firsts = (
        await session.execute(
            select(
                select(func.min(Ticket.enqueued_at)).scalar_subquery(),
                select(func.min(Case.created_at)).scalar_subquery(),
                select(func.min(Case.concluded_at)).scalar_subquery(),
                select(func.min(CaseEvent.at)).scalar_subquery(),
            )
        )
    ).one()
    known = [local_date(moment) for moment in firsts if moment is not None]
    return min(known, default=None)


# ---------------------------------------------------------------------- reading the rows


def percentile_from_histogram(counts: list[int], maximum: float, q: float) -> float | None:
    """The q-th percentile, read from the histogram: linear inside the bucket that holds the
    q-th rank (as if its values were spread evenly between its edges), capped by the largest
    value seen, so it is always within that bucket. The last bucket ends at ``maximum``."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = HISTOGRAM_EDGES[index - 1] if index > 0 else 0
            upper = HISTOGRAM_EDGES[index] if index < len(HISTOGRAM_EDGES) else maximum
            upper = max(lower, min(upper, maximum))
            return float(lower + (upper - lower) * (rank - seen) / count)
        seen += count
    return float(maximum)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def figures(sums: Mapping[Any, Any]) -> dict[str, Any]:
    """The report figures of one group, from its summed daily rows."""
    tickets, short = sums["tickets"], sums["short_abandons"]
    answered, rated = sums["answered"], sums["ratings"]
    passed = sums["cases_passed"]
    histogram = {
        metric: [sums[f"{metric}_h{i}"] for i in range(_BUCKETS)] for metric in ("wait", "handling")
    }
    return {
        "tickets": tickets,
        "answered": answered,
        "abandoned": sums["abandoned"],
        "short_abandons": short,
        "abandon_rate": _ratio(sums["abandoned"], tickets - short),
        "wait_mean_s": _ratio(sums["wait_sum"], sums["wait_n"]),
        "wait_p90_s": percentile_from_histogram(histogram["wait"], sums["wait_max"], 0.9),
        "handling_mean_s": _ratio(sums["handling_sum"], sums["handling_n"]),
        "handling_p90_s": percentile_from_histogram(
            histogram["handling"], sums["handling_max"], 0.9
        ),
        "service_level": _ratio(sums["within_service_level"], answered),
        "ratings": rated,
        "good_rate": _ratio(rated - sums["bad_ratings"], rated),
        "rating_response_rate": _ratio(rated, answered),
        "trips_saved": answered,
        "cases_opened": sums["cases_opened"],
        "cases_concluded": sums["cases_concluded"],
        "cases_passed_pre_review": passed,
        "correction_rounds_per_case": _ratio(sums["correction_rounds"], passed),
        "first_pass_rate": _ratio(sums["first_pass"], passed),
    }


FIGURES = tuple(figures(_empty_row()))


def _summed() -> list[Any]:
    columns = [
        func.coalesce(func.sum(daily_stats.c[name]), 0).label(name)
        for name in STAT_COUNTERS + STAT_HISTOGRAMS + STAT_SUMS
    ]
    columns += [func.coalesce(func.max(daily_stats.c[n]), 0).label(n) for n in STAT_MAXIMA]
    return columns


def _in_range(stmt: Any, dimension: str, first: date, last: date) -> Any:
    return stmt.where(
        daily_stats.c.dimension == dimension,
        daily_stats.c.day >= first,
        daily_stats.c.day <= last,
    )


async def table(session: AsyncSession, first: date, last: date, by: str) -> list[dict[str, Any]]:
    """One row of figures per group (``by`` one of GROUPS), sorted by the group key."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}")
    if by in ("day", "week", "month"):
        dimension, group = "all", daily_stats.c[by]
    else:
        dimension, group = by, daily_stats.c.key
    stmt = _in_range(select(group.label("group"), *_summed()), dimension, first, last)
    result = await session.execute(stmt.group_by(group).order_by(group))
    out = []
    for row in result.mappings().all():
        key = row["group"]
        out.append({by: key.isoformat() if isinstance(key, date) else key, **figures(row)})
    return out


async def total(session: AsyncSession, first: date, last: date) -> dict[str, Any]:
    stmt = _in_range(select(*_summed()), "all", first, last)
    return figures((await session.execute(stmt)).mappings().one())


async def peak_hours(session: AsyncSession, first: date, last: date) -> list[list[int]]:
    """Arrivals by weekday (rows, Monday first) and hour of day (columns)."""
    grid = [[0] * 24 for _ in range(7)]
    stmt = _in_range(
        select(daily_stats.c.day, daily_stats.c.key, daily_stats.c.tickets), "hour", first, last
    )
    for day, hour, tickets in (await session.execute(stmt)).all():
        grid[day.weekday()][int(hour)] += tickets
    return grid


async def hot_items(
    session: AsyncSession, first: date, last: date, top: int = 10
) -> list[dict[str, Any]]:
    """The items with the most arrivals, with their names."""
    arrivals = func.sum(daily_stats.c.tickets)
    stmt = (
        _in_range(select(daily_stats.c.key, arrivals), "item", first, last)
        .group_by(daily_stats.c.key)
        .order_by(arrivals.desc(), daily_stats.c.key)
        .limit(top)
    )
    rows = (await session.execute(stmt)).all()
    names = dict(
        (
            await session.execute(
                select(ServiceItem.code, ServiceItem.name).where(
                    ServiceItem.code.in_([code for code, _ in rows])
                )
            )
        ).all()
    )
    return [{"code": code, "name": names.get(code, code), "tickets": n} for code, n in rows]


async def group_names(session: AsyncSession, by: str) -> dict[str, str]:
    """Display names of the keys of a grouping (codes and usernames are the keys)."""
    column = {
        "department": (Department.code, Department.name),
        "item": (ServiceItem.code, ServiceItem.name),
        "station": (Station.code, Station.name),
        "staff": (Staff.username, Staff.display_name),
    }.get(by)
    if column is None:
        return {}
    return dict((await session.execute(select(*column))).all())


async def case_progress(session: AsyncSession, today: date, due_soon_days: int) -> dict[str, Any]:
    """Cases by state now, and accepted cases due within ``due_soon_days`` working days or
    overdue by their promised limit."""
    by_state = dict(
        (await session.execute(select(Case.status, func.count()).group_by(Case.status))).all()
    )
    soon_until = workdays.add_working_days(today, due_soon_days).day
    due_soon, overdue = [], []
    for case, limits in await cases.running_limits(session, today):
        if limits.promised_due is None:
            continue
        entry = {
            "number": case.number,
            "item": case.item_name,
            "promised_due": limits.promised_due.isoformat(),
        }
        if limits.promised_due < today:
            overdue.append(entry)
        elif limits.promised_due <= soon_until:
            due_soon.append(entry)
    return {
        "by_state": {state: by_state.get(state, 0) for state in cases.STATES},
        "due_soon": sorted(due_soon, key=lambda e: e["promised_due"]),
        "overdue": sorted(overdue, key=lambda e: e["promised_due"]),
    }
