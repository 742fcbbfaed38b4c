"""The collector's full passes: off Python's automatic schedule, run when quiet or overdue."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from cloudhelp.core.gcpolicy import FullPasses, YoungPasses
from tests.helpers import start_cli


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_pass_runs_when_quiet_after_the_minimum_or_when_overdue() -> None:
    clock, quiet = Clock(), [False]
    passes = FullPasses(lambda: quiet[0], min_interval=60, max_interval=600, clock=clock)
    quiet[0] = True
    clock.now += 59
    assert passes.run_if_due() is None  # quiet, but the last pass (start) was 59 s ago
    clock.now += 1
    ran = passes.run_if_due()
    assert ran is not None and ran.reason == "quiet" and passes.count == 1
    quiet[0] = False  # calls in progress from now on
    clock.now += 599
    assert passes.run_if_due() is None
    clock.now += 1
    ran = passes.run_if_due()
    assert ran is not None and ran.reason == "overdue" and passes.count == 2
    assert passes.last == ran and ran.seconds >= 0
    assert passes.due() is None  # the clock starts again from the last pass


def test_young_passes_take_the_middle_generation_every_nth_beat() -> None:
    collected: list[int] = []
    passes = YoungPasses(every=0.1, middle_every=3, collect=collected.append)
    assert [passes.beat() for _ in range(7)] == [0, 0, 1, 0, 0, 1, 0] == collected


def _largest_young_generation(beats: bool) -> int:
    """In a fresh interpreter under tune_gc: 50 rounds, each making 1,000 long-lived objects
    while freeing as many old ones (as sockets renew their heartbeat timers): the largest young
    generation seen after a round, with or without a YoungPasses beat after each."""
    script = textwrap.dedent(
        f"""
        import gc
        from cloudhelp.core.gcpolicy import YoungPasses, tune_gc

        tune_gc()
        old = [[n] for n in range(60_000)]
        gc.collect()  # now old
        passes, kept, largest = YoungPasses(), [], 0
        for _ in range(50):
            for n in range(1_000):
                kept.append([n])
                old.pop()
            if {beats}:
                passes.beat()
            largest = max(largest, len(gc.get_objects(0)))
        print(largest)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout)


def test_young_passes_keep_the_young_generation_small_where_the_count_cannot() -> None:
    """Python's young count is allocations minus deallocations: freeing old objects as fast as
    new ones are made keeps it under the threshold while the young list grows (each pass then
    walks all of it). On a beat, a pass walks only what the last beat left."""
    assert _largest_young_generation(beats=False) > 40_000
    assert _largest_young_generation(beats=True) < 3_000


def test_tune_gc_leaves_the_full_pass_to_full_passes() -> None:
    """In a fresh interpreter: half a million long-lived objects and cyclic garbage promoted to
    the oldest generation start no full pass by themselves; a due FullPasses collects them."""
    script = textwrap.dedent(
        """
        import gc, weakref
        from cloudhelp.core.gcpolicy import FullPasses, tune_gc

        class Node:
            pass

        tune_gc()
        before = gc.get_stats()[2]["collections"]
        kept = [[n] for n in range(500_000)]  # survive into the oldest generation
        cycle = Node(); cycle.me = cycle; probe = weakref.ref(cycle); del cycle
        for n in range(2_000_000):  # plenty of young and middle passes
            [n]
        automatic = gc.get_stats()[2]["collections"] - before
        alive_before = probe() is not None
        passes = FullPasses(lambda: True, min_interval=0, max_interval=3600)
        ran = passes.run_if_due()
        print(json.dumps({"automatic": automatic, "alive_before": alive_before,
                          "reason": ran.reason, "alive_after": probe() is not None,
                          "kept": len(kept)}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + script],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result["automatic"] == 0, result
    assert result["alive_before"] is True  # only a full pass could free it
    assert result["reason"] == "quiet" and result["alive_after"] is False


def test_serve_runs_full_passes_and_health_reports_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {"CLOUDHELP_DATA_DIR": str(tmp_path), "CLOUDHELP_GC_FULL_PASS_MAX_SECONDS": "1"}
    process = start_cli("serve", "--port", "0", "--db", db, env=env)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(url + "api/v1/health") as response:
                passes = json.loads(response.read())["gc_full_passes"]
            if passes["count"] >= 2:
                break
            assert time.monotonic() < deadline, passes
            time.sleep(0.5)
        assert passes["last_reason"] == "quiet"  # nobody is in a call
        assert passes["last_ms"] >= 0
    finally:
        process.terminate()
        process.wait(timeout=10)
