"""Schemas of the hub's own messages; applications register theirs with ``Hub.register``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

PROTOCOL_VERSION = 1
SESSION_ID_MAX = 64
CSEQ_MAX = 2**53  # a client's message numbers stay exact in JavaScript
SessionId = Annotated[str, Field(min_length=1, max_length=SESSION_ID_MAX)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resume(Message):
    session: SessionId
    token: Annotated[str, Field(min_length=1, max_length=128)]
    last_seq: Annotated[int, Field(ge=0)] = 0
    # The page was reloaded and kept only the session and token: nothing is replayed; the
    # application sends its current state and ``joined`` again if the session is in a call.
    reloaded: bool = False


class Hello(Message):
    type: Literal["hello"]
    v: int
    auth: dict[str, JsonValue] | None = None
    resume: Resume | None = None


class Description(Message):
    type: Literal["offer", "answer"]
    sdp: Annotated[str, Field(min_length=1, max_length=100_000)]
    to: SessionId | None = None


class IceCandidate(Message):
    candidate: Annotated[str, Field(max_length=2000)]
    sdpMid: Annotated[str, Field(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1000)] | None = None
    usernameFragment: Annotated[str, Field(max_length=256)] | None = None


class Candidate(Message):
    """A trickled ICE candidate; ``candidate: null`` is end-of-candidates."""

    type: Literal["candidate"]
    candidate: IceCandidate | None
    to: SessionId | None = None


class AppData(Message):
    """An application message (chat, file metadata…) for the other members of the call.

    ``data`` is any JSON value; it arrives already parsed from JSON, so it is not walked again.
    """

    type: Literal["app"]
    data: Any
    to: SessionId | None = None


class Ping(Message):
    """Keep-alive; ``seq`` acknowledges every numbered message up to it (trims the replay)."""

    type: Literal["ping"]
    seq: Annotated[int, Field(ge=0)] | None = None
    # Echoed in the pong, so a client timing the round trip knows which pong is its own.
    id: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class Bye(Message):
    type: Literal["bye"]


class Numbered(Message):
    """A client's number for its message (``cseq``; docs/protocol.md), checked apart from the
    message's own model (the hub takes it off before that model sees the message)."""

    cseq: Annotated[int, Field(strict=True, ge=1, le=CSEQ_MAX)]


RELAYED: dict[str, type[Description | Candidate | AppData]] = {
    "offer": Description,
    "answer": Description,
    "candidate": Candidate,
    "app": AppData,
}
