"""The last hop: an item received at its destination is shelved (ready for pickup), then handed
to the applicant, who gives the pickup code and the last four characters of their ID number
and signs on the screen (the signature is kept with the item). A certificate picked up
delivers its case (已送达)."""

from __future__ import annotations

import hmac
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.errors import must_exist
from cloudhelp.domain import cases
from cloudhelp.domain.logistics.items import LogisticsError, record, require_here
from cloudhelp.store.models import Staff, Station, TrackedItem, utcnow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIGNATURE_MIN_BYTES = 200  # an empty canvas is smaller than a signature
SIGNATURE_MAX_BYTES = 300_000


async def make_ready(
    session: AsyncSession, staff: Staff, item: TrackedItem, at: datetime | None = None
) -> None:
    """Shelve an item received at its destination station: it waits for pickup from now."""
    require_here(item, staff)
    if item.destination_id != staff.station_id:
        raise LogisticsError(
            "not_destination", f"Item {item.code} goes on to {item.destination.name}."
        )
    now = at or utcnow()
    await record(session, item, "ready", "ready", staff, at=now)
    item.ready_at = now


def check_signature(png: bytes) -> None:
    if not png.startswith(PNG_MAGIC) or not SIGNATURE_MIN_BYTES <= len(png) <= SIGNATURE_MAX_BYTES:
        raise LogisticsError(
            "signature_required", "The applicant's signature (a PNG drawn on the screen) is needed."
        )


def identity_matches(item: TrackedItem, pickup_code: str, id_last4: str) -> bool:
    """The pickup code and the ID number's last four characters, compared in constant time."""
    code_ok = hmac.compare_digest(item.pickup_code.encode(), pickup_code.strip().encode())
    id_ok = hmac.compare_digest(
        item.case.applicant_id_number[-4:].upper().encode(), id_last4.strip().upper().encode()
    )
    return code_ok & id_ok


async def hand_over(
    session: AsyncSession,
    staff: Staff,
    item: TrackedItem,
    *,
    pickup_code: str,
    id_last4: str,
    signature_sha256: str,
    collected_by: str,
) -> None:
    """Hand a ready item to the applicant (identity checked before; the signature stored)."""
    require_here(item, staff)
    if item.status != "ready":
        raise LogisticsError(
            "not_ready", f"Item {item.code} is not waiting for pickup; nothing was changed."
        )
    if not identity_matches(item, pickup_code, id_last4):
        raise LogisticsError(
            "pickup_refused", "The pickup code or the ID number's last four digits do not match."
        )
    now = utcnow()
    await record(
        session,
        item,
        "picked_up",
        "picked_up",
        staff,
        at=now,
        signature=signature_sha256,
        collected_by=collected_by,
    )
    item.finished_at, item.signature_sha256 = now, signature_sha256
    item.picked_up_by = collected_by or item.case.applicant_name
    if item.kind == "certificate" and item.case.status == "concluded":
        here = must_exist(await session.get(Station, staff.station_id), "the attendant's station")
        await cases.transition(
            session,
            item.case,
            "delivered",
            staff.username,
            f"证照已在{here.name}领取（{item.code}）",
        )
