"""The outcome a session's wrap-up proposes, and records when the wrap-up times out.

One rule, used by the server: the proposal travels to the console in the ``wrapup`` frame,
and a wrap-up that ends without the staff member's choice (timeout, console gone) records it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.models import CaseEvent, Ticket

# What the case's last change during the session says happened.
OUTCOME_OF_CASE_STATE = {
    "correction_needed": "needs_correction",
    "awaiting_acceptance": "resolved",
    "accepted": "resolved",
    "concluded": "resolved",
    "delivered": "resolved",
    "not_accepted": "other",
}
NEUTRAL_OUTCOME = "other"


def outcome_of(end_reason: str | None, case_state_in_session: str | None) -> str:
    """The outcome implied by why the call ended and the case's last change in the session.

    A transfer is ``referred``; a notice issued → ``needs_correction``; a pass, acceptance or
    conclusion → ``resolved``; anything else (no case change, a refusal) → ``other``.
    """
    if end_reason == "transferred":
        return "referred"
    return OUTCOME_OF_CASE_STATE.get(case_state_in_session or "", NEUTRAL_OUTCOME)


async def proposed_outcome(session: AsyncSession, ticket: Ticket, end_reason: str | None) -> str:
    """The outcome :func:`outcome_of` gives ``ticket``'s session, read from its case events."""
    state = None
    if ticket.case_id is not None and ticket.connected_at is not None:
        state = await session.scalar(
            select(CaseEvent.to_state)
            .where(CaseEvent.case_id == ticket.case_id, CaseEvent.at >= ticket.connected_at)
            .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
            .limit(1)
        )
    return outcome_of(end_reason, state)
