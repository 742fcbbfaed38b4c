"""Failed attempts counted per key within a sliding window, in bounded memory.

One mechanism for every throttle of guesses: sign-ins (``accounts.LoginThrottle``, per account
and per account+address) and the kiosk's case lookup (``case_routes.LookupThrottle``, per case
and per kiosk). Each caller names its keys and the limit of each.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

# At most this many keys are held: a guesser trying a new name (or case number) each time must
# not grow the server's memory without bound.
MAX_THROTTLE_KEYS = 10_000


class FailureThrottle:
    """``limit`` failures of a key within ``window`` seconds refuse that key until the oldest
    of them leaves the window.

    Memory is bounded: each key keeps only its last ``keep`` failures (the largest limit any
    caller asks about), and at most ``max_keys`` keys are held. When full, the expired keys go
    first, then the keys with the fewest failures (oldest first): a flood of one-off keys
    evicts itself, not the count of a key that is close to or at its limit.
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

    def wait(self, limits: Iterable[tuple[str, int]]) -> float:
        """Seconds until none of the keys is at its limit any more (0: may try now)."""
        now = self.clock()
        wait = 0.0
        for key, limit in limits:
            failures = self._failures.get(key)
            if failures is None:
                continue
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if not failures:
                del self._failures[key]
            elif len(failures) >= limit:
                wait = max(wait, failures[-limit] + self.window - now)
        return wait

    def add(self, keys: Iterable[str]) -> None:
        """Count one failure against each key."""
        now = self.clock()
        keys = list(keys)
        if len(self._failures) + len(keys) > self.max_keys:
            self._make_room(now, len(keys))
        for key in keys:
            failures = self._failures.get(key)
            if failures is None:
                failures = self._failures[key] = deque(maxlen=self.keep)
            failures.append(now)

    def clear(self, keys: Iterable[str]) -> None:
        """Forget the failures of these keys."""
        for key in keys:
            self._failures.pop(key, None)

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
