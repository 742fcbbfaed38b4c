"""Run a server (``cloudhelp …`` or the bare relay) with its garbage-collector passes recorded.

    python -m benchmarks.gc_probe OUT.jsonl cloudhelp serve --db URL --port N
    python -m benchmarks.gc_probe OUT.jsonl bare PORT

Each pass's duration is taken in the process's CPU time (``time.thread_time``: the loop's
thread), so what other processes on the machine do does not count. On SIGUSR1 the passes since
the last signal are appended to OUT.jsonl as one JSON line, per generation: the number of
passes, the longest and the total (ms). ``CLOUDHELP_GC_POLICY=young,middle,beat,every``
replaces ``gcpolicy``'s young and middle thresholds, YOUNG_PASS_SECONDS and MIDDLE_PASS_EVERY
(0 seconds: no beat), to compare policies (benchmarks/gc_pauses.py).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

_passes: dict[int, list[float]] = {0: [], 1: [], 2: []}
_started = 0.0


def _record(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.thread_time()
    else:
        _passes[info["generation"]].append((time.thread_time() - _started) * 1000)


def _dump(out: Path) -> None:
    line = {
        str(generation): {
            "passes": len(ms),
            "max_ms": round(max(ms), 2) if ms else 0.0,
            "total_ms": round(sum(ms), 1),
        }
        for generation, ms in _passes.items()
    }
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")
    for ms in _passes.values():
        ms.clear()


def main() -> None:
    out = Path(sys.argv[1])
    which, args = sys.argv[2], sys.argv[3:]
    gc.callbacks.append(_record)
    signal.signal(signal.SIGUSR1, lambda *_: _dump(out))
    policy = os.environ.get("CLOUDHELP_GC_POLICY")
    if policy:
        from cloudhelp.core import gcpolicy

        young, middle, beat, middle_every = policy.split(",")
        gcpolicy.GC_YOUNG_THRESHOLD, gcpolicy.GC_MIDDLE_THRESHOLD = int(young), int(middle)
        gcpolicy.YOUNG_PASS_SECONDS, gcpolicy.MIDDLE_PASS_EVERY = float(beat), int(middle_every)
    if which == "cloudhelp":
        from cloudhelp.cli import main as cloudhelp

        sys.exit(cloudhelp(args))
    from benchmarks import bare_relay

    sys.argv = ["bare_relay", *args]
    bare_relay.main()


if __name__ == "__main__":
    main()
