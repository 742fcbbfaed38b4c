"""What a resident sees at a kiosk under 我的材料/证照: their case's items (where each is, where to
collect it, the pickup code once it is ready) found by case number and the phone's last four
digits; and, before a certificate exists, when and where it is expected."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import iso
from cloudhelp.domain import cases, timeouts
from cloudhelp.domain.logistics import states
from cloudhelp.domain.logistics.pickup import pickup_station
from cloudhelp.store.models import Case, TrackedItem


async def find(session: AsyncSession, number: str, phone_last4: str) -> Case | None:
    """The case numbered ``number`` whose applicant's phone ends in ``phone_last4``; None
    otherwise (an unknown number and wrong digits alike)."""
    case = await session.scalar(select(Case).where(Case.number == number))
    if case is None:
        return None
    if not hmac.compare_digest(case.applicant_phone[-4:].encode(), phone_last4.encode()):
        return None
    return case


def _station(station: Any) -> dict[str, str]:
    return {
        "code": station.code,
        "name": station.name,
        "address": station.address,
        "phone": station.phone,
    }


async def resident_view(session: AsyncSession, case: Case, now: datetime) -> dict[str, Any]:
    """The case's items as a resident reads them, and the certificate's expected date and
    station while the case runs. An item on the shelf longer than the pickup limit (the
    ``pickup_overdue`` warning's threshold, as the station sees it) is ``overdue``: it may be
    sent back to the hall."""
    items = (
        await session.scalars(
            select(TrackedItem).where(TrackedItem.case_id == case.id).order_by(TrackedItem.id)
        )
    ).all()
    limits = cases.time_limits(case, await cases.events_of(session, case))
    pickup_days = (await timeouts.Thresholds.load(session)).value(
        "pickup_overdue", case.item.department_id, case.item.id
    )

    return {
        "number": case.number,
        "item": case.item.name,
        "status": {"code": case.status, "label": cases.STATES[case.status]},
        "expected": {
            "date": iso(limits.promised_due),
            "station": _station(await pickup_station(session, case)),
        },
        "items": [
            {
                "code": i.code,
                "kind": {"code": i.kind, "label": states.KINDS[i.kind]},
                "description": i.description,
                "status": {"code": i.status, "label": states.STATES[i.status]},
                "where": _station(i.at_station) if i.at_station is not None else None,
                "collect_at": _station(i.destination),
                "ready_since": iso(i.ready_at),
                "pickup_code": i.pickup_code if i.status == "ready" else None,
                "overdue": i.status == "ready"
                and i.ready_at is not None
                and timeouts.past(i.ready_at, now, pickup_days),
            }
            for i in items
        ],
    }
