"""What a session keeps for a resume: snapshots replace their elders, acknowledgements trim."""

from __future__ import annotations

import pytest

from signaling.errors import SignalingError
from signaling.session import HISTORY_BYTES, Principal, Session


def kept(session: Session) -> list[int]:
    return [seq for seq, _text, _key in session._history]


async def test_snapshots_replace_older_ones_and_acks_trim() -> None:
    session = Session(Principal("kiosk", "1"))
    await session.send({"type": "ticket", "n": 1, "_key": "ticket"})
    await session.send({"type": "app", "data": "hello"})
    await session.send({"type": "ticket", "n": 2, "_key": "ticket"})
    assert kept(session) == [2, 3]
    assert '"_key"' not in session._history[-1][1]
    session.acknowledge(2)
    assert kept(session) == [3]
    session.check_resume(1)  # superseded and acknowledged messages are not a gap


async def test_a_resume_past_dropped_history_is_refused() -> None:
    session = Session(Principal("kiosk", "1"))
    big = "x" * 1000
    for _ in range(HISTORY_BYTES // 1000 + 10):
        await session.send({"type": "app", "data": big})
    with pytest.raises(SignalingError) as caught:
        session.check_resume(0)
    assert caught.value.code == "resume_gap"
    with pytest.raises(SignalingError, match="ahead"):
        session.check_resume(10**6)
