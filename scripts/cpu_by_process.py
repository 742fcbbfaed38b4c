"""CPU by process name while something runs: where the test command's CPU goes.

    python3 scripts/cpu_by_process.py > cpu.txt &   # then run the command, then: kill %1

Reads every process's own user and system time from /proc twice a second (processes in other
namespaces too, such as the test command's) and, on SIGTERM, prints the total per name,
largest first (Python processes by their first arguments). A process that lives less than
half a second is missed; one that lives longer counts up to its last sample; one already
running at the first sample (a kernel thread, the machine's agent) counts from that sample.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

TICKS = os.sysconf("SC_CLK_TCK")
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


def sample(
    seen: dict[tuple[str, str], tuple[str, int]], before: dict[tuple[str, str], int]
) -> None:
    """Each process's CPU so far, keyed by pid and start time (a reused pid is another), less
    what it had used by the first sample (``before``; filled by that first sample)."""
    first = not before
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime: its own, not its children's
        key = (pid, fields[19])  # start time
        if first:
            before[key] = ticks
        name = seen[key][0] if key in seen else _name(pid, comm)
        seen[key] = (name, ticks - before.get(key, 0))


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    before: dict[tuple[str, str], int] = {}
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
