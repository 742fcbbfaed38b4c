"""The way an item takes through the station tree: one hop at a time, to the parent or a child."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.errors import MissingRow
from cloudhelp.store.models import Station


class Network:
    """The stations, read once for a transaction's routing decisions."""

    def __init__(self, stations: list[Station]) -> None:
        self.by_id = {s.id: s for s in stations}
        self.by_code = {s.code: s for s in stations}

    @classmethod
    async def load(cls, session: AsyncSession) -> Network:
        return cls(list((await session.scalars(select(Station))).all()))

    def hall(self) -> Station:
        """The district hall: the root of the tree."""
        for station in self.by_id.values():
            if station.parent_id is None:
                return station
        raise MissingRow("the district hall (a station without a parent)")

    def chain(self, station_id: int) -> list[int]:
        """The station and its ancestors up to the hall."""
        chain = [station_id]
        while (parent := self.by_id[chain[-1]].parent_id) is not None:
            chain.append(parent)
        return chain

    def next_hop(self, current: int, destination: int) -> int | None:
        """The station an item at ``current`` goes to next on its way to ``destination``
        (None when it is there): down to the child on the way, else up to the parent."""
        if current == destination:
            return None
        below = self.chain(destination)
        if current in below:
            return below[below.index(current) - 1]
        return self.by_id[current].parent_id

    def adjacent(self, a: int, b: int) -> bool:
        """One hop apart: one is the other's parent."""
        return self.by_id[a].parent_id == b or self.by_id[b].parent_id == a

    def hops(self, origin: int, destination: int) -> list[int]:
        """Every station from ``origin`` to ``destination``, both included."""
        path = [origin]
        while (step := self.next_hop(path[-1], destination)) is not None:
            path.append(step)
        return path
