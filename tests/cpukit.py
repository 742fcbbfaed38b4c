"""Each test's CPU: the test process and everything it started (servers, commands, Chromium).

With ``CLOUDHELP_TEST_CPU_LOG`` set to a file, every test appends one line to it,
``<cpu seconds>\t<wall seconds>\t<ended at>\t<worker>\t<node id>``: what the test process
and its descendants used while the test ran. Descendants are found twice a second
(``TreeMeter``), so a process that lives less than half a second is missed and one that ends
counts up to its last sighting (Chromium's zygote does not wait for the renderers it forks, so
their CPU never reaches a parent's ``cutime``). scripts/test.sh sets it when asked and prints
the tests that took the most and how many ran at once (``python -m tests.cpukit <file>``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
LOG_VARIABLE = "CLOUDHELP_TEST_CPU_LOG"
Key = tuple[int, str]  # pid, start time: a reused pid is another process


@dataclass(frozen=True)
class Process:
    """One line of /proc/<pid>/stat, the parts these tools read."""

    pid: int
    parent: int
    key: Key
    ticks: int  # CPU it has used itself (user and system), not its children's
    comm: str


def processes() -> list[Process]:
    """Every process on the machine (those in other namespaces too), as /proc shows them now."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        # fields: 1 the parent, 11 and 12 utime and stime, 19 the start time.
        ticks = int(fields[11]) + int(fields[12])
        found.append(Process(int(name), int(fields[1]), (int(name), fields[19]), ticks, comm))
    return found


def _descendants(root: int) -> dict[Key, int]:
    """``root`` and its descendants, each with the CPU ticks it has used itself."""
    children: dict[int, list[int]] = defaultdict(list)
    by_pid: dict[int, Process] = {}
    for process in processes():
        children[process.parent].append(process.pid)
        by_pid[process.pid] = process
    ticks: dict[Key, int] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in by_pid:
            ticks[by_pid[pid].key] = by_pid[pid].ticks
        stack.extend(children.get(pid, ()))
    return ticks


class TreeMeter:
    """The CPU this process's tree uses between ``start`` and ``stop``, sampled every
    ``every`` seconds by a thread of its own between them."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.root = os.getpid()
        self._before: dict[Key, int] = {}
        self._latest: dict[Key, int] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._before = _descendants(self.root)
        self._latest = dict(self._before)
        self._stopped.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stopped.wait(self.every):
            self._latest.update(_descendants(self.root))

    def stop(self) -> float:
        """Seconds of CPU since ``start``."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        self._latest.update(_descendants(self.root))
        used = sum(ticks - self._before.get(key, 0) for key, ticks in self._latest.items())
        return used / TICKS


def record(nodeid: str, cpu_seconds: float, wall_seconds: float) -> None:
    """Append a test's line to the log named by ``CLOUDHELP_TEST_CPU_LOG`` (if set): its CPU,
    its wall time, when it ended (seconds since the epoch), its worker and its id."""
    path = os.environ.get(LOG_VARIABLE)
    if path:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "-")
        line = f"{cpu_seconds:.2f}\t{wall_seconds:.2f}\t{time.time():.1f}\t{worker}\t{nodeid}\n"
        with open(path, "a") as log:  # one short write: lines of several workers stay whole
            log.write(line)


def _timeline(tests: list[tuple[float, float, float, str, str]], bucket: float = 60) -> list[str]:
    """How many tests ran at once, minute by minute, and when each worker ran out of tests:
    idle cores at the end of a run are a schedule's cost, not the tests'."""
    start = min(end - wall for _cpu, wall, end, _worker, _nodeid in tests)
    finish = max(end for _cpu, _wall, end, _worker, _nodeid in tests)
    lines = ["tests running at once (mean over each minute, from the first test's start):"]
    minute = start
    while minute < finish:
        covered = sum(
            max(0.0, min(end, minute + bucket) - max(end - wall, minute))
            for _cpu, wall, end, _worker, _nodeid in tests
        )
        lines.append(f"  {(minute - start) / 60:4.0f} min  {covered / bucket:4.1f}")
        minute += bucket
    last: dict[str, float] = defaultdict(float)
    for _cpu, _wall, end, worker, _nodeid in tests:
        last[worker] = max(last[worker], end)
    ends = (f"{worker} {(end - start) / 60:.1f} min" for worker, end in sorted(last.items()))
    lines.append("each worker's last test ended at: " + ", ".join(ends))
    return lines


def report(path: Path, top: int = 25) -> str:
    """The tests and the files that took the most CPU, from a log ``record`` wrote."""
    tests: list[tuple[float, float, float, str, str]] = []
    for line in path.read_text().splitlines():
        cpu, wall, end, worker, nodeid = line.split("\t", 4)
        tests.append((float(cpu), float(wall), float(end), worker, nodeid))
    files: dict[str, float] = defaultdict(float)
    for cpu, _wall, _end, _worker, nodeid in tests:
        files[nodeid.split("::")[0]] += cpu
    total = sum(cpu for cpu, *_rest in tests)
    lines = [f"CPU of the tests' process trees: {total:.0f} s over {len(tests)} tests"]
    lines.append(f"the {top} files that took the most:")
    for name, cpu in sorted(files.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {cpu:7.1f} s  {name}")
    lines.append(f"the {top} tests that took the most (CPU, wall):")
    for cpu, wall, _end, _worker, nodeid in sorted(tests, reverse=True)[:top]:
        lines.append(f"  {cpu:7.1f} s  {wall:6.1f} s  {nodeid}")
    return "\n".join(lines + _timeline(tests))


if __name__ == "__main__":
    print(report(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
