"""Run ``cloudhelp …`` with what holds its event loop recorded: to find where lag comes from.

    python -m benchmarks.loop_probe OUT.jsonl serve --db URL --port N

Every loop callback that runs longer than ``SLOW_MS`` (wall time; 5 ms, or the environment's
``LOOP_PROBE_SLOW_MS``) is recorded with what it was: for a task, its coroutine and the innermost
CloudHelp frames it is suspended in after the step (the code that ran is just before those);
every garbage-collector pass is timed too. On SIGUSR1 the records since the last signal are
appended to OUT.jsonl as one JSON line: the slow callbacks grouped by what they were (count,
longest, total ms), the loop iterations that used more than ``SLOW_MS`` of the loop thread's
CPU, the longest GC passes, and the passes of each generation (count, median, longest, total).
On SIGUSR2 it appends what the young and middle generations hold (object counts by type).

Wrapping every callback costs a few µs each, so lags measured under the probe run higher than
without it: compare probe runs with probe runs. (It found, on 3 December, that the argon2
threads at nice 10 and the once-a-second middle GC pass made most of the mixed load's loop lag;
README "Speed".)
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import gc
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

SLOW_MS = float(os.environ.get("LOOP_PROBE_SLOW_MS", "5"))  # a callback this long is recorded
OWN_CODE = ("/cloudhelp/", "/signaling/")

_slow: list[tuple[float, str]] = []  # (wall ms, what)
_heavy: list[tuple[float, float, int]] = []  # (CPU ms, wall ms, callbacks ready)
_gc: list[tuple[int, float]] = []  # (generation, ms)
_gc_started = 0.0


def _what(handle: asyncio.Handle) -> str:
    """A task's coroutine and its innermost CloudHelp frames; else the handle itself."""
    owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
    if not isinstance(owner, asyncio.Task):
        return repr(handle)[:160]
    coro: Any = owner.get_coro()
    name = getattr(coro, "__qualname__", repr(coro))
    frames = []
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        code = coro.cr_frame.f_code
        if any(part in code.co_filename for part in OWN_CODE):
            frames.append(f"{code.co_name}:{coro.cr_frame.f_lineno}")
        coro = getattr(coro, "cr_await", None)
    return f"task {name} > {' > '.join(frames[-3:])}"


def _install() -> None:
    run_handle = asyncio.events.Handle._run
    run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]

    def timed_handle(self: asyncio.Handle) -> None:
        started = time.perf_counter()
        run_handle(self)
        ms = (time.perf_counter() - started) * 1000
        if ms > SLOW_MS:
            _slow.append((ms, _what(self)))

    def timed_iteration(self: asyncio.AbstractEventLoop) -> None:
        ready = len(self._ready)  # type: ignore[attr-defined]
        started, cpu = time.perf_counter(), time.thread_time()
        run_once(self)
        cpu_ms = (time.thread_time() - cpu) * 1000
        if cpu_ms > SLOW_MS:
            _heavy.append((cpu_ms, (time.perf_counter() - started) * 1000, ready))

    def timed_gc(phase: str, info: dict[str, Any]) -> None:
        global _gc_started
        if phase == "start":
            _gc_started = time.perf_counter()
        else:
            _gc.append((info["generation"], (time.perf_counter() - _gc_started) * 1000))

    asyncio.events.Handle._run = timed_handle  # type: ignore[method-assign]
    asyncio.base_events.BaseEventLoop._run_once = timed_iteration  # type: ignore[attr-defined]
    gc.callbacks.append(timed_gc)


def _dump(out: Path) -> None:
    grouped: dict[str, list[float]] = defaultdict(list)
    for ms, what in _slow:
        grouped[what].append(ms)
    worst = sorted(grouped.items(), key=lambda kv: -sum(kv[1]))[:30]
    line = {
        "slow_callbacks": [
            {
                "what": what,
                "count": len(ms),
                "max_ms": round(max(ms), 1),
                "total_ms": round(sum(ms)),
            }
            for what, ms in worst
        ],
        "heavy_iterations": len(_heavy),
        "heaviest_iterations_cpu_wall_ready": [
            [round(cpu, 1), round(wall, 1), ready] for cpu, wall, ready in sorted(_heavy)[-10:]
        ],
        "longest_gc_passes": [
            [generation, round(ms, 1)] for generation, ms in sorted(_gc, key=lambda g: -g[1])
        ][:15],
        "gc_total_ms": round(sum(ms for _, ms in _gc)),
        "gc_by_generation": {
            generation: {
                "count": len(times),
                "p50_ms": round(statistics.median(times), 2),
                "max_ms": round(max(times), 1),
                "total_ms": round(sum(times)),
            }
            for generation in (0, 1, 2)
            if (times := [ms for g, ms in _gc if g == generation])
        },
    }
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")
    _slow.clear()
    _heavy.clear()
    _gc.clear()


def _census(out: Path) -> None:
    """What the young and middle generations hold right now: how many objects, of which types."""
    line: dict[str, Any] = {}
    for generation in (0, 1):
        objects = gc.get_objects(generation)
        kinds = Counter(type(o).__qualname__ for o in objects)
        line[f"gen{generation}"] = len(objects)
        line[f"gen{generation}_types"] = kinds.most_common(15)
        del objects
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")


def main() -> None:
    out = Path(sys.argv[1])
    _install()
    signal.signal(signal.SIGUSR1, lambda *_: _dump(out))
    signal.signal(signal.SIGUSR2, lambda *_: _census(out))
    from cloudhelp.cli import main as cloudhelp

    sys.exit(cloudhelp(sys.argv[2:]))


if __name__ == "__main__":
    main()
