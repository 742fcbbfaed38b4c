"""The cyclic garbage collector, tuned for a server that holds thousands of idle sessions.

A full pass of the collector walks every object it tracks. With 5,000 sessions open that is
about half a million objects and 300–400 ms in which no frame is relayed and no timer fires
(benchmarks/signaling.py). Python starts one by itself whenever the objects promoted since
the last one exceed a quarter of those that survived it: under the benchmark's mixed load,
in every 20-second window, at any moment of any call.

:func:`tune_gc` freezes what start-up loaded, collects the young and middle generations less
often, and takes the automatic full pass away. :class:`FullPasses` runs it instead: when the
server is quiet (no call in progress, none ringing; ``quiet`` is injected) and
``min_interval`` has passed since the last one, or when ``max_interval`` has passed whatever
the load. So a busy district pays one full pass per ``max_interval`` instead of one every few
seconds, and cyclic garbage that reached the oldest generation waits at most
``max_interval`` for it. Young and middle passes run automatically as before.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

from cloudhelp.core.background import BackgroundLoop

GC_YOUNG_THRESHOLD = 7000  # Python's default is 700
# The middle generation is collected 5× less often than Python's default (10): with 5,000
# sessions open, each middle pass walked their young objects and stalled the relay.
GC_MIDDLE_THRESHOLD = 50
# Out of reach: the oldest generation is collected only by FullPasses (gc.set_threshold takes
# a C int, and a middle pass runs at most once per 350,000 allocations, so never in practice).
GC_NO_AUTOMATIC_FULL_PASS = 1_000_000_000

MIN_INTERVAL_SECONDS = 60.0
MAX_INTERVAL_SECONDS = 600.0
CHECK_SECONDS = 5.0


def tune_gc() -> None:
    """Everything loaded so far (modules, pinyin and holiday tables, the app) lives as long as
    the process: :func:`gc.freeze` keeps it out of every pass. Each open WebSocket keeps a
    dozen young objects waiting for its next frame, so a young pass costs about 1 ms with
    hundreds of calls: running it 10× less often takes that out of the relay's p99. Full
    passes are left to :class:`FullPasses`, which the caller must run."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, GC_MIDDLE_THRESHOLD, GC_NO_AUTOMATIC_FULL_PASS)


@dataclass(frozen=True)
class FullPass:
    """One full pass: when it ended (monotonic seconds), how long it took, and why it ran."""

    ended_at: float
    seconds: float
    reason: str  # "quiet" or "overdue"


class FullPasses(BackgroundLoop):
    """Runs the collector's full pass at a quiet moment, or when it is overdue.

    Invariant: between two passes at most ``max_interval`` (plus one check interval) elapses,
    and two passes are at least ``min_interval`` apart unless the second is overdue.
    """

    def __init__(
        self,
        quiet: Callable[[], bool],
        min_interval: float = MIN_INTERVAL_SECONDS,
        max_interval: float = MAX_INTERVAL_SECONDS,
        check_every: float = CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet = quiet
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.check_every = check_every
        self.clock = clock
        self.count = 0
        self.last: FullPass | None = None
        self._since = clock()

    def due(self) -> str | None:
        """Why a pass should run now ("overdue" or "quiet"), or None."""
        elapsed = self.clock() - self._since
        if elapsed >= self.max_interval:
            return "overdue"
        if elapsed >= self.min_interval and self.quiet():
            return "quiet"
        return None

    def run_if_due(self) -> FullPass | None:
        """Run a full pass if one is due; the pass it ran, or None."""
        reason = self.due()
        if reason is None:
            return None
        started = time.perf_counter()
        gc.collect(2)
        seconds = time.perf_counter() - started
        self._since = self.clock()
        self.last = FullPass(self._since, seconds, reason)
        self.count += 1
        return self.last

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            self.run_if_due()
