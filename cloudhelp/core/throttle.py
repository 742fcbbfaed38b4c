"""Failed attempts counted per key within a sliding window.

One interface (:class:`Throttle`) for every throttle of guesses: sign-ins
(``accounts.LoginThrottle``, per account and per account+address), the kiosk's case lookup
(``case_lookup.LookupThrottle``, per case and per kiosk), pickup codes and appointment codes.
Each caller names its keys and the limit of each. Two implementations, chosen at app start:
:class:`FailureThrottle` here (one process, bounded memory) and
``store.redis_throttle.RedisThrottle`` (shared by every node on one Redis).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

# At most this many keys are held: a guesser trying a new name (or case number) each time must
# not grow the server's memory without bound.
MAX_THROTTLE_KEYS = 10_000

Limits = Sequence[tuple[str, int]]  # (key, how many failures within the window refuse it)


class Throttle(Protocol):
    """``limit`` failures of a key within ``window`` seconds refuse that key until the oldest
    of them leaves the window."""

    window: float

    async def wait(self, limits: Limits) -> float:
        """Seconds until none of the keys is at its limit any more (0: may try now)."""
        ...

    async def add(self, limits: Limits) -> list[bool]:
        """Count one failure against each key; for each, whether this failure reached its
        limit (it was below it before)."""
        ...

    async def take(self, limits: Limits) -> float:
        """``wait`` and, when that is 0, ``add``, in one step (no other attempt in between,
        on any node): guesses sent side by side cannot all pass the check."""
        ...

    async def clear(self, keys: Iterable[str]) -> None:
        """Forget the failures of these keys."""
        ...


class Throttles(Protocol):
    """Makes the throttle named ``name`` that keeps up to ``keep`` failures a key (the largest
    limit its caller asks about) for ``window`` seconds."""

    def __call__(self, name: str, keep: int, window: float) -> Throttle: ...


def local_throttles(name: str, keep: int, window: float) -> FailureThrottle:
    """:class:`Throttles` for one process: each throttle in this process's memory."""
    return FailureThrottle(keep, window)


class FailureThrottle:
    """The :class:`Throttle` of one process, in its memory.

    Memory is bounded: each key keeps only its last ``keep`` failures, and at most ``max_keys``
    keys are held. When full, the expired keys go first, then the keys with the fewest failures
    (oldest first): a flood of one-off keys evicts itself, not the count of a key that is close
    to or at its limit. No method awaits anything: each runs whole between two other tasks.
    """

    def __init__(
        self,
        keep: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_THROTTLE_KEYS,
    ) -> None:
        self.keep = keep
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    async def wait(self, limits: Limits) -> float:
        now = self.clock()
        wait = 0.0
        for key, limit in limits:
            failures = self._current(key, now)
            if failures is not None and len(failures) >= limit:
                wait = max(wait, failures[-limit] + self.window - now)
        return wait

    async def add(self, limits: Limits) -> list[bool]:
        now = self.clock()
        before = [len(self._current(key, now) or ()) for key, _ in limits]
        if len(self._failures) + len(limits) > self.max_keys:
            self._make_room(now, len(limits))
        for key, _ in limits:
            failures = self._failures.get(key)
            if failures is None:
                failures = self._failures[key] = deque(maxlen=self.keep)
            failures.append(now)
        return [n < limit <= n + 1 for n, (_, limit) in zip(before, limits, strict=True)]

    async def take(self, limits: Limits) -> float:
        wait = await self.wait(limits)  # (neither awaits anything: one step)
        if wait == 0:
            await self.add(limits)
        return wait

    async def clear(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _current(self, key: str, now: float) -> deque[float] | None:
        """The key's failures within the window (None, and forgotten, when there are none)."""
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def _make_room(self, now: float, needed: int) -> None:
        """Forget expired keys; if that is not enough, the half with the fewest failures."""
        for key in [k for k, f in self._failures.items() if not f or f[-1] <= now - self.window]:
            del self._failures[key]
        if len(self._failures) + needed > self.max_keys:
            ranked = sorted(
                self._failures, key=lambda k: (len(self._failures[k]), self._failures[k][-1])
            )
            for key in ranked[: max(needed, len(ranked) // 2)]:
                del self._failures[key]

    def __len__(self) -> int:
        """How many keys are held (bounded by ``max_keys``)."""
        return len(self._failures)
