"""What a session keeps for a resume: snapshots replace their elders, acknowledgements trim."""

from __future__ import annotations

import functools
import json
from typing import Any, cast

import pytest

from signaling.broker import InProcessBroker
from signaling.errors import SignalingError
from signaling.hub import Hub
from signaling.session import HISTORY_BYTES, Encoded, Principal, Session


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


async def test_a_session_handed_over_is_the_same_session() -> None:
    """What ``handover`` gives another process restores the session as it was: numbering,
    history, snapshot keys (a later snapshot still replaces its elder), what was dropped."""
    session = Session(Principal("staff", "7", {"name": "赵刚"}, "console"))
    session.room, session.peers, session.initiator = "call-1", {"p": {"role": "kiosk"}}, True
    await session.send({"type": "queue", "n": 1, "_key": "queue"})
    await session.send({"type": "app", "data": "你好"})
    session.acknowledge(1)
    assert session.receive(4) and not session.receive(4)
    moved = Session.restored(json.loads(json.dumps(session.handover())))
    assert moved.received == 4 and not moved.receive(3) and moved.receive(5)
    assert (moved.id, moved.token) == (session.id, session.token)
    assert moved.principal == session.principal
    assert (moved.room, moved.peers, moved.initiator) == ("call-1", {"p": {"role": "kiosk"}}, True)
    assert kept(moved) == [2] and moved._history_bytes == session._history_bytes
    await moved.send({"type": "queue", "n": 2, "_key": "queue"})
    await moved.send({"type": "queue", "n": 3, "_key": "queue"})
    assert kept(moved) == [2, 4]  # numbered on from 2; the snapshot of 3 replaced
    moved.check_resume(1)
    state = session.handover()
    state["history"] = [[2, "{}", None], [2, "{}", None]]
    with pytest.raises(ValueError):
        Session.restored(state)


def test_a_card_does_not_know_what_the_client_sent() -> None:
    """A card is saved now and then: a session re-created from it accepts any numbered message
    (its client, told nothing of ``received``, sends nothing again)."""
    session = Session(Principal("kiosk", "1"))
    session.receive(9)
    recreated = Session.restored(json.loads(json.dumps(session.card())))
    assert recreated.received is None
    assert recreated.receive(1) and recreated.received == 1 and not recreated.receive(1)
    older = {k: v for k, v in session.handover().items() if k != "received"}
    assert Session.restored(older).received is None  # handed over by an older version


async def test_a_message_for_a_session_in_another_process_goes_there_as_its_text() -> None:
    """A relayed message (or a snapshot) is serialised once: another process writes the same
    text to its session, numbered there; a snapshot's key still replaces its elder."""
    broker = InProcessBroker()
    here, there = Hub(cast(Any, None), broker=broker), Hub(cast(Any, None), broker=broker)
    session = Session(Principal("kiosk", "1"))
    there.sessions[session.id] = session
    await there._subscribe(session, functools.partial(there._deliver, session))
    relayed = '{"type":"app","data":"你好","to":"k","cseq":3,"from":"s"}'
    assert await here.send(session.id, Encoded(relayed))
    for n in (1, 2):
        assert await here.send(session.id, Encoded.of({"type": "queue", "n": n, "_key": "queue"}))
    assert [text for _seq, text, _key in session._history] == [
        '{"type":"app","data":"你好","to":"k","cseq":3,"from":"s","seq":1}',
        '{"type":"queue","n":2,"seq":3}',
    ]
