"""Realistic past activity for the demo and the report benchmark (``cloudhelp demo --history``).

The shape of a district's year: working days only, Mondays busiest, a morning peak and a
smaller afternoon one, fishing-licence renewals crowding July and August before the fishing
season opens on 1 September, a few abandons (some of them a mistaken tap), mostly good
ratings with some bad ones, and a case opened in about a third of the sessions, most passing
pre-review at the first try, and each bad rating's follow-up. History stops at a moment
(now, by default): today's closed sessions count in today's figures, recent cases are still
under way (some due soon or overdue) and a few follow-ups are late — so the board has warnings.
Everything is drawn from one seeded generator: the same seed gives the same history.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import workdays
from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import cases, netquality, queue
from cloudhelp.domain.ratings import BAD_REASONS, FOLLOW_UP_WORKING_DAYS
from cloudhelp.store.db import Database
from cloudhelp.store.models import (
    Call,
    CallQuality,
    Case,
    CaseEvent,
    Category,
    CorrectionNotice,
    FollowUp,
    Kiosk,
    Rating,
    ServiceItem,
    Staff,
    StaffSkill,
    Station,
    Ticket,
    TicketEvent,
)

# Monday first. A weekend is worked only when the calendar swaps it for a holiday (调休上班):
# then as a Friday.
WEEKDAY_LOAD = (1.35, 1.1, 1.0, 0.95, 0.9, 0.9, 0.9)
# Arrivals per half hour from 08:30 to 17:30 (the hall closes 12:00–13:30).
HALF_HOURS = {
    (8, 30): 5, (9, 0): 9, (9, 30): 10, (10, 0): 9, (10, 30): 7, (11, 0): 5, (11, 30): 3,
    (13, 30): 4, (14, 0): 6, (14, 30): 7, (15, 0): 6, (15, 30): 5, (16, 0): 4, (16, 30): 3,
    (17, 0): 1,
}  # fmt: skip
RATING_LEVELS = (5, 4, 3, 2, 1)
RATING_WEIGHTS = (70, 17, 6, 4, 3)
FISHING_DEPARTMENT = "NYNC"
# The station on a weak link (a 4G router in a village): longer round trips, some loss, more
# calls relayed through TURN; the reports' call quality shows it apart from the others.
WEAK_LINK_STATION = "YCZ-SG"
_OPTIONAL = ("staff_id", "connected_at", "offered_at", "ended_at", "wrapup_done_at", "closed_at",
             "end_reason", "outcome")  # fmt: skip


class _Ids:
    """Ids handed out here, so that rows go in as one fast executemany without RETURNING."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    async def take(self, session: AsyncSession, table: Any, count: int) -> list[int]:
        if table.name not in self._next:
            top = await session.scalar(select(func.max(table.c.id)))
            self._next[table.name] = (top or 0) + 1
        first = self._next[table.name]
        self._next[table.name] = first + count
        return list(range(first, first + count))

    async def advance_sequences(self, session: AsyncSession) -> None:
        """PostgreSQL's id sequences must learn of the ids used here."""
        if session.get_bind().dialect.name != "postgresql":
            return
        for table in self._next:
            await session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )


@dataclass(frozen=True)
class _World:
    items: list[ServiceItem]
    categories: dict[int, Category]
    kiosks: list[Kiosk]
    staff_by_item: dict[int, list[int]]  # who may answer each item, as routing does
    all_staff: list[int]
    usernames: dict[int, str]
    supervisor: int | None
    weak_link_stations: frozenset[int]
    ids: _Ids


async def _world(session: AsyncSession) -> _World:
    items = list((await session.scalars(select(ServiceItem).order_by(ServiceItem.id))).all())
    kiosks = list((await session.scalars(select(Kiosk).order_by(Kiosk.id))).all())
    if not items or not kiosks:
        raise ValueError("Load the catalog and the station network first (cloudhelp demo).")
    categories = {c.id: c for c in (await session.scalars(select(Category))).all()}
    # A skill covers a whole department or one item (chenjing: 卫健, 人社 and two 市场监管
    # items): a ticket is answered by someone whose skills cover its item, never by anyone of
    # a department one of whose items they handle.
    by_item: dict[int, list[int]] = defaultdict(list)
    for skill in (await session.scalars(select(StaffSkill))).all():
        for item in items:
            covered = item.id == skill.item_id or item.department_id == skill.department_id
            if covered and skill.staff_id not in by_item[item.id]:
                by_item[item.id].append(skill.staff_id)
    every = sorted({s for ids in by_item.values() for s in ids})
    if not every:
        raise ValueError("No staff member handles any department: add staff first.")
    usernames = dict((await session.execute(select(Staff.id, Staff.username))).all())
    supervisor = await session.scalar(
        select(Staff.id).where(Staff.role == "supervisor").order_by(Staff.id).limit(1)
    )
    weak = frozenset(
        (await session.scalars(select(Station.id).where(Station.code == WEAK_LINK_STATION))).all()
    )
    return _World(
        items, categories, kiosks, dict(by_item), every, usernames, supervisor, weak, _Ids()
    )


def _item_weights(items: Sequence[ServiceItem], day: date) -> list[float]:
    """Popular items first; fishing items swell in July and August."""
    weights = []
    for rank, item in enumerate(items):
        weight = 1.0 / (1 + rank % 17)
        if item.department.code == FISHING_DEPARTMENT:
            weight *= 6.0 if day.month in (7, 8) else 1.0
        weights.append(weight)
    return weights


def _arrival(rng: random.Random, day: date) -> datetime:
    ((hour, minute),) = rng.choices(list(HALF_HOURS), weights=list(HALF_HOURS.values()))
    start = datetime.combine(day, time(hour, minute), LOCAL_TZ)
    return start + timedelta(seconds=rng.uniform(0, 1800))


def _on_duty(moment: datetime, rng: random.Random) -> datetime:
    """``moment`` if the hall is open then (a working day, 9:00 to 17:00), else a moment in the
    first two and a half hours of the next working day: a correction comes back, and a case is
    accepted, while staff are there (a Sunday's passes read as work nobody did)."""
    local = moment.astimezone(LOCAL_TZ)
    day = local.date()
    if workdays.is_working_day(day)[0] and time(9) <= local.time() < time(17):
        return moment
    if local.time() >= time(9) or not workdays.is_working_day(day)[0]:
        day = workdays.add_working_days(day, 1).day
    return datetime.combine(day, time(9), LOCAL_TZ) + timedelta(minutes=rng.uniform(0, 150))


def _id_number(rng: random.Random) -> str:
    first17 = f"210211{rng.randint(1945, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 += f"{rng.randint(0, 999):03d}"
    return first17 + cases.id_check_character(first17)


async def _insert(
    session: AsyncSession, ids: _Ids, table: Any, rows: list[dict[str, Any]]
) -> list[int]:
    if not rows:
        return []
    taken = await ids.take(session, table, len(rows))
    for row, row_id in zip(rows, taken, strict=True):
        row["id"] = row_id
    await session.execute(insert(table), rows)
    return taken


async def _generate_day(
    session: AsyncSession,
    world: _World,
    rng: random.Random,
    day: date,
    tickets_per_day: float,
    district: str,
    until: datetime,
) -> int:
    if not workdays.is_working_day(day)[0]:
        return 0
    load = WEEKDAY_LOAD[day.weekday()] * tickets_per_day * rng.uniform(0.85, 1.15)
    count = max(1, round(load))
    chosen = rng.choices(world.items, weights=_item_weights(world.items, day), k=count)
    arrivals = sorted(_arrival(rng, day) for _ in range(count))
    tickets, outcomes = [], []
    busy = count / max(1, len(world.all_staff)) / 40  # > 1 when the day outruns the staff
    for item, enqueued in zip(chosen, arrivals, strict=True):
        row, outcome = _ticket(world, rng, day, item, enqueued, busy)
        if row["closed_at"] > until:
            continue  # still under way at ``until``: live tickets come from real kiosks
        tickets.append(row)
        outcomes.append(outcome)
    await _number_tickets(session, world, day, tickets)
    ids = await _insert(session, world.ids, Ticket.__table__, tickets)

    events, ratings, new_cases = _served(rng, ids, tickets, outcomes)
    await _insert(session, world.ids, TicketEvent.__table__, events)
    await _calls(session, world, rng, ids, tickets)
    await _insert(session, world.ids, Rating.__table__, ratings)
    await _follow_ups(session, world, rng, ratings, until)
    await _cases(session, world, rng, day, new_cases, district, until)
    return len(tickets)


def _ticket(
    world: _World, rng: random.Random, day: date, item: ServiceItem, enqueued: datetime, busy: float
) -> tuple[dict[str, Any], tuple[int, ServiceItem] | None]:
    """One ticket of the day as a row, and who served which item (None: not served)."""
    kiosk = rng.choice(world.kiosks)
    staff_pool = world.staff_by_item.get(item.id) or world.all_staff
    wait = rng.expovariate(1 / (45 + 150 * busy * (1.4 if enqueued.hour < 11 else 1.0)))
    row: dict[str, Any] = {
        "day": day.isoformat(), "category_id": item.category_id,
        "item_id": item.id, "department_id": item.department_id,
        "station_id": kiosk.station_id, "kiosk_id": kiosk.id, "enqueued_at": enqueued,
        "offer_count": 0, "note": "", **dict.fromkeys(_OPTIONAL),
    }  # fmt: skip
    fate = rng.random()
    if fate < 0.02:  # a mistaken tap, cancelled within seconds
        tapped = enqueued + timedelta(seconds=rng.uniform(1, 8))
        row |= {"status": "cancelled", "closed_at": tapped, "end_reason": "resident_cancelled"}
        outcome = None
    elif fate < 0.02 + min(0.25, 0.04 + wait / 3000):  # gave up waiting
        gave_up = enqueued + timedelta(seconds=min(wait, rng.uniform(60, 900)))
        status = rng.choice(("cancelled", "abandoned"))
        row |= {"status": status, "closed_at": gave_up, "end_reason": "resident_left"}
        outcome = None
    else:
        connected = enqueued + timedelta(seconds=wait)
        handling = min(3600.0, rng.lognormvariate(math.log(420), 0.5))
        ended = connected + timedelta(seconds=handling)
        wrapped = ended + timedelta(seconds=rng.uniform(15, 60))
        staff_id = rng.choice(staff_pool)
        row |= {"status": "completed", "staff_id": staff_id, "connected_at": connected,
                "offered_at": connected - timedelta(seconds=rng.uniform(2, 12)),
                "offer_count": 1, "ended_at": ended, "wrapup_done_at": wrapped,
                "closed_at": wrapped, "end_reason": "hangup",
                "outcome": "resolved"}  # fmt: skip
        outcome = (staff_id, item)
    return row, outcome


def _served(
    rng: random.Random,
    ids: list[int],
    tickets: list[dict[str, Any]],
    outcomes: list[tuple[int, ServiceItem] | None],
) -> tuple[
    list[dict[str, Any]], list[dict[str, Any]], list[tuple[int, ServiceItem, dict[str, Any]]]
]:
    """The served tickets' offer events, ratings, and the sessions that open a case."""
    events: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    new_cases: list[tuple[int, ServiceItem, dict[str, Any]]] = []
    for ticket_id, row, outcome in zip(ids, tickets, outcomes, strict=True):
        if outcome is None:
            continue
        staff_id, item = outcome
        events.append({"ticket_id": ticket_id, "at": row["offered_at"], "kind": "offered",
                       "staff_id": staff_id, "detail": {}})  # fmt: skip
        if rng.random() < 0.85:
            level = rng.choices(RATING_LEVELS, weights=RATING_WEIGHTS)[0]
            waited_long = row["connected_at"] - row["enqueued_at"] > timedelta(minutes=8)
            if waited_long and level > 2:
                level -= rng.choice((0, 1, 2))  # long waits sour the rating
            reasons = _bad_reasons(ticket_id, waited_long) if level <= 2 else []
            ratings.append({"ticket_id": ticket_id, "staff_id": staff_id, "level": level,
                            "reasons": reasons, "created_at": row["closed_at"]})  # fmt: skip
        if rng.random() < 0.35:
            new_cases.append((staff_id, item, row))
    return events, ratings, new_cases


def _bad_reasons(ticket_id: int, waited_long: bool) -> list[str]:
    """A bad rating's reasons as residents tick them: a long wait says so, and most name one
    or two of the others. Drawn from the ticket's own generator, so the history's main one (and
    every figure after it) is the same as without reasons."""
    pick = random.Random(ticket_id)
    reasons = ["等待时间长"] if waited_long else []
    others = [r for r in BAD_REASONS if r not in reasons]
    count = pick.choice((0, 1, 1, 2)) if waited_long else pick.choice((1, 1, 2))
    reasons += pick.sample(others, count)
    return [r for r in BAD_REASONS if r in reasons]  # in the list's order


async def _calls(
    session: AsyncSession, world: _World, rng: random.Random, ids: list[int],
    tickets: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Each served ticket's call, and both sides' media figures over it (as ``call.stats``
    summaries leave them): good links mostly, the weak-link station's longer and lossier."""
    served = [(i, row) for i, row in zip(ids, tickets, strict=True) if row["status"] == "completed"]
    calls = [
        {"ticket_id": i, "staff_id": row["staff_id"], "kiosk_id": row["kiosk_id"],
         "started_at": row["connected_at"], "ended_at": row["ended_at"], "end_reason": "hangup"}
        for i, row in served
    ]  # fmt: skip
    call_ids = await _insert(session, world.ids, Call.__table__, calls)
    figures = []
    for call_id, (ticket_id, row) in zip(call_ids, served, strict=True):
        weak = row["station_id"] in world.weak_link_stations
        relay = rng.random() < (0.3 if weak else 0.04)
        seconds = (row["ended_at"] - row["connected_at"]).total_seconds()
        for side in ("kiosk", "staff"):
            rtt = rng.lognormvariate(math.log(240 if weak else 45), 0.35) + (25 if relay else 0)
            loss = rng.uniform(0.005, 0.09) if weak else rng.uniform(0, 0.008)
            fps = rng.uniform(8, 15) if weak else rng.uniform(14, 15)
            medians = {"rtt_ms": round(rtt, 1), "loss": round(loss, 4), "fps": round(fps, 1)}
            level = netquality.sample_level(medians)
            figures.append({
                "call_id": call_id, "ticket_id": ticket_id, "side": side,
                "samples": max(1, int(seconds // 5)), "rtt_median_ms": medians["rtt_ms"],
                "rtt_worst_ms": round(rtt * rng.uniform(1.3, 3.0), 1),
                "loss_median": medians["loss"], "loss_worst": round(min(1.0, loss * 3), 4),
                "fps_median": medians["fps"], "fps_worst": round(fps * rng.uniform(0.4, 0.9), 1),
                "freezes": rng.choice((0, 0, 1, 2)) if weak else 0,
                "poor_samples": int(seconds // 5 * rng.uniform(0.3, 0.8)) if level == "poor" else 0,
                "relay": relay, "level": level,
            })  # fmt: skip
    await _insert(session, world.ids, CallQuality.__table__, figures)


async def _number_tickets(
    session: AsyncSession, world: _World, day: date, tickets: list[dict[str, Any]]
) -> None:
    """Number the day's tickets in order of arrival from the same counter as live tickets
    (``queue.reserve_numbers``), so a kiosk taking a ticket later that day gets the next one."""
    by_category: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in tickets:
        by_category[row.pop("category_id")].append(row)
    for category_id, rows in by_category.items():
        category = world.categories[category_id]
        first = await queue.reserve_numbers(session, day.isoformat(), category, len(rows))
        for offset, row in enumerate(rows):
            row["number"] = queue.ticket_number(category.letter, first + offset)


# Corrected materials back: the case's next round of pre-review (cases.move).
_BACK_TO_REVIEW = ("correction_needed", "pre_review")


async def _cases(
    session: AsyncSession,
    world: _World,
    rng: random.Random,
    day: date,
    opened: list[tuple[int, ServiceItem, dict[str, Any]]],
    district: str,
    until: datetime,
) -> None:
    """Cases opened in the day's sessions: most pass pre-review at once, some after one or two
    correction notices; passed ones are accepted and concluded within their promised limit.
    Only what happened before ``until`` is recorded, so recent cases are still under way."""
    if not opened:  # (an empty executemany below is refused)
        return
    rows, timelines = [], []
    # Numbered as the day's live cases are (a resident can look each one up at the kiosk);
    # cases opened later that day follow on.
    numbers = await cases.reserve_numbers(session, district, day, len(opened))
    for number, (staff_id, item, ticket) in zip(numbers, opened, strict=True):
        created = ticket["connected_at"] + timedelta(minutes=2)
        steps: list[tuple[str | None, str, datetime]] = [(None, "pre_review", created)]
        at = created
        for _ in range(rng.choices((0, 1, 2), weights=(70, 24, 6))[0]):
            issued = at + timedelta(minutes=5)
            back = _on_duty(issued + timedelta(days=rng.uniform(0.5, 4)), rng)
            steps += [("pre_review", "correction_needed", issued),
                      ("correction_needed", "pre_review", back)]  # fmt: skip
            at = back
        passed = at + timedelta(minutes=rng.uniform(10, 60))
        accepted = _on_duty(passed + timedelta(hours=rng.uniform(1, 30)), rng)
        # Concluded on a working day, in office hours: within the promised limit (from 40 %
        # of it to all of it), a few late by one to four working days.
        promised = math.ceil(item.promised_days)
        used = rng.randint(math.ceil(promised * 0.4), promised)
        if rng.random() < 0.04:
            used = promised + rng.randint(1, 4)
        day = workdays.add_working_days(accepted.astimezone(LOCAL_TZ).date(), used).day
        concluded = datetime.combine(day, time(9), LOCAL_TZ) + timedelta(hours=rng.uniform(0, 8))
        steps += [
            ("pre_review", "awaiting_acceptance", passed),
            ("awaiting_acceptance", "accepted", accepted),
            ("accepted", "concluded", max(concluded, accepted + timedelta(hours=2))),
        ]
        happened = [step for step in steps if step[2] <= until]
        reached = {to: at for _from, to, at in happened}
        rows.append({
            "number": number, "item_id": item.id,
            "station_id": ticket["station_id"], "staff_id": staff_id,
            "applicant_name": f"居民{rng.randint(1000, 9999)}",
            "applicant_phone": f"139{rng.randint(0, 99_999_999):08d}",
            "applicant_id_number": _id_number(rng), "status": happened[-1][1],
            "rounds": 1 + sum(1 for step in happened if step[:2] == _BACK_TO_REVIEW),
            "created_at": created, "accepted_at": reached.get("accepted"),
            "concluded_at": reached.get("concluded"), "not_accepted_reason": "",
        })  # fmt: skip
        timelines.append((staff_id, happened))
    case_ids = await _insert(session, world.ids, Case.__table__, rows)
    # Each case's session is the ticket it was opened in, and that session's rating is about
    # the case, as a live call records them: the case page lists the session with its rating,
    # and a bad rating's follow-up reaches the applicant's phone through the case.
    links = [
        {"opened_in": ticket["id"], "opened": case_id}
        for (_staff, _item, ticket), case_id in zip(opened, case_ids, strict=True)
    ]
    tickets, ratings = cast(Table, Ticket.__table__), cast(Table, Rating.__table__)
    for link in (
        update(tickets).where(tickets.c.id == bindparam("opened_in")),
        update(ratings).where(ratings.c.ticket_id == bindparam("opened_in")),
    ):
        await session.execute(link.values(case_id=bindparam("opened")), links)
    events: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    for case_id, (staff_id, happened) in zip(case_ids, timelines, strict=True):
        actor = world.usernames[staff_id]
        round_now = 1  # as cases.move counts: corrected materials start the next round
        for from_state, to_state, at in happened:
            events.append({"case_id": case_id, "from_state": from_state, "to_state": to_state,
                           "at": at, "actor": actor, "reason": ""})  # fmt: skip
            if to_state == "correction_needed":
                notices.append({"case_id": case_id, "round": round_now, "issued_at": at,
                                "issued_by": actor, "items": []})  # fmt: skip
            elif (from_state, to_state) == _BACK_TO_REVIEW:
                round_now += 1
    await _insert(session, world.ids, CaseEvent.__table__, events)
    await _insert(session, world.ids, CorrectionNotice.__table__, notices)


async def _follow_ups(
    session: AsyncSession,
    world: _World,
    rng: random.Random,
    ratings: list[dict[str, Any]],
    until: datetime,
) -> None:
    """Each bad rating's follow-up (回访整改): most closed within days, a few left open."""
    rows = []
    for rating in ratings:
        if rating["level"] > 2:
            continue
        rated = rating["created_at"]
        due = workdays.add_working_days(rated.astimezone(LOCAL_TZ).date(), FOLLOW_UP_WORKING_DAYS)
        closed = rated + timedelta(days=rng.uniform(0.2, 6))
        done = closed <= until and rng.random() < 0.97
        rows.append({
            "rating_id": rating["id"], "assignee_id": world.supervisor, "due_date": due.day,
            "due_estimated": due.estimated, "closed_at": closed if done else None,
            "closed_by": world.usernames.get(world.supervisor or 0) if done else None,
            "note": "已电话回访，说明情况并致歉" if done else "",
        })  # fmt: skip
    await _insert(session, world.ids, FollowUp.__table__, rows)


async def generate(
    database: Database,
    days: int,
    *,
    tickets_per_day: float = 160,
    until: datetime | None = None,
    seed: int = 2026,
    district: str = "210211",
) -> int:
    """Add the ``days`` local days before ``until`` (now by default) and that day up to
    ``until``, one transaction per day; days that already have tickets are left alone. Returns
    the number of tickets."""
    until = until or datetime.now(LOCAL_TZ)
    last = until.astimezone(LOCAL_TZ).date()
    rng = random.Random(seed)
    async with database.read() as s:
        world = await _world(s)
    total = 0
    for offset in range(days, -1, -1):
        day = last - timedelta(days=offset)
        async with database.write() as s:
            if await s.scalar(select(Ticket.id).where(Ticket.day == day.isoformat()).limit(1)):
                continue
            total += await _generate_day(s, world, rng, day, tickets_per_day, district, until)
    async with database.write() as s:
        await world.ids.advance_sequences(s)
    return total
