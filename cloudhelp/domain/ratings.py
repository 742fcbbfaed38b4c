"""Ratings (好差评) on the five national levels, and follow-ups (回访整改) of bad ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core import clock, workdays
from cloudhelp.core.clock import iso
from cloudhelp.core.errors import CodedError
from cloudhelp.store.models import FollowUp, Rating, Staff, Ticket

LEVELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD_LEVELS = (1, 2)
# Reasons a resident can tick on a bad rating (the 好差评 system's common categories).
BAD_REASONS = (
    "等待时间长",
    "工作人员态度不好",
    "解答不清楚",
    "材料要求不一致",
    "视频或声音不清楚",
    "其他",
)
FOLLOW_UP_WORKING_DAYS = 5
# How a session's rating ended: a level given, the resident declined (跳过), or no answer
# before the kiosk went home by itself.
OUTCOMES = ("rated", "declined", "no_answer")


class RatingError(CodedError):
    """A refused rating."""


async def rate(
    session: AsyncSession,
    ticket: Ticket,
    level: int | None,
    reasons: list[str],
    follow_up_days: int = FOLLOW_UP_WORKING_DAYS,
    outcome: str | None = None,
    rated_at: datetime | None = None,
) -> tuple[Rating, FollowUp | None]:
    """Record one rating per session: a level (outcome ``rated``), or explicitly none.

    ``level`` None without an ``outcome`` means the resident declined. ``rated_at`` (now
    unless given: the demo's past sessions) dates the rating, and a follow-up is due
    ``follow_up_days`` working days after that day.
    """
    rated_at = rated_at or clock.utcnow()
    outcome = outcome or ("rated" if level is not None else "declined")
    if outcome not in OUTCOMES:
        raise RatingError("bad_outcome", "A rating's outcome is rated, declined or no_answer.")
    if (outcome == "rated") != (level is not None):
        raise RatingError(
            "bad_outcome", "A rated session has a level; a declined or unanswered one has none."
        )
    if ticket.status not in ("wrapup", "completed") or ticket.connected_at is None:
        raise RatingError("not_rateable", "Only a session that took place can be rated.")
    if await session.scalar(select(Rating).where(Rating.ticket_id == ticket.id)) is not None:
        raise RatingError("already_rated", "This session has already been rated.")
    if level is not None and level not in LEVELS:
        raise RatingError("bad_level", "A rating is 1 (非常不满意) to 5 (非常满意).")
    unknown = [r for r in reasons if r not in BAD_REASONS]
    if unknown or (reasons and level not in BAD_LEVELS):
        raise RatingError("bad_reasons", "Reasons are ticked only on a bad rating, from the list.")
    rating = Rating(
        ticket_id=ticket.id,
        case_id=ticket.case_id,
        staff_id=ticket.staff_id,
        level=level,
        reasons=list(reasons),
        outcome=outcome,
        created_at=rated_at,
    )
    session.add(rating)
    await session.flush()
    follow_up = None
    if level in BAD_LEVELS:
        supervisor = await session.scalar(
            select(Staff)
            .where(Staff.role == "supervisor", Staff.active.is_(True))
            .order_by(Staff.id)
        )
        due = workdays.add_working_days(clock.today(rated_at), follow_up_days)
        follow_up = FollowUp(
            rating_id=rating.id,
            assignee_id=supervisor.id if supervisor else None,
            due_date=due.day,
            due_estimated=due.estimated,
        )
        session.add(follow_up)
        await session.flush()
    return rating, follow_up


def follow_up_json(follow_up: FollowUp, rating: Rating, ticket: Ticket) -> dict[str, Any]:
    today = clock.today()
    return {
        "id": follow_up.id,
        "ticket": {"id": ticket.id, "number": ticket.number, "item": ticket.item.name},
        "level": {"value": rating.level, "label": LEVELS.get(rating.level or 0)},
        "reasons": rating.reasons,
        "due_date": follow_up.due_date.isoformat(),
        "due_estimated": follow_up.due_estimated,
        "overdue": follow_up.closed_at is None and follow_up.due_date < today,
        "closed_at": iso(follow_up.closed_at),
        "closed_by": follow_up.closed_by,
        "note": follow_up.note,
    }
