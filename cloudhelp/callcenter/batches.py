"""Short write transactions that arrive together, run together, as one set-based write.

On SQLite every write waits for one lock, and each statement is a round trip to the database
thread that waits for a turn of the busy event loop: a burst of 200 tickets taken at once
would queue 200 transactions of a few statements each. Here, while one batch is written, the
pieces that arrive wait and go, all of them, into the next, which ``write`` handles with a few
statements whatever the number of pieces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.store.db import Database
from signaling.errors import SignalingError

P = TypeVar("P")
R = TypeVar("R")
# Writes a batch of pieces in the caller's transaction: for each piece, in order, its result
# or the SignalingError that refuses it alone.
BatchWrite = Callable[[AsyncSession, Sequence[P]], Awaitable[list[R | SignalingError]]]


class BatchedWrites(Generic[P, R]):
    """Writes each piece inside a write transaction shared with the pieces that arrived at the
    same time.

    Contract: ``write`` refuses a piece (a SignalingError in its place) only before it writes
    anything for it; that fails it alone, the others commit. An exception out of ``write``
    rolls the whole batch back and fails every piece in it. Results are given out after the
    commit.
    """

    def __init__(
        self,
        database: Database,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        write: BatchWrite[P, R],
    ) -> None:
        self.db = database
        self.spawn = spawn
        self.write = write
        self._pending: list[tuple[P, asyncio.Future[R]]] = []
        self._running = False

    async def run(self, piece: P) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((piece, future))
        if not self._running:
            self._running = True
            self.spawn(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                outcomes: list[R | BaseException]
                try:
                    async with self.db.write() as s:
                        outcomes = list(await self.write(s, [piece for piece, _ in batch]))
                        if len(outcomes) != len(batch):  # a bug: roll back
                            raise RuntimeError(f"{len(outcomes)} results, {len(batch)} pieces")
                except Exception as failed:  # the batch rolled back: every piece failed
                    outcomes = [failed] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller went away
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._running = False
            for _, future in self._pending:  # stopped while work was waiting
                if not future.done():
                    future.set_exception(RuntimeError("the server is stopping"))
            self._pending = []
