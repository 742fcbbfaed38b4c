"""Pre-review (材料预审): the material checklist of a round, the verdict, the correction notice.

Administrative Licensing Law art. 32: when materials are incomplete or not in the legal form,
the applicant is told everything that must be corrected at once. A verdict of
``correction_needed`` therefore issues one notice listing every material marked as needing
correction or missing in that round.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain import cases, notice_text, queue
from cloudhelp.domain.logistics.pickup import pickup_station
from cloudhelp.store.models import (
    Case,
    CorrectionNotice,
    MaterialCheck,
    Staff,
    Ticket,
    TicketEvent,
    utcnow,
)

CHECK_STATES = {
    "ok": "合格",
    "needs_correction": "需补正",
    "missing": "缺少",
    "not_applicable": "不适用",
}
VERDICTS = ("passed", "correction_needed", "not_accepted")
TO_CORRECT = ("needs_correction", "missing")


async def checklist(
    session: AsyncSession, case: Case, round_: int | None = None
) -> list[dict[str, Any]]:
    """Every material of the case's item with its result in the round (default: current)."""
    round_ = round_ or case.rounds
    checks = {
        c.material_id: c
        for c in (
            await session.scalars(
                select(MaterialCheck).where(
                    MaterialCheck.case_id == case.id, MaterialCheck.round == round_
                )
            )
        ).all()
    }
    rows = []
    for material in case.item.materials:
        check = checks.get(material.id)
        rows.append(
            {
                "position": material.position,
                "name": material.name,
                "requirement": material.requirement,
                "form": material.form,
                "copies": material.copies,
                "common_mistakes": material.common_mistakes,
                "status": check.status if check else None,
                "status_label": CHECK_STATES[check.status] if check else None,
                "reason": check.reason if check else "",
                "files": check.file_ids if check else [],
            }
        )
    return rows


async def start_correction_round(
    session: AsyncSession, ticket_id: int, staff_id: int, actor: str
) -> int | None:
    """A correction session was answered: the case waiting for corrections goes back to
    pre-review in a new round (``correction_needed → pre_review``, rounds + 1), recorded on the
    case and on the session. Returns the new round, or None when the ticket starts no round."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or ticket.case_id is None:
        return None
    opened_here = await session.scalar(
        select(TicketEvent.id).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "case_opened"
        )
    )
    if opened_here is not None:  # a first session transferred after its notice: no new materials
        return None
    case = await session.get(Case, ticket.case_id)
    if case is None or case.status != "correction_needed":
        return None
    await cases.transition(
        session, case, "pre_review", actor, f"补正会话 {ticket.number}：第 {case.rounds + 1} 轮预审"
    )
    await queue.record(session, ticket.id, "round_started", staff_id, case=case.number,
                       round=case.rounds)  # fmt: skip
    return case.rounds


async def mark(
    session: AsyncSession, case: Case, marks: list[dict[str, Any]], actor: str
) -> list[dict[str, Any]]:
    """Record results for materials (by position) in the current round."""
    if case.status != "pre_review":
        raise cases.CaseError(
            "not_in_pre_review",
            f"Materials are checked while the case is 预审中, not {cases.STATES[case.status]}.",
        )
    by_position = {m.position: m for m in case.item.materials}
    for entry in marks:
        material = by_position.get(entry["position"])
        if material is None:
            raise cases.CaseError(
                "no_such_material", f"The item has no material {entry['position']}."
            )
        if entry["status"] not in CHECK_STATES:
            raise cases.CaseError("bad_status", f"A material is one of {', '.join(CHECK_STATES)}.")
        if entry["status"] == "needs_correction" and not entry.get("reason", "").strip():
            raise cases.CaseError(
                "reason_required", f"Say what must be corrected in 「{material.name}」."
            )
        check = await session.scalar(
            select(MaterialCheck).where(
                MaterialCheck.case_id == case.id,
                MaterialCheck.round == case.rounds,
                MaterialCheck.material_id == material.id,
            )
        )
        if check is None:
            check = MaterialCheck(case_id=case.id, round=case.rounds, material_id=material.id)
            session.add(check)
        check.status = entry["status"]
        check.reason = entry.get("reason", "").strip()
        check.file_ids = list(entry.get("files", []))
        check.checked_by, check.checked_at = actor, utcnow()
    await session.flush()
    return await checklist(session, case)


async def asked_last_round(session: AsyncSession, case: Case) -> set[int]:
    """The positions of the materials the previous round's marks sent back (its notice's)."""
    if case.rounds < 2:
        return set()
    earlier = await checklist(session, case, case.rounds - 1)
    return {r["position"] for r in earlier if r["status"] in TO_CORRECT}


async def verdict(
    session: AsyncSession, case: Case, outcome: str, actor: str, reason: str = ""
) -> CorrectionNotice | None:
    """Close the round: passed → 待受理; correction_needed → 待补正 with its notice; or 不予受理."""
    if outcome not in VERDICTS:
        raise cases.CaseError("bad_verdict", f"A verdict is one of {', '.join(VERDICTS)}.")
    rows = await checklist(session, case)
    if outcome != "not_accepted":
        # Every required material, and every one the last notice asked for (a conditional one
        # too: the resident was told to bring it), is checked in this round.
        asked = await asked_last_round(session, case)
        unchecked = [
            r["name"]
            for r in rows
            if r["status"] is None and (r["requirement"] == "required" or r["position"] in asked)
        ]
        if unchecked:
            raise cases.CaseError(
                "checklist_incomplete",
                "Check every required material, and every one the last notice asked for,"
                " first: " + "、".join(unchecked),
            )
    to_correct = [r for r in rows if r["status"] in TO_CORRECT]
    if outcome == "passed" and to_correct:
        raise cases.CaseError(
            "materials_need_correction",
            "Some materials still need correction; issue the notice instead.",
        )
    if outcome == "correction_needed" and not to_correct:
        raise cases.CaseError(
            "nothing_to_correct", "Mark the materials that need correction or are missing first."
        )
    target = {"passed": "awaiting_acceptance", "correction_needed": "correction_needed"}.get(
        outcome, "not_accepted"
    )
    notice = None
    if outcome == "correction_needed":
        notice = CorrectionNotice(
            case_id=case.id,
            round=case.rounds,
            issued_by=actor,
            items=[
                {
                    "position": r["position"],
                    "name": r["name"],
                    "status": r["status"],
                    "status_label": r["status_label"],
                    "reason": notice_text.what_to_do(r),
                }
                for r in to_correct
            ],
        )
        session.add(notice)
        reason = reason or f"一次性告知：{len(to_correct)} 项材料需补正"
    await cases.transition(session, case, target, actor, reason)
    return notice


async def notices_of(session: AsyncSession, case: Case) -> list[CorrectionNotice]:
    rows = await session.scalars(
        select(CorrectionNotice)
        .where(CorrectionNotice.case_id == case.id)
        .order_by(CorrectionNotice.round)
    )
    return list(rows.all())


async def notice_words(
    session: AsyncSession, case: Case, round_: int
) -> notice_text.NoticeText | None:
    """The words of the case's notice of round ``round_`` (None if that round has none): the
    applicant's ID number masked, the issuer (告知人) by the name residents know, not the login."""
    notice = await session.scalar(
        select(CorrectionNotice).where(
            CorrectionNotice.case_id == case.id, CorrectionNotice.round == round_
        )
    )
    if notice is None:
        return None
    issuer = await session.scalar(
        select(Staff.display_name).where(Staff.username == notice.issued_by)
    )
    masked = cases.mask_id_number(case.applicant_id_number)
    collect_at = await pickup_station(session, case)
    return notice_text.notice_text(case, notice, masked, issuer or notice.issued_by, collect_at)
