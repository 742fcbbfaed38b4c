"""CPU by process name while something runs: where the test command's CPU goes.

    python3 scripts/cpu_by_process.py > cpu.txt &   # then run the command, then: kill %1

Reads every process's own user and system time from /proc twice a second (processes in other
namespaces too, such as the test command's) and, on SIGTERM, prints the total per name,
largest first (Python processes by their first arguments). A process that lives less than
half a second is missed; one that lives longer counts up to its last sample; one already
running at the first sample (a kernel thread, the machine's agent) counts from that sample.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file, not a module
from tests.cpukit import TICKS, Key, processes  # the /proc reader (stdlib only)

_stopping = False


def _stop(_signum: int, _frame: FrameType | None) -> None:
    global _stopping
    _stopping = True


def _name(pid: str, comm: str) -> str:
    browser = comm.startswith(("chrom", "headless_shell"))
    if not browser and not comm.startswith("python") and comm != "pytest":
        return comm
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            arguments = f.read().split(b"\0")
    except OSError:
        return comm
    if browser:  # Chromium's processes by their kind: the browser, renderer, gpu-process, ...
        # (Chromium rewrites its children's command lines into one string: split on spaces.)
        words = b" ".join(arguments).split()
        kinds = [a[7:].decode() for a in words if a.startswith(b"--type=")]
        kinds += [a[19:].decode() for a in words if a.startswith(b"--utility-sub-type=")]
        return f"{comm} {' '.join(kinds) or 'browser'}"
    return "python " + " ".join(a.decode(errors="replace") for a in arguments[1:4])[:70]


def sample(seen: dict[Key, tuple[str, int]], before: dict[Key, int]) -> None:
    """Each process's CPU so far, keyed by pid and start time, less what it had used by the
    first sample (``before``; filled by that first sample)."""
    first = not before
    for process in processes():
        if first:
            before[process.key] = process.ticks
        known = seen.get(process.key)
        name = known[0] if known else _name(str(process.pid), process.comm)
        seen[process.key] = (name, process.ticks - before.get(process.key, 0))


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    seen: dict[Key, tuple[str, int]] = {}
    before: dict[Key, int] = {}
    while not _stopping:
        sample(seen, before)
        time.sleep(0.5)
    totals: dict[str, float] = {}
    for name, ticks in seen.values():
        totals[name] = totals.get(name, 0.0) + ticks / TICKS
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1])[:40]:
        print(f"{seconds:8.1f} s  {name}")


if __name__ == "__main__":
    main()
