"""A loop an object runs in the background of the event loop, started and stopped by its owner."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundLoop:
    """Subclasses write :meth:`_run`; :meth:`start` runs it as a task, :meth:`stop` cancels it
    and waits for it to finish. Starting twice runs one task."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError
