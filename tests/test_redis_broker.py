"""Several server processes ("nodes") on one Redis and one PostgreSQL database: the Redis broker
(signaling/redis_broker.py) against a real redis-server, with real aiohttp servers and clients.

Node A and node B are two CloudHelp servers in this process, each with its own RedisBroker and
node id, on the same database: nothing passes between them but Redis and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from cloudhelp.core.config import Settings
from cloudhelp.media.peer import SignalingClient
from signaling.redis_broker import WIRE_VERSION, BrokerUnavailable, RedisBroker
from tests.callkit import CallServer, picked_at_once, running_server, scraped_metrics, until
from tests.conftest import _create_pg_database, _drop_pg_database, _prepare_demo_database
from tests.helpers import run_cli
from tests.rediskit import private_redis, shared_redis_url

ITEM = "NYNC-001"  # zhaogang's department (区农业农村局)


@pytest.fixture
async def pg_demo_url() -> AsyncIterator[str]:
    """A new PostgreSQL database with the sample catalog and network (several nodes need
    PostgreSQL: no SQLite variant)."""
    url, name = await _create_pg_database()
    await _prepare_demo_database(url)
    yield url
    await _drop_pg_database(name)


def node(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def two_nodes(database_url: str) -> AsyncIterator[tuple[CallServer, CallServer]]:
    """Nodes A and B (in this process) on one database and the shared redis-server."""
    url = shared_redis_url()
    async with (
        running_server(database_url, redis_url=url, node_id=node("a")) as a,
        running_server(database_url, redis_url=url, node_id=node("b")) as b,
    ):
        yield a, b


def broker_of(server: CallServer) -> RedisBroker:
    broker = server.state.callcenter.hub.broker
    assert isinstance(broker, RedisBroker)
    return broker


async def holder(redis: Redis, session: SignalingClient) -> str | None:
    value = await redis.get(f"cloudhelp:topic:session:{session.session_id}")
    return None if value is None else str(value)


async def call_across(a: CallServer, b: CallServer) -> tuple[SignalingClient, SignalingClient]:
    """A kiosk on node A takes a ticket; zhaogang, signed in on node B, is rung and accepts;
    both are in the call."""
    staff = await b.staff("zhaogang")
    kiosk = await a.kiosk("QG-01")
    await kiosk.send({"type": "ticket.take", "item": ITEM})
    ticket = (await kiosk.expect("ticket"))["ticket"]
    ring = await staff.expect("ring")
    assert ring["ticket"]["id"] == ticket["id"]
    await staff.send({"type": "ring.accept", "ticket": ticket["id"]})
    staff_joined = await staff.expect("joined")
    kiosk_joined = await kiosk.expect("joined")  # its _join came from node B through Redis
    assert [p["session"] for p in kiosk_joined["peers"]] == [staff.session_id]
    assert [p["session"] for p in staff_joined["peers"]] == [kiosk.session_id]
    assert kiosk_joined["initiator"] is True
    return kiosk, staff


async def relayed(receiver: SignalingClient, sender: SignalingClient, message: dict[str, Any],
                  timeout: float = 10.0) -> dict[str, Any]:  # fmt: skip
    """``message`` sent by ``sender`` as ``receiver`` gets it (``from`` the sender)."""
    await sender.send(message)
    got = await receiver.expect(message["type"], timeout=timeout)
    assert got["from"] == sender.session_id
    return got


async def test_a_call_between_a_kiosk_on_one_node_and_staff_on_another(pg_demo_url: str) -> None:
    url = shared_redis_url()
    names = node("a"), node("b")
    async with Redis.from_url(url, decode_responses=True) as redis:
        async with (
            running_server(pg_demo_url, redis_url=url, node_id=names[0]) as a,
            running_server(pg_demo_url, redis_url=url, node_id=names[1]) as b,
        ):
            staff = await across_nodes(a, b, redis)
        # A node that stops cleanly deletes what it registered, and its stream.
        assert await holder(redis, staff) is None
        assert not await redis.exists(*(f"cloudhelp:node:{name}" for name in names))


async def across_nodes(a: CallServer, b: CallServer, redis: Redis) -> SignalingClient:
    """The steps of the test above, with both nodes running; the staff member's client."""
    names = broker_of(a).node_id, broker_of(b).node_id
    kiosk, staff = await call_across(a, b)
    # Each session is registered to the node that holds it.
    assert await holder(redis, kiosk) == names[0]
    assert await holder(redis, staff) == names[1]
    assert kiosk.session_id not in b.state.callcenter.hub.sessions

    # Negotiation and app data both ways, across the nodes, in order.
    offer = await relayed(staff, kiosk, {"type": "offer", "sdp": "v=0 offer"})
    assert offer["sdp"] == "v=0 offer"
    answer = await relayed(kiosk, staff, {"type": "answer", "sdp": "v=0 answer"})
    assert answer["sdp"] == "v=0 answer"
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
    got = await relayed(staff, kiosk, {"type": "candidate", "candidate": candidate})
    assert got["candidate"] == candidate
    for n in range(5):
        await kiosk.send({"type": "app", "data": {"kind": "chat", "text": f"居民{n}"}})
        await staff.send({"type": "app", "data": {"kind": "chat", "text": f"工作人员{n}"}})
    to_staff = [(await staff.expect("app"))["data"]["text"] for _ in range(5)]
    to_kiosk = [(await kiosk.expect("app"))["data"]["text"] for _ in range(5)]
    assert to_staff == [f"居民{n}" for n in range(5)]
    assert to_kiosk == [f"工作人员{n}" for n in range(5)]
    # Node B's hub sees the kiosk held elsewhere; a session nobody holds is not alive.
    assert await b.state.callcenter.hub.session_alive(kiosk.session_id)
    assert not await b.state.callcenter.hub.session_alive("no-such-session-0")

    # Hanging up on node B ends the call for the kiosk on node A.
    await staff.send({"type": "call.hangup"})
    assert (await kiosk.expect("left"))["reason"]

    # A session that says bye is unregistered.
    await kiosk.send({"type": "bye"})

    async def unregistered() -> bool:
        """the kiosk's topic key deleted"""
        return await holder(redis, kiosk) is None

    await until(unregistered)
    assert not await b.state.callcenter.hub.session_alive(kiosk.session_id)
    return staff


def test_replies_are_parsed_by_hiredis() -> None:
    """The dependency is ``redis[hiredis]``: without the C parser redis-py falls back to its
    Python one silently, and the cross-node relay p99 grows by about a third (docs/scaling.md)."""
    from redis.asyncio.connection import DefaultParser  # what every asyncio connection uses

    assert DefaultParser.__name__ == "_AsyncHiredisParser"


async def test_publish_reaches_the_holder_or_answers_false() -> None:
    url = shared_redis_url()
    one = RedisBroker(url, node("one"), prefix="cloudhelp")
    two = RedisBroker(url, node("two"), prefix="cloudhelp", topic_ttl=0.6)  # renews every 0.2 s
    await one.start()
    await two.start()
    got: list[dict[str, Any]] = []

    async def deliver(message: dict[str, Any]) -> None:
        got.append(message)

    try:
        async with Redis.from_url(url, decode_responses=True) as redis:
            topic = f"session:{uuid.uuid4().hex}"
            assert not await one.publish(topic, {"n": 0}), "nobody holds it yet"
            await two.subscribe(topic, deliver)
            assert await redis.get(two.topic_key(topic)) == two.node_id
            assert 0 < await redis.pttl(two.topic_key(topic)) <= two.topic_ttl * 1000

            assert await one.publish(topic, {"n": 1, "text": "你好"})
            await until(lambda: got, what="the entry delivered")
            assert got == [{"n": 1, "text": "你好"}]
            assert await redis.xlen(two.stream) == 1  # it went through two's stream

            # The holder publishing to its own topic delivers in-process, without Redis.
            assert await two.publish(topic, {"n": 2})
            assert got[-1] == {"n": 2} and await redis.xlen(two.stream) == 1

            await two.unsubscribe(topic)
            assert await redis.get(two.topic_key(topic)) is None
            assert not await one.publish(topic, {"n": 3})
            # Unsubscribing deletes the key only while it names this node.
            await redis.set(two.topic_key(topic), one.node_id)
            await two.subscribe(topic, deliver)
            assert await redis.get(two.topic_key(topic)) == two.node_id, "the newest wins"
            # Another node takes the topic: renewals do not take it back, nor does unsubscribe
            # delete it.
            await redis.set(two.topic_key(topic), "someone-else")
            await asyncio.sleep(0.5)
            assert await redis.get(two.topic_key(topic)) == "someone-else"
            await two.unsubscribe(topic)
            assert await redis.get(two.topic_key(topic)) == "someone-else"
            await redis.delete(two.topic_key(topic))
    finally:
        await one.close()
        await two.close()
    with pytest.raises(BrokerUnavailable, match="cannot be reached"):
        await RedisBroker("redis://127.0.0.1:9/0", node("nowhere")).start()


async def test_a_topic_key_lives_while_its_holder_renews_it_and_expires_after() -> None:
    url = shared_redis_url()
    ttl = 1.5  # renewed every 0.5 s
    holder_node = RedisBroker(url, node("holder"), prefix="cloudhelp", topic_ttl=ttl)
    other = RedisBroker(url, node("other"), prefix="cloudhelp", topic_ttl=ttl)
    await holder_node.start()
    await other.start()
    got: list[dict[str, Any]] = []

    async def deliver(message: dict[str, Any]) -> None:
        got.append(message)

    topic = f"session:{uuid.uuid4().hex}"
    try:
        async with Redis.from_url(url, decode_responses=True) as redis:
            await holder_node.subscribe(topic, deliver)
            await asyncio.sleep(ttl * 2)  # renewed all along
            assert await redis.get(holder_node.topic_key(topic)) == holder_node.node_id
            assert await other.publish(topic, {"n": 1})
            await until(lambda: got, what="the entry delivered")
            assert got == [{"n": 1}]

            # The holder dies (its loops stop, nothing is cleaned up, as with SIGKILL): its
            # connections close, its alive channel has no subscriber, and publishing answers
            # False at once although the topic's key lives on.
            started = time.monotonic()
            await holder_node.close(release=False)
            assert time.monotonic() - started < 0.5, "closing does not wait for XREAD's block"
            assert await redis.get(holder_node.topic_key(topic)) == holder_node.node_id
            assert not await other.publish(topic, {"n": 2})
            # A machine that lost power: Redis still counts its connections (until TCP gives
            # up), here one holding the alive channel. Until the TTL ends the topic looks held:
            # what is published meanwhile is accepted and never delivered (the documented loss).
            async with redis.pubsub() as ghost:
                await ghost.subscribe(holder_node.alive_channel)
                confirmed = await ghost.get_message(timeout=5)  # subscribe() does not wait
                assert confirmed is not None and confirmed["type"] == "subscribe", confirmed
                assert await other.publish(topic, {"n": 3})
                # A node started again under the same id knows at once the topic is not its
                # own any more (the call centre's recovery asks exactly this).
                reborn = RedisBroker(url, holder_node.node_id, prefix="cloudhelp", topic_ttl=ttl)
                await reborn.start()
                assert not await reborn.publish(topic, {"n": "probe"})
                await reborn.close()
                await asyncio.sleep(ttl + 0.3)
                assert await redis.get(holder_node.topic_key(topic)) is None
                assert not await other.publish(topic, {"n": 4})
            assert got == [{"n": 1}]
            await redis.delete(holder_node.stream)
    finally:
        await other.close()


async def test_a_reader_whose_connection_drops_misses_nothing() -> None:
    """The holder's reading connection is killed while another node publishes: the entries
    wait in its stream and each is delivered once, in order, when the reader is back."""
    url = shared_redis_url()
    sender = RedisBroker(url, node("sender"), prefix="cloudhelp")
    reader = RedisBroker(url, node("reader"), prefix="cloudhelp")
    await sender.start()
    await reader.start()
    got: list[int] = []

    async def deliver(message: dict[str, Any]) -> None:
        got.append(message["n"])

    topic = f"session:{uuid.uuid4().hex}"
    try:
        async with Redis.from_url(url, decode_responses=True) as redis:
            await reader.subscribe(topic, deliver)
            assert await sender.publish(topic, {"n": 0})
            for kill in range(3):

                async def reading() -> list[dict[str, Any]]:
                    """the reader connected (again, after the previous kill)"""
                    clients = await redis.client_list()
                    return [c for c in clients if c["name"] == f"{reader.node_id}:reader"]

                connection = (await until(reading))[0]
                await redis.execute_command("CLIENT", "KILL", "ID", connection["id"])
                for n in range(1 + kill * 20, 21 + kill * 20):
                    assert await sender.publish(topic, {"n": n})
            await until(lambda: len(got) >= 61, 10, "61 entries delivered")
            assert got == list(range(61)), "each once, in order"
            assert reader.reconnects >= 1
    finally:
        await sender.close()
        await reader.close()


async def test_an_entry_of_another_wire_version_is_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rolling upgrade across a change of the nodes' format: what a node of another
    WIRE_VERSION appends (to this node's stream or the broadcast stream) is dropped unread,
    logged and counted, never handed on misread; this version's entries, and those written
    before the field existed (no ``w``), are delivered, and the reader goes on past the others.
    What this node sends carries its version."""
    url = shared_redis_url()
    one = RedisBroker(url, node("one"), prefix="cloudhelp")
    other = RedisBroker(url, node("other"), prefix="cloudhelp")
    await one.start()
    await other.start()
    got: list[Any] = []
    heard: list[Any] = []

    async def deliver(message: dict[str, Any]) -> None:
        got.append(message["n"])

    async def listen(message: dict[str, Any]) -> None:
        heard.append(message["n"])

    topic = f"session:{uuid.uuid4().hex}"
    channel = f"board-{uuid.uuid4().hex[:8]}"
    try:
        async with Redis.from_url(url, decode_responses=True) as redis:
            await one.subscribe(topic, deliver)
            await one.listen(channel, listen)
            newer = str(int(WIRE_VERSION) + 1)
            await redis.xadd(one.stream, {"t": topic, "m": '{"n": 1}', "w": newer})
            await redis.xadd(one.stream, {"t": topic, "m": '{"n": 2}'})  # before ``w``
            await redis.xadd(
                one.broadcast_stream, {"c": channel, "m": '{"n": 3}', "n": "x", "w": newer}
            )
            await other.broadcast(channel, {"n": 4})
            assert await other.publish(topic, {"n": 5})
            await until(
                lambda: len(got) >= 2 and heard and other.wire_mismatches, 2, "what is delivered"
            )
            assert got == [2, 5] and heard == [4]
            # ``one``: its stream's and the broadcast's; ``other`` reads the broadcast too.
            assert (one.wire_mismatches, other.wire_mismatches) == (2, 1)
            dropped = [r for r in caplog.records if "another wire version" in r.getMessage()]
            assert len(dropped) == 3, caplog.text
            # What ``other`` appended carries this version.
            (_, sent), *_ = await redis.xrevrange(one.stream, count=1)
            (_, broadcast), *_ = await redis.xrevrange(one.broadcast_stream, count=1)
            assert sent["w"] == broadcast["w"] == WIRE_VERSION
    finally:
        await one.close()
        await other.close()


async def test_a_stream_restored_from_a_snapshot_is_not_delivered_twice() -> None:
    """A Redis restarted with persistence gives back an older copy of a node's stream: entries
    the node read before are not delivered again, and it reads on from there."""
    url = shared_redis_url()
    sender = RedisBroker(url, node("sender"), prefix="cloudhelp")
    reader = RedisBroker(url, node("reader"), prefix="cloudhelp")
    await sender.start()
    await reader.start()
    got: list[Any] = []

    async def deliver(message: dict[str, Any]) -> None:
        got.append(message["n"])

    topic = f"session:{uuid.uuid4().hex}"
    try:
        async with Redis.from_url(url, decode_responses=True) as redis:
            await reader.subscribe(topic, deliver)
            for n in range(3):
                assert await sender.publish(topic, {"n": n})
            await until(lambda: len(got) == 3, 2, "three entries delivered")
            assert got == [0, 1, 2]
            ids = [entry_id for entry_id, _fields in await redis.xrange(reader.stream)]
            # The snapshot: the stream as it was after its first two entries.
            await redis.delete(reader.stream)
            for entry_id in ids[:2]:
                await redis.xadd(reader.stream, {"t": topic, "m": '{"n":"again"}'}, id=entry_id)
            clients = await redis.client_list()
            [reading] = [c for c in clients if c["name"] == f"{reader.node_id}:reader"]
            await redis.execute_command("CLIENT", "KILL", "ID", reading["id"])
            await until(lambda: reader.reconnects, what="the reader reconnected")
            assert reader.reconnects == 1
            assert await sender.publish(topic, {"n": 3})
            await until(lambda: len(got) >= 4, 2, "the fourth entry delivered")
            await asyncio.sleep(0.1)
            assert got == [0, 1, 2, 3]
    finally:
        await sender.close()
        await reader.close()


async def test_what_waits_in_the_outbox_too_long_is_dropped() -> None:
    """While Redis is away a publish waits in the outbox (and answers True); once Redis is back
    it is routed, unless it waited longer than outbox_seconds or nobody holds its topic by
    then: then it is dropped and counted. A topic held here never needs Redis."""
    with private_redis() as server:
        options: dict[str, Any] = {"prefix": "cloudhelp", "retry_max": 0.2, "outbox_seconds": 4}
        one = RedisBroker(server.url, node("one"), **options)
        two = RedisBroker(server.url, node("two"), **options)
        await one.start()
        await two.start()
        got: list[str] = []

        async def deliver(message: dict[str, Any]) -> None:
            got.append(message["n"])

        try:
            topic = f"session:{uuid.uuid4().hex}"
            await two.subscribe(topic, deliver)
            await server.stop_async()
            assert await one.publish(topic, {"n": "old"})
            assert await two.publish(topic, {"n": "local"}), "held here: no Redis needed"
            assert got == ["local"]
            await asyncio.sleep(4.2)  # "old" has waited longer than outbox_seconds
            assert await one.publish(topic, {"n": "fresh"})
            assert await one.publish(f"session:{uuid.uuid4().hex}", {"n": "nobody's"})
            assert not one.healthy
            await server.start_async()
            await until(
                lambda: got == ["local", "fresh"] and one.dropped == 2, 10, "the outbox sent"
            )
            assert got == ["local", "fresh"]
            assert one.dropped == 2, "the old one and the one nobody holds"
        finally:
            await one.close()
            await two.close()


async def test_two_nodes_never_give_one_ticket_to_two_staff(pg_demo_url: str) -> None:
    """tests/test_call_core.py's race between two servers, with a Redis broker each: the
    database decides, and the kiosk on node A joins the winner wherever the winner is."""
    async with two_nodes(pg_demo_url) as (a, b):
        kiosk = await a.kiosk()
        wangli = await a.staff("wangli", available=False)
        chenjing = await b.staff("chenjing", available=False)
        await kiosk.send({"type": "ticket.take", "item": "SCJG-001"})
        ticket = (await kiosk.expect("ticket"))["ticket"]
        results = await picked_at_once([wangli, chenjing], ticket["id"])
        assert results.count("joined") == 1, results
        assert any("ticket_taken" in r for r in results), results
        joined = await kiosk.expect("joined")
        winner = wangli if results[0] == "joined" else chenjing
        assert [p["session"] for p in joined["peers"]] == [winner.session_id]


@pytest.mark.parametrize("links", [True, False], ids=["node-links", "redis-only"])
async def test_redis_restarted_mid_call(pg_demo_url: str, links: bool) -> None:
    """The nodes' Redis is killed (SIGKILL, no persistence) in the middle of a call and started
    again empty: what each side sent meanwhile arrives, in order — at once on the nodes' link,
    or once Redis is back without links; every node re-registers its sessions and holds its
    alive channel again; the call carries on."""
    with private_redis() as server:
        names = node("a"), node("b")
        async with (
            running_server(pg_demo_url, redis_url=server.url, node_id=names[0],
                           node_links=links) as a,
            running_server(pg_demo_url, redis_url=server.url, node_id=names[1],
                           node_links=links) as b,
        ):  # fmt: skip
            kiosk, staff = await call_across(a, b)
            await relayed(staff, kiosk, {"type": "app", "data": "before"})
            await relayed(kiosk, staff, {"type": "app", "data": "before"})
            if links:  # each node has named the other's session through Redis: links open

                def linked() -> bool:
                    one, two = broker_of(a), broker_of(b)
                    return all((lk := x._links.get(y.node_id)) is not None and lk.is_open
                               for x, y in ((one, two), (two, one)))  # fmt: skip

                await until(linked, what="both nodes' links open")
            sent_on_links = broker_of(a).link_frames + broker_of(b).link_frames

            await server.stop_async()
            for n in range(3):
                await staff.send({"type": "app", "data": f"during-{n}"})
                await kiosk.send({"type": "app", "data": f"during-{n}"})
            if not links:
                await asyncio.sleep(0.5)
                assert kiosk.drain("app") == [] and staff.drain("app") == [], "no Redis, no relay"

            def both_lost_redis() -> bool:
                return not broker_of(a).healthy and not broker_of(b).healthy

            # Each node sees its connection drop when its loop next runs (later, under load).
            await until(both_lost_redis, what="both nodes' brokers unhealthy")
            if links:
                for receiver, sender in ((kiosk, staff), (staff, kiosk)):
                    frames = [await receiver.expect("app") for _ in range(3)]
                    assert [f["data"] for f in frames] == ["during-0", "during-1", "during-2"]
                    assert {f["from"] for f in frames} == {sender.session_id}
                assert broker_of(a).link_frames + broker_of(b).link_frames == sent_on_links + 6
                figures = await scraped_metrics(a)
                assert figures["cloudhelp_node_links_open"] == 1
                assert figures["cloudhelp_node_link_frames_total"] >= 3
                assert figures["cloudhelp_node_links_refused_total"] == 0

            await server.start_async()
            if not links:
                for receiver, sender in ((kiosk, staff), (staff, kiosk)):
                    frames = [await receiver.expect("app") for _ in range(3)]
                    assert [f["data"] for f in frames] == ["during-0", "during-1", "during-2"]
                    assert {f["from"] for f in frames} == {sender.session_id}
            async with Redis.from_url(server.url, decode_responses=True) as redis:
                channels = [broker_of(n).alive_channel for n in (a, b)]

                async def back() -> bool:
                    """both nodes back on Redis (with links the frames did not wait for it)"""
                    return (
                        broker_of(a).healthy
                        and broker_of(b).healthy
                        and await redis.pubsub_numsub(*channels) == [(c, 1) for c in channels]
                    )

                await until(back)
                assert await holder(redis, kiosk) == names[0], "re-registered by node A"
                assert await holder(redis, staff) == names[1], "re-registered by node B"
            assert broker_of(a).reconnects >= 1 and broker_of(b).reconnects >= 1
            assert broker_of(a).dropped == broker_of(b).dropped == 0

            # The call carries on both ways.
            await relayed(staff, kiosk, {"type": "app", "data": "after"})
            await relayed(kiosk, staff, {"type": "app", "data": "after"})


def test_serve_refuses_redis_on_sqlite_and_an_unreachable_redis_in_one_sentence(
    tmp_path: Path, pg_demo_url: str
) -> None:
    env = {"CLOUDHELP_DATA_DIR": str(tmp_path), "CLOUDHELP_REDIS_URL": "redis://127.0.0.1/0"}
    sqlite = run_cli("serve", "--db", f"sqlite:///{tmp_path / 'one.db'}", "--port", "0", env=env)
    assert sqlite.returncode == 1 and "Traceback" not in sqlite.stderr, sqlite.stderr
    assert "redis_url runs several server processes, which must share one PostgreSQL " in (
        sqlite.stderr
    )
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env["CLOUDHELP_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    away = run_cli("serve", "--db", pg_demo_url, "--port", "0", env=env)
    assert away.returncode == 2 and "Traceback" not in away.stderr, away.stderr
    [line] = away.stderr.strip().splitlines()
    assert line.startswith(f"cloudhelp: Redis at 127.0.0.1:{port} cannot be reached"), line
    assert line.endswith("start it or correct redis_url."), line


def test_several_nodes_need_postgresql(tmp_path: Path) -> None:
    for database_url in (f"sqlite:///{tmp_path / 'x.db'}", None):
        with pytest.raises(ValidationError, match="must share one PostgreSQL database"):
            Settings(data_dir=tmp_path, database_url=database_url, redis_url="redis://127.0.0.1/0")
    settings = Settings(data_dir=tmp_path)
    assert settings.redis_url is None, "one process on the in-process broker by default"
    assert settings.node_id.endswith(f"-{os.getpid()}")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, node_id="two words")
