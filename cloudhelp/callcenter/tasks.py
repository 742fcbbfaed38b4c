"""The call centre's background work: tracked tasks, keyed timers and guarded loops.

Nothing runs untracked: one-off work (a timer firing, a coalesced push) is a task in the
:class:`TaskSet` until it is done, and the background loops (:func:`run_guarded`) are
cancelled **and awaited** by :meth:`TaskSet.stop`, so no loop is cut off mid-transaction
after the database engine is disposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cloudhelp.core.logs import log_event
from signaling.hub import drain

MAX_BACKOFF_SECONDS = 60.0  # a loop that keeps failing retries at least this often


async def run_guarded(
    name: str,
    body: Callable[[], Awaitable[object]],
    interval: float,
    *,
    wake: asyncio.Event | None = None,
    max_backoff: float = MAX_BACKOFF_SECONDS,
) -> None:
    """Run ``body`` every ``interval`` seconds (sooner when ``wake`` is set) until cancelled.

    A body that raises does not end the loop: the failure is logged with its traceback
    (event ``<name>_failed``), and the next run waits twice as long after each failure in a
    row, up to ``max_backoff`` (never less than ``interval``); a success restores ``interval``.
    """
    failures = 0
    while True:
        delay = min(max(max_backoff, interval), interval * 2**failures)
        await _pause(delay, wake)
        try:
            await body()
        except Exception as exc:
            failures += 1
            log_event(
                f"{name}_failed",
                severity=logging.ERROR,
                exc_info=True,
                error=repr(exc),
                failures=failures,
            )
        else:
            failures = 0


async def _pause(seconds: float, wake: asyncio.Event | None) -> None:
    """Sleep ``seconds``, or less if ``wake`` is set meanwhile (it is cleared)."""
    if wake is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
    wake.clear()


class TaskSet(set[asyncio.Task[Any]]):
    """The call centre's running tasks; each leaves the set when done.

    ``closing`` tells when the hub is shutting down: work spawned then is dropped unstarted.
    """

    def __init__(self, closing: Callable[[], bool]) -> None:
        super().__init__()
        self._closing = closing
        self._loops: list[asyncio.Task[None]] = []

    @property
    def loops(self) -> tuple[asyncio.Task[None], ...]:
        """The background loops started and not yet stopped."""
        return tuple(self._loops)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a tracked task (or close it unstarted while shutting down)."""
        if self._closing():
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self.add(task)
        task.add_done_callback(self.discard)

    def loop(
        self,
        name: str,
        body: Callable[[], Awaitable[object]],
        interval: float,
        *,
        wake: asyncio.Event | None = None,
    ) -> asyncio.Task[None]:
        """Start a background loop (:func:`run_guarded`) that :meth:`stop` cancels and awaits."""
        task = asyncio.create_task(run_guarded(name, body, interval, wake=wake), name=name)
        self._loops.append(task)
        return task

    async def stop_loops(self) -> None:
        """Cancel the background loops and await them."""
        loops, self._loops = self._loops, []
        for task in loops:
            task.cancel()
        # Awaited: a check cut off mid-transaction must be rolled back before the engine is
        # disposed, or the database driver can hang the shutdown.
        await asyncio.gather(*loops, return_exceptions=True)

    async def stop(self) -> None:
        """Stop the loops (cancelled and awaited), then let the other tasks finish (drain:
        those still running after a few seconds are cancelled and awaited too)."""
        await self.stop_loops()
        await drain(self)


class Timers(dict[tuple[str, int], asyncio.TimerHandle]):
    """Pending in-process timers by (kind, key): a ring's time-out per ticket, a wrap-up's per
    staff member, an abandoned ticket's per ticket, a preference window's end per ticket.
    When one fires, its work runs in ``tasks``. The first three are deadlines kept in the
    database, and their work claims them there (callcenter.expiries): a timer is only the
    fast path of the process that set the deadline."""

    def __init__(self, tasks: TaskSet) -> None:
        super().__init__()
        self._tasks = tasks

    def arm(
        self, kind: str, key: int, delay: float, work: Callable[[], Coroutine[Any, Any, Any]]
    ) -> None:
        """Run ``work()`` after ``delay`` seconds, replacing a timer of the same kind and key."""
        self.cancel(kind, key)
        loop = asyncio.get_running_loop()
        self[kind, key] = loop.call_later(delay, self._fire, kind, key, work)

    def _fire(self, kind: str, key: int, work: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        self.pop((kind, key), None)
        self._tasks.spawn(work())

    def cancel(self, kind: str, key: int) -> None:
        """Stop the timer of that kind and key, if one is pending."""
        handle = self.pop((kind, key), None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self.values():
            handle.cancel()
        self.clear()
