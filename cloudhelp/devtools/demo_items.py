"""Demo papers on the road: tracked items of the demo cases in every state, moved by the real
rules (registered, packed, dispatched, received, shelved, handed over, sent back), so that the
logistics desk, the station page, the kiosk's 我的材料/证照 and the board are populated. What
happens "now" happens when the hall was last open (demo.sessions_end), as the demo's sessions
do: nothing is picked up or carried at 00:23 on a Saturday."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import segno
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock, workdays
from cloudhelp.core.errors import must_exist
from cloudhelp.devtools.demo import HALL_CLOSES, HALL_OPENS, sessions_end
from cloudhelp.domain.logistics import exceptions, handover, items, runs
from cloudhelp.store import filestore
from cloudhelp.store.models import (
    Case,
    LogisticsRun,
    Staff,
    TrackedItem,
    TrackedItemEvent,
    utcnow,
)

# Who moves them: the hall's desk, the street centre's and the community station's attendants.
DESK, STREET, STATION = "zhaogang", "wujun", "zhouyan"


async def _people(session: AsyncSession) -> dict[str, Staff]:
    rows = await session.scalars(select(Staff).where(Staff.username.in_([DESK, STREET, STATION])))
    found = {s.username: s for s in rows.all()}
    for name in (DESK, STREET, STATION):
        must_exist(found.get(name), f"the sample network's account {name}")
    return found


async def _case(session: AsyncSession, phone: str) -> Case:
    return must_exist(
        await session.scalar(select(Case).where(Case.applicant_phone == phone)),
        f"the demo case of {phone}",
    )


async def _hop(session: AsyncSession, sender: Staff, receiver: Staff, to: str, *codes: str) -> None:
    run = await runs.open_run(session, sender, to)
    for code in codes:
        await runs.add_item(session, sender, run, code)
    await runs.dispatch(session, sender, run)
    await runs.receive(session, receiver, run, list(codes))


def _issued(case: Case | None, latest: datetime) -> datetime:
    """When a certificate was issued: an hour after its case concluded (``None``: a later
    issue), and no later than ``latest``."""
    concluded = case.concluded_at if case is not None else None
    return min(concluded + timedelta(hours=1), latest) if concluded is not None else latest


def _close_after(moment: datetime) -> datetime:
    """When the hall closes on the first working day after ``moment``'s day."""
    day = workdays.add_working_days(clock.local_date(moment), 1).day
    return datetime.combine(day, HALL_CLOSES, clock.LOCAL_TZ).astimezone(UTC)


def _office_moments(start: datetime, end: datetime, count: int) -> list[datetime]:
    """``count`` moments from ``start`` to ``end`` (both kept), those between spread evenly over
    the hall's opening hours of the working days in between: papers are not carried at 03:06.
    Evenly over the whole span when it holds no opening hours."""
    if count < 2:
        return [start][:count]
    windows: list[tuple[datetime, datetime]] = []
    day = start.astimezone(clock.LOCAL_TZ).date()
    while day <= end.astimezone(clock.LOCAL_TZ).date():
        if workdays.is_working_day(day)[0]:
            opens = datetime.combine(day, HALL_OPENS, clock.LOCAL_TZ)
            closes = datetime.combine(day, HALL_CLOSES, clock.LOCAL_TZ)
            if max(opens, start) < min(closes, end):
                windows.append((max(opens, start), min(closes, end)))
        day += timedelta(days=1)
    total = sum(((b - a) for a, b in windows), timedelta())
    moments = [start]
    for n in range(1, count - 1):
        if not total:
            moments.append(start + (end - start) * (n / (count - 1)))
            continue
        left = total * (n / (count - 1))
        for a, b in windows:
            if left <= b - a:
                moments.append(a + left)
                break
            left -= b - a
    return [*moments, end]


async def _dated(
    session: AsyncSession, item: TrackedItem, issued: datetime, ready: datetime
) -> None:
    """Date an item's way to the shelf: registered at ``issued``, shelved at ``ready``, its
    hops between spread over the hall's opening hours (its events, the runs that carried it,
    the item itself)."""
    events = list(
        (
            await session.scalars(
                select(TrackedItemEvent)
                .where(TrackedItemEvent.item_id == item.id)
                .order_by(TrackedItemEvent.id)
            )
        ).all()
    )
    last = next(n for n, e in enumerate(events) if e.to_state == "ready")
    carried: dict[int, list[datetime]] = {}
    for event, at in zip(events[: last + 1], _office_moments(issued, ready, last + 1), strict=True):
        event.at = at
        if event.run_id is not None:
            carried.setdefault(event.run_id, []).append(event.at)
    item.created_at, item.ready_at = issued, ready
    for run_id, moments in carried.items():
        run = await session.get(LogisticsRun, run_id)
        if run is None:
            continue
        run.created_at = moments[0]
        if run.dispatched_at is not None:
            run.dispatched_at = moments[min(1, len(moments) - 1)]
        if run.received_at is not None:
            run.received_at = moments[-1]
    await session.flush()


def signature_png() -> bytes:
    """A stand-in for a signature drawn on the screen."""
    out = io.BytesIO()
    segno.make("陈丽华", error="h").save(out, kind="png", scale=5, dark="#1b1f24")
    return out.getvalue()


async def _moved_back(session: AsyncSession, since: datetime, to: datetime) -> None:
    """What the rules stamped from ``since`` (the real time of loading) until now, moved back
    to end at ``to``, in the same order: the items, their events and the runs that carried
    them."""
    shift = utcnow() - to
    if to >= since:
        return
    stamped: tuple[tuple[Any, tuple[str, ...]], ...] = (
        (TrackedItem, ("created_at", "ready_at", "finished_at", "exception_at")),
        (TrackedItemEvent, ("at",)),
        (LogisticsRun, ("created_at", "dispatched_at", "received_at")),
    )
    for model, columns in stamped:
        for row in (await session.scalars(select(model))).all():
            for column in columns:
                at = getattr(row, column)
                if at is not None and at >= since:
                    setattr(row, column, at - shift)
    await session.flush()


async def seed_items(session: AsyncSession, data_dir: Path, now: datetime | None = None) -> int:
    """Items in every state (once: nothing happens if any item exists), as if loaded at ``now``
    (default: now); how many were made."""
    if await session.scalar(select(TrackedItem.id).limit(1)) is not None:
        return 0
    p = await _people(session)
    desk, street, station = p[DESK], p[STREET], p[STATION]
    started = utcnow()  # what the rules stamp is moved back from here (_moved_back)
    # The papers' "now": now while the hall is open, else when it last closed.
    now = sessions_end(now or started)
    concluded = await _case(session, "13840000005")  # 赵永强: certificate waiting at the station
    delivered = await _case(session, "13840000006")  # 陈丽华: certificate picked up
    accepted = await _case(session, "13840000004")  # 李建国: originals checked and going back
    waiting = await _case(session, "13840000003")  # 张小梅: originals on their way in
    first = await _case(session, "13840000001")  # 刘海生

    async def make(case: Case, kind: str, staff: Staff, text: str) -> TrackedItem:
        return await items.register(session, staff, case, kind, text)

    # Certificates down to 前关驿站: one handed over (signed), one on the shelf, one overdue on the
    # shelf, one on the road to the street centre, one still at the hall. Those shelved were
    # issued days before (when their case concluded, or later); 陈丽华's was picked up "now",
    # days after it was issued.
    picked = await make(delivered, "certificate", desk, "营业执照（正本、副本）")
    ready = await make(concluded, "certificate", desk, "道路运输经营许可证")
    overdue = await make(concluded, "certificate", desk, "道路运输证（副本）")
    for item in (picked, ready, overdue):
        await _hop(session, desk, street, "DLW", item.code)
        await _hop(session, street, station, "DLW-QG", item.code)
    for item, case, shelved in ((picked, delivered, 2), (ready, None, 1), (overdue, concluded, 16)):
        await handover.make_ready(session, station, item)
        # At a close of the hall on a working day (the day before, when that one was not), and
        # not before the working day after its case concluded (a weekend between "2 days ago"
        # and "4 days ago" put both on one Friday: the licence was issued before its case
        # concluded), nor after now.
        on_shelf = sessions_end(now - timedelta(days=shelved))
        if case is not None and case.concluded_at is not None:
            on_shelf = min(max(on_shelf, _close_after(case.concluded_at)), now)
        latest = sessions_end(on_shelf - timedelta(days=1))
        await _dated(session, item, _issued(case, latest), on_shelf)
    sha = filestore.store_bytes(data_dir, signature_png())
    await handover.hand_over(session, station, picked, pickup_code=picked.pickup_code,
                             id_last4=delivered.applicant_id_number[-4:], signature_sha256=sha,
                             collected_by=delivered.applicant_name)  # fmt: skip
    on_road = await make(concluded, "certificate", desk, "道路运输证（正本）")
    road = await runs.open_run(session, desk, "DLW")
    await runs.add_item(session, desk, road, on_road.code)
    await runs.dispatch(session, desk, road)
    await make(concluded, "certificate", desk, "从业资格证")  # registered, waiting at the hall
    coming = await make(concluded, "certificate", desk, "道路运输证（IC 卡）")
    await _hop(session, desk, street, "DLW", coming.code)
    down = await runs.open_run(session, street, "DLW-QG")  # arriving at 前关驿站 today
    await runs.add_item(session, street, down, coming.code)
    await runs.dispatch(session, street, down)

    # Originals: collected at 前关驿站 for checking at the hall, and their way back.
    at_hall = await make(accepted, "originals_in", station, "房屋权属证明原件")
    await _hop(session, station, street, "DLW", at_hall.code)
    await _hop(session, street, desk, "GJZ-HALL", at_hall.code)
    back = await make(accepted, "originals_back", desk, "房屋权属证明原件（退还）")
    await _hop(session, desk, street, "DLW", back.code)  # received at the street centre
    await make(waiting, "originals_in", station, "营业执照原件")  # registered at the station
    # Exceptions: one not collected sent back to the hall (赵永强's originals, returned while his
    # case ran), one damaged waiting to go back, one lost. Reported at the real time, like every
    # move here: all are moved back together at the end, in order.
    returned = await make(concluded, "originals_back", desk, "道路运输经营申请材料原件（退还）")
    await _hop(session, desk, street, "DLW", returned.code)
    await _hop(session, street, station, "DLW-QG", returned.code)
    await handover.make_ready(session, station, returned)
    await _dated(session, returned, sessions_end(now - timedelta(days=22)),
                 sessions_end(now - timedelta(days=20)))  # fmt: skip
    await exceptions.report(session, station, returned, "not_collected", reason="20 天未领取",
                            responsible=station.display_name, now=utcnow(),
                            pickup_days=14)  # fmt: skip
    await _hop(session, station, street, "DLW", returned.code)
    await _hop(session, street, desk, "GJZ-HALL", returned.code)
    damaged = await make(first, "originals_in", station, "身份证复印件（受潮）")
    await _hop(session, station, street, "DLW", damaged.code)
    await exceptions.report(session, street, damaged, "damaged", reason="运送途中受潮，需退回大厅",
                            responsible=street.display_name, now=utcnow(),
                            pickup_days=14)  # fmt: skip
    lost = await make(waiting, "originals_in", station, "租赁合同原件")
    road_in = await runs.open_run(session, station, "DLW")
    await runs.add_item(session, station, road_in, lost.code)
    await runs.dispatch(session, station, road_in)
    await exceptions.report(session, station, lost, "lost", reason="交接后未到达街道中心",
                            responsible=street.display_name, now=utcnow(), pickup_days=14,
                            run_ends=(road_in.from_id, road_in.to_id))  # fmt: skip
    await session.flush()
    await _moved_back(session, since=started, to=now)
    return len((await session.scalars(select(TrackedItem.id))).all())
