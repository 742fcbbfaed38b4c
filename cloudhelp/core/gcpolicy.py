"""The cyclic garbage collector, tuned for a server that holds thousands of idle sessions.

A full pass of the collector walks every object it tracks. With 5,000 sessions open that is
about half a million objects and 300–400 ms in which no frame is relayed and no timer fires
(benchmarks/signaling.py). Python starts one by itself whenever the objects promoted since
the last one exceed a quarter of those that survived it: under the benchmark's mixed load,
in every 20-second window, at any moment of any call.

:func:`tune_gc` freezes what start-up loaded, raises the young and middle thresholds, and
takes the automatic full pass away. :class:`YoungPasses` collects the young generation ten
times a second and the middle one five times a second, whatever Python's count says, so no
young or middle pass has much to walk. :class:`FullPasses` runs the full pass: when the
server is quiet (no call in progress, none ringing; ``quiet`` is injected) and
``min_interval`` has passed since the last one, or when ``max_interval`` has passed whatever
the load. So a busy district pays one full pass per ``max_interval`` instead of one every few
seconds, and cyclic garbage that reached the oldest generation waits at most
``max_interval`` for it.
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

# YoungPasses: a young pass this often, and every MIDDLE_PASS_EVERY-th one a middle pass
# (0 seconds: none, Python's own schedule alone).
YOUNG_PASS_SECONDS = 0.1
# A middle pass five times a second: it walks what survived the young passes since the last
# one. Once a second, with 5,000 idle sessions pinging and 200 calls under the mixed load
# (benchmarks/signaling.py), each walked 100,000-odd objects: 35-40 ms; five times, 12-20 ms.
MIDDLE_PASS_EVERY = 2

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


class YoungPasses(BackgroundLoop):
    """Collects the young generation every ``every`` seconds, and the middle one every
    ``middle_every``-th time, so that neither grows large between passes.

    Python starts a young pass when allocations minus deallocations pass the young threshold;
    an old object freed counts as a deallocation. A server that keeps thousands of sockets
    frees old objects as fast as it makes new ones (each socket renews its heartbeat timer and
    reader future every few seconds; a replay entry is dropped once acknowledged), so the count
    barely moves while the young list grows: 25,000–60,000 objects, a pass of tens of ms, when
    the count finally gets there (benchmarks/gc_pauses.py). On a beat, each pass walks what
    survived the last ``every`` seconds only. Python's own passes still run between beats when
    allocation outpaces them (a report being built).
    """

    def __init__(
        self,
        every: float = YOUNG_PASS_SECONDS,
        middle_every: int = MIDDLE_PASS_EVERY,
        collect: Callable[[int], object] = gc.collect,
    ) -> None:
        self.every = every
        self.middle_every = middle_every
        self.collect = collect
        self.count = 0

    def beat(self) -> int:
        """One pass: the middle generation every ``middle_every``-th time, else the young one.
        The generation collected."""
        self.count += 1
        generation = 1 if self.count % self.middle_every == 0 else 0
        self.collect(generation)
        return generation

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.beat()


def young_passes() -> YoungPasses | None:
    """Start the young and middle passes on a beat, unless YOUNG_PASS_SECONDS is 0."""
    if YOUNG_PASS_SECONDS <= 0:
        return None
    passes = YoungPasses(YOUNG_PASS_SECONDS, MIDDLE_PASS_EVERY)
    passes.start()
    return passes


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
