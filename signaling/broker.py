"""How a hub reaches sessions held by other server processes.

A message for a session is delivered locally when the session lives in this process, and
published on the session's topic otherwise (one holder a topic). A notice for every process
("the board changed") is broadcast on a channel that each process listens to (one listener a
channel in each hub). ``InProcessBroker`` serves one process (and several hubs in one process,
as the tests use); a Redis broker implements the same interface.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class Broker(Protocol):
    @property
    def healthy(self) -> bool:
        """Whether the other processes can be reached now (always, in one process). While not,
        ``publish`` answers True for what it keeps to send later: not a sign of a holder."""
        ...

    async def subscribe(self, topic: str, deliver: Deliver) -> None: ...

    async def unsubscribe(self, topic: str, deliver: Deliver | None = None) -> None:
        """Stop holding ``topic`` here; with ``deliver``, only while that is its subscriber."""
        ...

    async def publish(self, topic: str, message: dict[str, Any]) -> bool:
        """Deliver to the topic's subscriber; False when nobody holds it."""
        ...

    async def listen(self, channel: str, deliver: Deliver) -> None:
        """Have ``deliver`` called with what any process broadcasts on ``channel``."""
        ...

    async def unlisten(self, channel: str, deliver: Deliver) -> None: ...

    async def broadcast(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver to every listener of ``channel``, in this process and the others."""
        ...

    async def save_card(self, key: str, card: dict[str, Any]) -> None:
        """Keep ``card`` where another process can read it, while this one lives and for a
        while after it dies (what another process needs to take a session over)."""
        ...

    async def drop_card(self, key: str) -> None:
        """Forget a card this process saved."""
        ...

    async def card(self, key: str) -> dict[str, Any] | None:
        """The card saved under ``key`` by any process; None when there is none."""
        ...


class InProcessBroker:
    def __init__(self) -> None:
        self._subscribers: dict[str, Deliver] = {}
        self._listeners: dict[str, list[Deliver]] = {}

    @property
    def healthy(self) -> bool:
        return True

    async def subscribe(self, topic: str, deliver: Deliver) -> None:
        self._subscribers[topic] = deliver

    async def unsubscribe(self, topic: str, deliver: Deliver | None = None) -> None:
        if deliver is None or self._subscribers.get(topic) == deliver:
            self._subscribers.pop(topic, None)

    async def publish(self, topic: str, message: dict[str, Any]) -> bool:
        deliver = self._subscribers.get(topic)
        if deliver is None:
            return False
        await deliver(message)
        return True

    async def listen(self, channel: str, deliver: Deliver) -> None:
        self._listeners.setdefault(channel, []).append(deliver)

    async def unlisten(self, channel: str, deliver: Deliver) -> None:
        listeners = self._listeners.get(channel, [])
        if deliver in listeners:
            listeners.remove(deliver)

    async def broadcast(self, channel: str, message: dict[str, Any]) -> None:
        for deliver in list(self._listeners.get(channel, ())):
            await deliver(message)

    async def save_card(self, key: str, card: dict[str, Any]) -> None:
        """One process: nothing outlives it, so nothing is kept."""

    async def drop_card(self, key: str) -> None:
        pass

    async def card(self, key: str) -> dict[str, Any] | None:
        return None
