"""Links between nodes (signaling/node_link.py, used by signaling/redis_broker.py): relayed
frames go on a direct TCP connection to the holder's node, and arrive once, in the order sent,
with what went through Redis — when the link breaks, when the receiver's stream reader lags,
when the session moved to a third node. Real brokers on the shared redis-server, in this
process, each with its own link server on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from signaling.redis_broker import RedisBroker
from tests.callkit import until
from tests.rediskit import shared_redis_url
from tests.test_redis_broker import node

KEY = b"k" * 32


@asynccontextmanager
async def brokers(*keys: bytes | None) -> AsyncIterator[list[RedisBroker]]:
    url = shared_redis_url()
    started = [RedisBroker(url, node(f"n{i}"), prefix="cloudhelp", link_key=key)
               for i, key in enumerate(keys)]  # fmt: skip
    for broker in started:
        await broker.start()
    try:
        yield started
    finally:
        for broker in started:
            await broker.close()


def encoded(n: int) -> dict[str, Any]:
    """What the hub publishes for a relayed frame (``Encoded.brokered``)."""
    return {"type": "_encoded", "body": f'{{"type":"app","n":{n}}}'}


class Inbox:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    async def deliver(self, message: dict[str, Any]) -> None:
        self.got.append(message)


class SlowInbox(Inbox):
    """A session whose socket is slow: relayed frames are handed over once ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def deliver(self, message: dict[str, Any]) -> None:
        if message["type"] == "_encoded":
            await self.gate.wait()
        await super().deliver(message)


async def link_open(sender: RedisBroker, receiver: RedisBroker, topic: str) -> None:
    """A message through Redis tells the sender the holder; the link opens meanwhile."""
    assert await sender.publish(topic, {"type": "_join"})
    link = await until(lambda: (lk := sender._links.get(receiver.node_id)) and lk.is_open, 5,
                       "the link open")  # fmt: skip
    assert link


async def test_relayed_frames_go_on_the_link_in_order_with_what_went_through_redis() -> None:
    async with brokers(KEY, KEY) as (one, two):
        topic, inbox = f"session:{uuid.uuid4().hex}", Inbox()
        await two.subscribe(topic, inbox.deliver)
        await link_open(one, two, topic)
        async with Redis.from_url(shared_redis_url(), decode_responses=True) as redis:
            through_redis = await redis.xlen(two.stream)
            sent: list[dict[str, Any]] = [{"type": "_join"}]
            for n in range(100):
                # Every tenth a control message (through Redis, after the link's frames);
                # the frame after it waits on node two for that entry (``after``).
                message = {"type": "_leave", "n": n} if n % 10 == 9 else encoded(n)
                assert await one.publish(topic, message)
                sent.append(message)
            await until(lambda: len(inbox.got) >= len(sent), 5, "everything delivered")
            assert inbox.got == sent, "once each, in the order sent"
            assert one.link_frames == 90, "the relayed frames went on the link"
            assert await redis.xlen(two.stream) == through_redis + 10, "the rest through Redis"
        assert two.link_duplicates == 0 and two.link_forwarded == 0


async def test_a_frame_waits_for_the_entry_sent_before_it_through_redis() -> None:
    """Node two's stream reader is cut off: the control message sent through Redis cannot be
    read yet, so the relayed frame sent after it on the link is held until it is."""
    async with brokers(KEY, KEY) as (one, two):
        topic, inbox = f"session:{uuid.uuid4().hex}", Inbox()
        await two.subscribe(topic, inbox.deliver)
        await link_open(one, two, topic)
        await until(lambda: inbox.got, what="the first message delivered")
        async with Redis.from_url(shared_redis_url(), decode_responses=True) as redis:
            reader = [c for c in await redis.client_list() if c["name"] == f"{two.node_id}:reader"]
            await redis.execute_command("CLIENT", "PAUSE", "300", "WRITE")
            await redis.execute_command("CLIENT", "KILL", "ID", reader[0]["id"])
            await redis.execute_command("CLIENT", "UNPAUSE")
            assert await one.publish(topic, {"type": "_leave"})
            assert await one.publish(topic, encoded(1))
            await until(lambda: len(inbox.got) >= 3, 5, "both delivered")
        assert inbox.got == [{"type": "_join"}, {"type": "_leave"}, encoded(1)]
        assert one.link_frames == 1


async def test_a_message_through_redis_waits_for_the_frames_sent_before_it_on_the_link() -> None:
    """Node two is slow to hand a link's frame over (its session's socket is slow): a control
    message sent after it goes through Redis only once two has handled the frame."""
    async with brokers(KEY, KEY) as (one, two):
        topic, slow = f"session:{uuid.uuid4().hex}", SlowInbox()
        await two.subscribe(topic, slow.deliver)
        await link_open(one, two, topic)
        assert await one.publish(topic, encoded(1))
        leaving = asyncio.create_task(one.publish(topic, {"type": "_leave"}))
        await asyncio.sleep(0.3)
        assert not leaving.done(), "the control message waits for the frame"
        slow.gate.set()
        assert await leaving
        await until(lambda: len(slow.got) >= 3, 5, "both delivered")
        assert slow.got == [{"type": "_join"}, encoded(1), {"type": "_leave"}]


async def test_a_session_moving_to_the_sender_takes_what_it_sent_on_the_link_first() -> None:
    """Node one sent a frame on the link to node two, which holds the session and is slow to
    hand it over; then the session moves to one (the hub's take-over: one subscribes, two gives
    it up). one takes the topic only once two has handled the frame: two keeps it in the
    session's history, and what one sends next comes after it (seen out of order in a loaded
    full run, test_nodes' session-move test)."""
    async with brokers(KEY, KEY) as (one, two):
        topic, slow = f"session:{uuid.uuid4().hex}", SlowInbox()
        await two.subscribe(topic, slow.deliver)
        await link_open(one, two, topic)
        assert await one.publish(topic, encoded(1))
        arrived = Inbox()
        taking = asyncio.create_task(one.subscribe(topic, arrived.deliver))
        await asyncio.sleep(0.3)
        assert not taking.done(), "the move waits for the frame on the link"
        slow.gate.set()
        await taking
        assert slow.got == [{"type": "_join"}, encoded(1)], "the old holder kept it"
        await two.unsubscribe(topic, slow.deliver)
        assert await one.publish(topic, encoded(2))
        assert arrived.got == [encoded(2)]


async def test_a_broken_link_loses_nothing_and_delivers_nothing_twice() -> None:
    """The link is cut mid-burst (its socket aborted, what was buffered lost): the frames node
    two had not handled go again through Redis, and those it had are not delivered twice."""
    async with brokers(KEY, KEY) as (one, two):
        topic, inbox = f"session:{uuid.uuid4().hex}", Inbox()
        await two.subscribe(topic, inbox.deliver)
        await link_open(one, two, topic)
        sent: list[dict[str, Any]] = [{"type": "_join"}]
        for cut in range(3):
            for n in range(cut * 200, cut * 200 + 200):
                if n % 200 == 120:
                    link = one._links[two.node_id]
                    assert link._writer is not None
                    link._writer.transport.abort()
                    await asyncio.sleep(0)  # the link's reader sees it closed
                assert await one.publish(topic, encoded(n))
                sent.append(encoded(n))
            await until(lambda: len(inbox.got) >= len(sent), 10, "everything delivered")
            # The next burst starts on a new link, opened again (after _LINK_RETRY) when a
            # message through Redis names the holder again.
            await asyncio.sleep(1.1)
            await link_open(one, two, topic)
            sent.append({"type": "_join"})
        await until(lambda: len(inbox.got) >= len(sent), 10, "everything delivered")
        assert inbox.got == sent, "once each, in the order sent"
        assert one.link_resent > 0, "frames went again through Redis"


async def test_a_frame_for_a_session_moved_to_a_third_node_follows_it() -> None:
    async with brokers(KEY, KEY, KEY) as (one, two, three):
        topic, old, new = f"session:{uuid.uuid4().hex}", Inbox(), Inbox()
        await two.subscribe(topic, old.deliver)
        await link_open(one, two, topic)
        for n in range(5):
            assert await one.publish(topic, encoded(n))
        await until(lambda: len(old.got) >= 6, 5, "delivered on two")
        # The session moves to node three (the newest subscriber wins; two lets it go).
        await three.subscribe(topic, new.deliver)
        await two.unsubscribe(topic)
        for n in range(5, 50):
            assert await one.publish(topic, encoded(n))
        await until(lambda: len(new.got) >= 45, 5, "delivered on three")
        assert new.got == [encoded(n) for n in range(5, 50)], "once each, in order"
        assert two.link_forwarded >= 1, "two sent on what came to it for the moved session"
        # Told so by two, one sends the next through Redis, which names three.
        assert await one.publish(topic, encoded(50))
        route = one._routes.get(topic)
        assert route is not None and route.holder == three.node_id, "one sends to three now"
        await until(lambda: len(new.got) >= 46, 5, "delivered on three")
        assert new.got[-1] == encoded(50)


async def test_a_link_with_the_wrong_key_is_refused_and_redis_carries_the_frames() -> None:
    async with brokers(KEY, b"x" * 32, None) as (one, two, off):
        for receiver in (two, off):
            topic, inbox = f"session:{uuid.uuid4().hex}", Inbox()
            await receiver.subscribe(topic, inbox.deliver)
            assert await one.publish(topic, {"type": "_join"})
            await asyncio.sleep(0.3)  # the link is tried meanwhile
            for n in range(10):
                assert await one.publish(topic, encoded(n))
            await until(lambda box=inbox: len(box.got) >= 11, 5, "delivered through Redis")
            assert inbox.got == [{"type": "_join"}] + [encoded(n) for n in range(10)]
        assert one.link_frames == 0
        assert two._link_server is not None and two._link_server.refused >= 1
        assert off.link_address is None, "a node without a key listens for no links"
