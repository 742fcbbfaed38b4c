"""Event-loop lag: how late a 10 ms timer fires, the delay every frame and request sees.

:class:`LoopLagMonitor` samples it continuously into a fixed ring buffer (the last
``capacity`` samples, about a minute: a few hundred KiB never grows) and summarises a recent
window, so an operator, a health check or a benchmark can ask "how responsive was the server
over the last N seconds?".
"""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass

from cloudhelp.core.background import BackgroundLoop

INTERVAL_SECONDS = 0.010
CAPACITY = 6_000  # 60 s of samples at 100 a second


@dataclass(frozen=True)
class LagSummary:
    """Lag over a window, in milliseconds (all zero with no samples)."""

    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class LoopLagMonitor(BackgroundLoop):
    """Sleeps ``interval`` again and again and records how much later than asked it woke.

    Invariant: ``_at[i]``/``_lag[i]`` for the last ``min(_count, capacity)`` writes hold each
    sample's monotonic time and lag; older samples are overwritten in place.
    """

    def __init__(self, interval: float = INTERVAL_SECONDS, capacity: int = CAPACITY) -> None:
        self.interval = interval
        self.capacity = capacity
        self._at = array("d", bytes(8 * capacity))
        self._lag = array("d", bytes(8 * capacity))
        self._count = 0

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            woke = time.monotonic()
            self.record(woke, max(0.0, woke - asked - self.interval))

    def record(self, at: float, lag_seconds: float) -> None:
        slot = self._count % self.capacity
        self._at[slot] = at
        self._lag[slot] = lag_seconds
        self._count += 1

    def summary(self, window_seconds: float, now: float | None = None) -> LagSummary:
        """The lag of the samples taken in the last ``window_seconds``."""
        since = (time.monotonic() if now is None else now) - window_seconds
        held = min(self._count, self.capacity)
        recent = sorted(
            self._lag[(self._count - 1 - back) % self.capacity]
            for back in range(held)
            if self._at[(self._count - 1 - back) % self.capacity] >= since
        )
        if not recent:
            return LagSummary(0, 0.0, 0.0, 0.0)

        def ms(value: float) -> float:
            return round(value * 1000, 2)

        p99 = recent[min(len(recent) - 1, int(0.99 * len(recent)))]
        return LagSummary(len(recent), ms(recent[len(recent) // 2]), ms(p99), ms(recent[-1]))
