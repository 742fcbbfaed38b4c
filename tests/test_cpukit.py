"""The per-test CPU measure (tests/cpukit.py) counts what a test's children use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import cpukit

BUSY_CHILD = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"


def test_a_child_that_ran_and_ended_is_counted_and_the_log_reads_back(tmp_path: Path) -> None:
    meter = cpukit.TreeMeter(every=0.1)
    meter.start()
    subprocess.run([sys.executable, "-c", BUSY_CHILD], check=True)
    used = meter.stop()
    assert used >= 0.5, used  # the child's 0.6 s of CPU, seen before it ended
    log = tmp_path / "cpu.log"
    log.write_text("1.50\t2.00\ttests/test_a.py::test_one\n0.25\t0.30\ttests/test_b.py::test_two\n")
    report = cpukit.report(log, top=5)
    assert "2 s over 2 tests" in report
    assert report.index("tests/test_a.py") < report.index("tests/test_b.py")
