"""Short write transactions that arrive together, run together.

On SQLite every write waits for one lock, and a transaction costs a handful of round trips to
the database thread: a burst of 200 tickets taken at once would queue 200 transactions. Here,
while one transaction runs, the work that arrives waits and goes, all of it, into the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.db import Database
from signaling.errors import SignalingError

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]


class BatchedWrites:
    """Runs each piece of work inside a write transaction shared with the work that arrived
    at the same time.

    Contract: a piece of work refuses (raises SignalingError) only before it writes anything;
    that fails it alone, the others commit. Any other error rolls the whole batch back and
    fails every piece in it. Results are given out after the commit.
    """

    def __init__(
        self, database: Database, spawn: Callable[[Coroutine[Any, Any, Any]], None]
    ) -> None:
        self.db = database
        self.spawn = spawn
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._running = False

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future))
        if not self._running:
            self._running = True
            self.spawn(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
                try:
                    async with self.db.write() as s:
                        for work, future in batch:
                            try:
                                outcomes.append((future, await work(s), None))
                            except SignalingError as refused:
                                outcomes.append((future, None, refused))
                except Exception as failed:  # the batch rolled back: every piece failed
                    outcomes = [(future, None, failed) for _, future in batch]
                for future, value, error in outcomes:
                    if future.done():  # its caller went away
                        continue
                    if error is None:
                        future.set_result(value)
                    else:
                        future.set_exception(error)
        finally:
            self._running = False
            for _, future in self._pending:  # stopped while work was waiting
                if not future.done():
                    future.set_exception(RuntimeError("the server is stopping"))
            self._pending = []
