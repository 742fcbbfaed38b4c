"""The JSON bodies the call centre sends about tickets and staff presence (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from cloudhelp.core.clock import iso
from cloudhelp.domain.estimates import Estimate
from cloudhelp.store.models import StaffPresence, Ticket


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    """What a ring, a staff member's queue and a kiosk's ticket frame say about a ticket."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "status": ticket.status,
        "item": {"code": ticket.item.code, "name": ticket.item.name},
        "department": {"code": ticket.department.code, "name": ticket.department.name},
        "station": {"code": ticket.station.code, "name": ticket.station.name},
        # ``correction``: taken for a correction session of an existing case (not a first
        # session whose case was opened during the call, then transferred).
        "case": {
            "number": ticket.case.number,
            "round": ticket.case.rounds,
            "correction": ticket.case.created_at < ticket.enqueued_at,
        }
        if ticket.case
        else None,
        "enqueued_at": iso(ticket.enqueued_at),
        # Taken by checking in an appointment: served ahead of walk-ins of the same item.
        "appointment": {
            "code": ticket.appointment.code,
            "starts_at": iso(ticket.appointment.starts_at),
        }
        if ticket.appointment
        else None,
        "version": ticket.version,
        # The kiosk's pre-call network check (docs/protocol.md, netcheck.result), or null.
        "netcheck": ticket.netcheck,
    }


def ring_frame(
    summary: dict[str, Any], ring_seconds: int, transferred_by: dict[str, str] | None
) -> dict[str, Any]:
    """A staff member is rung for a ticket; ``transferred_by``: who sent the call on, and from
    which department (domain.transfer.transferred_by), or None."""
    return {"type": "ring", "ticket": summary, "ring_seconds": ring_seconds,
            "transferred_by": transferred_by}  # fmt: skip


def ticket_body(ticket: Ticket, estimate: Estimate | None) -> dict[str, Any]:
    """The kiosk's view of its ticket: the summary, why it ended, and its place in the queue."""
    body = ticket_summary(ticket)
    body["end_reason"] = ticket.end_reason
    if estimate is not None:
        body |= {
            "position": estimate.position,
            "estimated_wait_seconds": estimate.wait_seconds,
            "staff_on_duty": estimate.staff_on_duty,
        }
    return body


def presence_frame(presence: StaffPresence) -> dict[str, Any]:
    """A staff member's ``presence`` snapshot."""
    return {
        "type": "presence",
        "state": presence.state,
        "since": iso(presence.since),
        "missed_offers": presence.missed_offers,
        "ticket": presence.ticket_id,
        "_key": "presence",
    }
