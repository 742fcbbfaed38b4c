"""Demo cases in every state, so a new user sees the case pages and the CLI populated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp import cases, catalog, network, prereview
from cloudhelp.models import Case, ServiceItem, Staff, Station

# (item, applicant, phone, ID number's first 17 digits, the states the case goes through)
DEMO_CASES = [
    ("NYNC-002", "刘海生", "13840000001", "21021119650312101", []),
    ("NYNC-002", "王德福", "13840000002", "21021119700521203", ["correction_needed"]),
    ("SCJG-001", "张小梅", "13840000003", "21021119880809302", ["awaiting_acceptance"]),
    ("ZJJ-001", "李建国", "13840000004", "21021119751130411", ["awaiting_acceptance", "accepted"]),
    ("JTJ-001", "赵永强", "13840000005", "21021119820214505",
     ["awaiting_acceptance", "accepted", "concluded"]),
    ("SCJG-008", "陈丽华", "13840000006", "21021119790701606",
     ["awaiting_acceptance", "accepted", "concluded", "delivered"]),
    ("CGJ-001", "孙志刚", "13840000007", "21021119900415707", ["not_accepted"]),
]  # fmt: skip


async def load_samples(session: AsyncSession) -> tuple[dict[str, int], dict[str, Any]]:
    """The sample catalog and station network (counts of what was imported)."""
    counts = await catalog.import_catalog(session, catalog.parse_file(catalog.SAMPLE_CATALOG))
    return counts, await network.import_network(session, network.load_sample_network())


async def seed_cases(session: AsyncSession, district: str) -> int:
    """Open the demo cases (once: nothing happens if any case exists)."""
    if await session.scalar(select(func.count()).select_from(Case)):
        return 0
    reviewer = await session.scalar(select(Staff).where(Staff.username == "zhaogang"))
    station = await session.scalar(select(Station).where(Station.code == "DLW-QG"))
    assert reviewer is not None and station is not None
    for item_code, name, phone, first17, steps in DEMO_CASES:
        item = await session.scalar(select(ServiceItem).where(ServiceItem.code == item_code))
        assert item is not None
        case = await cases.open_case(
            session, district=district, item=item, station_id=station.id, staff_id=reviewer.id,
            name=name, phone=phone, id_number=first17 + cases.id_check_character(first17),
            actor=reviewer.username,
        )  # fmt: skip
        await session.refresh(case, ["item", "station"])
        for step in steps:
            if step == "correction_needed":
                marks = [{"position": m.position, "status": "ok"} for m in item.materials]
                marks[-1] = {"position": marks[-1]["position"], "status": "missing"}
                marks[0] = {"position": 1, "status": "needs_correction", "reason": "申请人未签字"}
                await prereview.mark(session, case, marks, reviewer.username)
                await prereview.verdict(session, case, "correction_needed", reviewer.username)
            elif step == "awaiting_acceptance":
                marks = [{"position": m.position, "status": "ok"} for m in item.materials]
                await prereview.mark(session, case, marks, reviewer.username)
                await prereview.verdict(session, case, "passed", reviewer.username)
            elif step == "not_accepted":
                await cases.transition(
                    session,
                    case,
                    step,
                    reviewer.username,
                    "不属于本部门职权范围，已告知向区住建局申请",
                )
            else:
                await cases.transition(session, case, step, reviewer.username)
    return len(DEMO_CASES)
