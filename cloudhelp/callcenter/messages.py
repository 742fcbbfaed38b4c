"""The messages kiosks and staff send the call centre (validated by the hub before dispatch)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from cloudhelp.core.inputs import RowId
from signaling.errors import SignalingError
from signaling.hub import Handler, Session
from signaling.messages import Message

# What a staff member's session is for (hello.auth.purpose): the console that takes calls, or
# the supervisors' board. One person may hold one of each at once.
CONSOLE = "console"
STAFF_PURPOSES = (CONSOLE, "board")
OUTCOMES = ("resolved", "needs_correction", "referred", "no_show", "other")

Code = Annotated[str, Field(min_length=1, max_length=32)]


class TakeTicket(Message):
    """A ticket for an item, for a correction session of a case (by its number, with the
    grant the kiosk's case lookup gave: docs/protocol.md), or for an appointment checked in by
    its code."""

    type: Literal["ticket.take"]
    item: Code | None = None
    case: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    grant: Annotated[str, Field(max_length=64)] | None = None
    # Checking an appointment in by its booking code (docs/appointments.md).
    appointment: Annotated[str, Field(min_length=1, max_length=16)] | None = None


class CancelTicket(Message):
    type: Literal["ticket.cancel"]


class Hangup(Message):
    type: Literal["call.hangup"]
    # Why, when it is not a person's choice: the page's media could not recover.
    reason: Literal["media_failed"] | None = None


class StaffStatus(Message):
    type: Literal["staff.status"]
    status: Literal["available", "away"]


class OfferReply(Message):
    type: Literal["ring.accept", "ring.decline"]
    ticket: RowId


class PickTicket(Message):
    type: Literal["ticket.pick"]
    ticket: RowId


class WrapupDone(Message):
    type: Literal["wrapup.done"]
    outcome: Literal["resolved", "needs_correction", "referred", "no_show", "other"] | None = None
    note: Annotated[str, Field(max_length=1000)] = ""


class SubmitRating(Message):
    """The resident's rating of the session that just ended; ``level`` null: not rated.

    ``outcome`` says why there is no level (``declined``: 跳过; ``no_answer``: the kiosk went home
    by itself); it defaults to ``rated`` with a level and ``declined`` without.
    """

    type: Literal["rating.submit"]
    ticket: RowId
    level: Annotated[int, Field(ge=1, le=5)] | None
    reasons: Annotated[list[Annotated[str, Field(max_length=20)]], Field(max_length=10)] = Field(
        default_factory=list
    )
    outcome: Literal["rated", "declined", "no_answer"] | None = None


class TransferTicket(Message):
    type: Literal["ticket.transfer"]
    department: Code


class WatchBoard(Message):
    type: Literal["board.watch"]


class AckWarning(Message):
    type: Literal["warning.ack"]
    warning: RowId


Millis = Annotated[float, Field(ge=0, le=60_000)]
Fraction = Annotated[float, Field(ge=0, le=1)]
CandidateType = Literal["host", "srflx", "prflx", "relay"]


class NetcheckOffer(Message):
    """The kiosk's pre-call check: an SDP offer (a data channel, every candidate in it)."""

    type: Literal["netcheck.offer"]
    sdp: Annotated[str, Field(min_length=1, max_length=100_000)]


class NetcheckMedia(Message):
    """What the kiosk measured over the echo peer's data channel."""

    connected: bool
    rtt_ms: Millis | None = None
    loss: Fraction | None = None
    probes: Annotated[int, Field(ge=0, le=1000)] = 0
    answered: Annotated[int, Field(ge=0, le=1000)] = 0
    candidate: CandidateType | None = None
    protocol: Literal["udp", "tcp", "tls"] | None = None


class NetcheckResult(Message):
    """The check's figures; ``media`` null when no media check ran (refused, no answer)."""

    type: Literal["netcheck.result"]
    check: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    signaling_rtt_ms: Millis | None = None
    media: NetcheckMedia | None = None


class CallStats(Message):
    """A page's summary of its call's last few seconds (getStats), about every 5 s."""

    type: Literal["call.stats"]
    rtt_ms: Millis | None = None
    loss: Fraction | None = None
    fps: Annotated[float, Field(ge=0, le=240)] | None = None
    freezes: Annotated[int, Field(ge=0, le=10_000)] = 0
    relay: bool = False
    candidate: CandidateType | None = None
    bitrate_kbps: Annotated[float, Field(ge=0, le=1_000_000)] | None = None


def console_only(handler: Handler) -> Handler:
    """A staff message that only the console session may send (not a board page)."""

    async def guarded(session: Session, message: Any) -> None:
        if session.principal.kind == "staff" and session.principal.purpose != CONSOLE:
            raise SignalingError("forbidden", "Send this from the console, not the board.")
        await handler(session, message)

    return guarded
