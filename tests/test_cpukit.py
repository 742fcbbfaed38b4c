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
    log.write_text(
        "1.50\t90.00\t1090.0\tgw0\ttests/test_a.py::test_one\n"
        "0.25\t30.00\t1120.0\tgw1\ttests/test_b.py::test_two\n"
    )
    report = cpukit.report(log, top=5)
    assert "2 s over 2 tests" in report
    assert report.index("tests/test_a.py") < report.index("tests/test_b.py")
    # test_one ran from 1000 to 1090, test_two from 1090 to 1120: one test at a time throughout.
    assert "     0 min   1.0\n     1 min   1.0\n" in report, report
    assert "gw0 1.5 min, gw1 2.0 min" in report, report
